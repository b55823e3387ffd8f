"""The ``accelsim`` command: the only module that prints, parses argv or chooses exit codes.

Exit codes: 0 success; 2 bad input (one line per problem, naming the file and the field, no
traceback); 1 an internal error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from rich.console import Console

from accelsim import __version__
from accelsim.errors import InputError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


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
    _add_set(p)

    p = sub.add_parser("validate", help="check spec files and print every problem")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = sub.add_parser("trace", help="write the trace of one step as JSON lines")
    p.add_argument("workload", help="workload YAML or SCALE-Sim topology CSV")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: standard output)")
    p.add_argument("--baseline", action="store_true", help="trace the baseline precision instead of the policy")
    _add_set(p)
    return parser


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE",
        help="override a field, e.g. --set array.rows=64 --set training.epochs=5 "
        "(prefix workload., hw. or baseline_hw. when a name is ambiguous)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Console()
    err = Console(stderr=True)
    try:
        return _COMMANDS[args.command](args, out, err)
    except InputError as exc:
        for problem in exc.problems:
            err.print(f"accelsim: error: {problem}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err.print("accelsim: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an accelsim bug: say so in one line unless --debug
        if args.debug:
            raise
        err.print(
            f"accelsim: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            markup=False, highlight=False, soft_wrap=True,
        )
        return EXIT_INTERNAL


def _cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim import api
    from accelsim.report.console import comparison_table

    with err.status("preparing", spinner="dots") as status:
        result = api.run(
            args.workload, args.hardware, out=args.out, baseline_hw=args.baseline_hw, sets=args.set,
            progress=lambda msg: status.update(msg),
        )
    out.print(comparison_table(result.summary))
    out.print(f"baseline machine: {result.summary['baseline_hardware_source']}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"report: {result.out_dir}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim import api

    failed = 0
    for name in args.files:
        try:
            kind = api.validate_file(Path(name))
        except InputError as exc:
            failed += 1
            for problem in exc.problems:
                err.print(f"accelsim: error: {problem}", markup=False, highlight=False, soft_wrap=True)
        else:
            out.print(f"ok  {name} ({kind})", markup=False, highlight=False)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _cmd_trace(args: argparse.Namespace, out: Console, err: Console) -> int:
    from accelsim import api
    from accelsim.trace import dumps_trace, write_trace

    trace = api.trace_workload(args.workload, sets=args.set, baseline=args.baseline)
    if args.output:
        write_trace(trace, Path(args.output))
        err.print(f"wrote {len(trace)} ops to {args.output}", markup=False, highlight=False)
    else:
        sys.stdout.write(dumps_trace(trace))
    return EXIT_OK


_COMMANDS = {"run": _cmd_run, "validate": _cmd_validate, "trace": _cmd_trace}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
