"""The ``accelsim`` command: the only module that prints, parses argv or chooses exit codes.

Exit codes: 0 success; 2 bad input (one line per problem, naming the file and the field, no
traceback), including work refused before it starts because it would take too long
(``--allow-long`` accepts it) or could not fit at all; 3 a sweep finished but some of its points
failed; 1 an internal error or an environment failure (a folder that cannot be written, a full
disk, out of memory, an unreachable scheduler); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM,
which ends a sweep and its workers like Ctrl-C).
"""

from __future__ import annotations

import os

# Small GEMMs (the emulated training) run several times faster on one BLAS thread than on two
# contending ones, and sweeps already use one process per core: one thread per process, unless
# the user says otherwise. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Sequence  # noqa: E402

from rich.console import Console  # noqa: E402

from accelsim import __version__  # noqa: E402
from accelsim.errors import InputError  # noqa: E402

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (staging folders removed, sweep workers stopped)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accelsim",
        description="Simulate 4-bit training on a systolic-array accelerator and compare it with 16-bit.",
    )
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="simulate a workload on a machine, 4-bit policy vs 16-bit baseline")
    p.add_argument("workload", help="workload YAML, or a SCALE-Sim topology CSV (inference)")
    p.add_argument("hardware", help="hardware YAML")
    p.add_argument("--out", metavar="DIR", help="report folder (default: reports/<workload>-<hardware>)")
    p.add_argument("--baseline-hw", metavar="HW", help="hardware YAML of the 16-bit machine to compare with")
    _add_iso(p)
    p.add_argument("--retrain", action="store_true", help="train again instead of using cached trainings")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="processes the trainings (precisions x seeds) run in (default: CPU count)")
    _add_plots(p, "summary")
    _add_set(p)
    _add_allow_long(p)

    p = sub.add_parser(
        "sweep", help="run many configurations (grid/zip over spec fields) in parallel, resumably",
        description="accelsim sweep SWEEP.yaml  |  accelsim sweep WORKLOAD HW --grid PATH=V1,V2 [...]",
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="a sweep YAML, or a workload and a hardware file")
    p.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2", help="an axis of the product")
    p.add_argument("--zip", action="append", default=[], metavar="PATH=V1,V2", help="axes that advance together")
    p.add_argument("--set", action="append", default=[], dest="sets", metavar="PATH=VALUE",
                   help="set a field at every point (like the sweep file's fixed:), e.g. --set workload.baseline=bf16")
    p.add_argument("--baseline-hw", metavar="HW", help="hardware YAML of the 16-bit machine")
    _add_iso(p, sweep=True)
    p.add_argument("--out", metavar="DIR", help="sweep folder (default: reports/sweep-<name>)")
    p.add_argument("--jobs", type=_positive_int, metavar="N", help="worker processes (default: CPU count)")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes or Dask")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="submit to an existing Dask scheduler")
    _add_plots(p, "summary")
    _add_allow_long(p)

    p = sub.add_parser("plot", help="regenerate the plots of a run or sweep folder from its files")
    p.add_argument("folder", metavar="DIR")
    _add_plots(p, "all")

    p = sub.add_parser("compare", help="put run and sweep folders side by side in one table")
    p.add_argument("folders", nargs="+", metavar="DIR", help="run folders (summary.json) or sweep folders (results.csv)")
    p.add_argument("--md", metavar="FILE", help="also write the table as Markdown to FILE")

    p = sub.add_parser("validate", help="check spec files and print every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_allow_long(p)

    p = sub.add_parser("trace", help="write the trace of one step as JSON lines")
    p.add_argument("workload", help="workload YAML or SCALE-Sim topology CSV")
    p.add_argument(
        "-o", "--output", metavar="FILE",
        help="output file (default: standard output); a file is replaced atomically, a pipe or a "
        "character device (/dev/null) written to as a stream, a symlink's target replaced",
    )
    p.add_argument("--baseline", action="store_true", help="trace the baseline precision instead of the policy")
    _add_set(p)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_plots(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--plots", choices=("none", "summary", "all"), default=default,
                   help=f"which plots to draw: none, the summary a person looks at first, or all (default: {default}; "
                   "'accelsim plot DIR' draws the rest later)")


def _add_iso(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    p.add_argument(
        "--iso", choices=("area", "power"),
        help="resize the baseline's array (keeping its aspect ratio) to the 4-bit machine's area, or to its "
        "average power on this workload" + (", at every point (replaces the sweep file's iso:)" if sweep else ""),
    )


def _add_allow_long(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-long", action="store_true",
        help="run work estimated to take longer than 10 minutes (refused otherwise, with the estimate)",
    )


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="override a field, e.g. --set array.rows=64 --set training.epochs=5; a hardware field applies to "
        "both machines (prefix policy_hw. for the 4-bit machine only, baseline_hw. for the baseline only; "
        "workload. or hw. where a name is in both)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console()
    err = Console(stderr=True)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _COMMANDS[args.command](args, out, err)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"accelsim: error: {problem}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("accelsim: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Terminated:
        err.print("accelsim: terminated", markup=False)
        return EXIT_TERMINATED
    except MemoryError:
        err.print("accelsim: error: out of memory", markup=False)
        return EXIT_INTERNAL
    except OSError as exc:  # the environment, not the input: a folder not writable, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"accelsim: error: {where}{exc.strerror or exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_INTERNAL
    except Exception as exc:  # an accelsim bug: say so in one line unless --debug
        if args.debug:
            raise
        err.print(
            f"accelsim: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            markup=False, highlight=False, soft_wrap=True,
        )
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from accelsim import api
    from accelsim.report.console import breakdown_lines, comparison_table, energy_breakdown_line

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("preparing", total=None)

        def progress(message: str, done: int | None, total: int | None) -> None:
            bar.update(task, description=message, completed=done or 0, total=total)

        result = api.run(
            args.workload, args.hardware, out=args.out, baseline_hw=args.baseline_hw, sets=args.set, iso=args.iso,
            progress=progress, cache_dir=None if args.retrain else "default", plots=args.plots,
            allow_long=args.allow_long, jobs=args.jobs,
        )
    out.print(comparison_table(result.summary))
    for line in (*breakdown_lines(result.summary), energy_breakdown_line(result.summary)):
        if line:
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    for note in (*result.summary["notes"], *result.notes):
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if result.cached:
        out.print(
            f"training of {' and '.join(result.cached)} taken from the cache (reports/.cache; --retrain to redo)",
            markup=False, highlight=False, soft_wrap=True,
        )
    out.print(f"baseline machine: {result.summary['baseline_hardware_source']}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {result.out_dir}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


EXIT_POINTS_FAILED = 3


def _cmd_sweep(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from accelsim import sweep

    if len(args.inputs) == 1:
        if args.grid or args.zip:
            raise InputError.single("--grid", "", "--grid/--zip go with WORKLOAD HW, not with a sweep file")
        plan = sweep.with_fixed(sweep.load_sweep_file(Path(args.inputs[0])), sweep.parse_fixed(args.sets))
        if args.iso:
            plan = dataclasses.replace(plan, iso=args.iso)
    elif len(args.inputs) == 2:
        plan = sweep.inline_plan(
            Path(args.inputs[0]), Path(args.inputs[1]), args.grid, args.zip,
            baseline_hw=Path(args.baseline_hw) if args.baseline_hw else None, iso=args.iso, fixed=args.sets,
        )
    else:
        raise InputError.single("accelsim sweep", "", "expected SWEEP.yaml, or WORKLOAD HW with --grid/--zip")
    if args.scheduler is not None:
        sweep.check_scheduler(args.scheduler)
    out_dir = Path(args.out) if args.out else Path("reports") / f"sweep-{plan.name}"
    sweep.check_folder(out_dir)
    columns = (
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
    )
    # validate everything before anything runs or is written (a plan accepted with --allow-long
    # may have many points: checking them shows progress too)
    if sweep.check_point_count(plan, allow_long=args.allow_long) > 2000 and args.allow_long:
        with Progress(*columns[:3], TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
            checking = bar.add_task("checking points", total=sweep.point_count(plan))
            points = sweep.plan_points(
                plan, allow_long=True, progress=lambda done, total: bar.update(checking, completed=done),
            )
    else:
        points = sweep.plan_points(plan, allow_long=args.allow_long)
    sweep.check_cost(plan, points, args.jobs, allow_long=args.allow_long)
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task(plan.name, total=None, failed=0, rate="")
        start = {"t": None, "n": 0}

        def progress(done: int, failed: int, total: int) -> None:
            import time

            now = time.monotonic()
            if start["t"] is None:
                start["t"], start["n"] = now, done
            elapsed = now - start["t"]
            rate = f"{(done - start['n']) / elapsed:.2f} points/s" if elapsed > 0 and done > start["n"] else ""
            bar.update(task, total=total, completed=done, failed=failed, rate=rate)

        outcome = sweep.run_sweep(
            plan, out_dir, jobs=args.jobs, executor=args.executor, scheduler=args.scheduler,
            progress=progress, points=points, plots=args.plots, allow_long=args.allow_long,
        )
    for note in outcome.notes:
        err.print(f"accelsim: note: {note}", markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"{outcome.total} points: {outcome.ok} run, {outcome.skipped} already done, {outcome.failed} failed",
        highlight=False,
    )
    for index, error in outcome.failures[:10]:
        out.print(f"  point {index} failed: {error}", markup=False, highlight=False, soft_wrap=True)
    if outcome.failed < outcome.total:
        from accelsim.report.sweep_report import best_points_table

        out.print(best_points_table(out_dir))
    out.print(f"results: {out_dir / sweep.CSV_NAME}, report: {out_dir / 'report.md'}", markup=False, highlight=False,
              soft_wrap=True)
    return EXIT_POINTS_FAILED if outcome.failed else EXIT_OK


def _cmd_plot(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim.report.plots import plot_folder

    folder = Path(args.folder)
    written = plot_folder(folder, args.plots)
    out.print(f"wrote {len(written)} plots to {folder / 'plots'} and {folder / 'report.md'}", markup=False,
              highlight=False, soft_wrap=True)
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim.report.compare import compare_markdown, compare_table, load_entries

    entries = load_entries([Path(f) for f in args.folders])
    out.print(compare_table(entries))
    if args.md:
        from accelsim.atomic import atomic_write_text

        atomic_write_text(Path(args.md), compare_markdown(entries))
        out.print(f"wrote {args.md}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim import api

    failed = 0
    for name in args.files:
        try:
            kind = api.validate_file(Path(name), allow_long=args.allow_long)
            if kind == "sweep":
                from accelsim import sweep

                plan = sweep.load_sweep_file(Path(name))
                sweep.check_cost(plan, sweep.plan_points(plan, allow_long=args.allow_long), allow_long=args.allow_long)
        except InputError as exc:
            failed += 1
            for problem in exc.problems:
                err.print(f"accelsim: error: {problem}", markup=False, highlight=False, soft_wrap=True)
        else:
            out.print(f"ok  {name} ({kind})", markup=False, highlight=False, soft_wrap=True)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _cmd_trace(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim import api
    from accelsim.atomic import OutputError
    from accelsim.trace import dumps_trace, write_trace

    trace = api.trace_workload(args.workload, sets=args.set, baseline=args.baseline)
    if args.output:
        try:
            write_trace(trace, Path(args.output))
        except OutputError as exc:
            raise InputError.single("-o", "", str(exc)) from None
        err.print(f"wrote {len(trace)} ops to {args.output}", markup=False, highlight=False)
    else:
        sys.stdout.write(dumps_trace(trace))
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run, "sweep": _cmd_sweep, "plot": _cmd_plot, "compare": _cmd_compare, "validate": _cmd_validate,
    "trace": _cmd_trace,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
