"""Sweeps: many configurations of one workload and machine, run in parallel, stored as they finish.

A sweep varies field paths of the workload or hardware spec (``array.rows``, ``sram.ifmap_kib``,
``training.epochs``, ``hw.name`` …): ``grid`` axes form a product, ``zip`` axes advance together
(as one axis of the product). Every point runs the policy and its baseline exactly as
``accelsim run`` does (:func:`accelsim.api.run` without writing a report).

Execution: local processes (``jobs`` workers) or Dask distributed (an existing scheduler, or a
``LocalCluster`` on loopback). Trainings are cached beside the sweep folder
(``<parent>/.cache/training``, shared with ``accelsim run``): one point per distinct workload
configuration runs first, so every other point finds its trainings cached — each (workload,
precision) is trained once however many machines the sweep visits. On a cluster, the sweep
folder must be on storage the workers share. Results go to ``results.sqlite`` in the sweep folder, one row per
point keyed by a hash of the point's resolved configuration, each in its own transaction: a sweep
killed at any moment keeps every finished point and no partial row, and re-running it skips the
points already done. ``results.csv`` is exported from the store, one column per swept field, then
the figures of both runs and the ratios.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import sqlite3
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from accelsim.atomic import atomic_write_text
from accelsim.errors import InputError, Problem
from accelsim.spec import load as spec_load
from accelsim.spec.load import union_members
from accelsim.spec.models import HardwareSpec, SweepSpec, WorkloadSpec, suggest
from accelsim.spec.yamlio import load_yaml_file, parse_scalar
from accelsim.workload.model import resolve_path

STORE_NAME = "results.sqlite"
CSV_NAME = "results.csv"

#: Figures exported per run (``policy_*`` and ``baseline_*`` columns), then the ratios.
RUN_FIGURES = ("cycles", "time_s", "energy_pj", "area_mm2", "utilization", "accuracy", "steps")
RATIOS = ("speedup", "energy_ratio", "accuracy_delta")


# ------------------------------------------------------------------------------------------------
# the plan


@dataclass(frozen=True)
class Point:
    """One configuration: its place in the plan, the values of the swept fields, its key, and
    every override it runs with (the plan's fixed fields, then the swept ones)."""

    index: int
    params: tuple[tuple[str, Any], ...]
    key: str
    sets: tuple[str, ...] = ()


def _sets(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    return [f"{path}={json.dumps(value)}" for path, value in pairs]


@dataclass(frozen=True)
class SweepPlan:
    name: str
    workload: Path
    hardware: Path
    baseline_hw: Path | None
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    zip: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    source: str = "--grid"
    fixed: tuple[tuple[str, Any], ...] = ()

    @property
    def axes(self) -> list[str]:
        return [p for p, _ in self.grid] + [p for p, _ in self.zip]

    def combinations(self) -> list[tuple[tuple[str, Any], ...]]:
        """Every point's (path, value) pairs: the product of the grid axes and the zipped block."""
        factors: list[list[tuple[tuple[str, Any], ...]]] = [
            [((path, v),) for v in values] for path, values in self.grid
        ]
        if self.zip:
            length = len(self.zip[0][1])
            factors.append([tuple((path, values[i]) for path, values in self.zip) for i in range(length)])
        return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*factors)]


def load_sweep_file(path: Path) -> SweepPlan:
    spec: SweepSpec = spec_load.load_sweep(path)  # type: ignore[assignment]
    base = path.parent
    return SweepPlan(
        name=spec.name,
        workload=resolve_path(base, spec.workload),
        hardware=resolve_path(base, spec.hardware),
        baseline_hw=resolve_path(base, spec.baseline_hw) if spec.baseline_hw else None,
        grid=tuple((k, tuple(v)) for k, v in spec.grid.items()),
        zip=tuple((k, tuple(v)) for k, v in spec.zip.items()),
        source=str(path),
        fixed=tuple(spec.fixed.items()),
    )


def inline_plan(
    workload: Path, hardware: Path, grid: Sequence[str], zipped: Sequence[str] = (),
    baseline_hw: Path | None = None, name: str | None = None,
) -> SweepPlan:
    """A plan from ``--grid PATH=V1,V2`` and ``--zip PATH=V1,V2`` options."""
    def axes(items: Sequence[str], option: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        out = []
        for item in items:
            path, eq, raw = item.partition("=")
            if not eq or not path.strip() or not raw.strip():
                raise InputError.single(option, item, "expected PATH=V1,V2,..., e.g. array.rows=8,16,32")
            values = tuple(parse_scalar(v.strip()) for v in raw.split(","))
            out.append((path.strip(), values))
        return tuple(out)

    grid_axes, zip_axes = axes(grid, "--grid"), axes(zipped, "--zip")
    if not grid_axes and not zip_axes:
        raise InputError.single("--grid", "", "a sweep needs at least one --grid or --zip axis")
    data = {"version": 1, "name": name or f"{workload.stem}-{hardware.stem}-sweep",
            "workload": str(workload), "hardware": str(hardware),
            "grid": {p: list(v) for p, v in grid_axes}, "zip": {p: list(v) for p, v in zip_axes}}
    spec_load.validate_data("sweep", data, "--grid/--zip")
    return SweepPlan(data["name"], workload, hardware, baseline_hw, grid_axes, zip_axes)


# ------------------------------------------------------------------------------------------------
# validation: every axis path exists, every point's specs validate, each point gets its key


def _field_paths(model: type, prefix: str = "") -> list[str]:
    """Dotted paths of every field of a spec model (leaves and intermediate mappings)."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        for member in union_members(info.annotation):
            if isinstance(member, type) and hasattr(member, "model_fields"):
                out.extend(_field_paths(member, path + "."))
    return out


HARDWARE_PATHS = _field_paths(HardwareSpec)
WORKLOAD_PATHS = _field_paths(WorkloadSpec)
#: Fields whose value is a mapping or list with free keys/indices below them.
_FREE_BELOW = ("array.modes.", "model.layers.", "model.params.", "precision.", "baseline.", "model.input.")


def check_axis_path(path: str, where: str, section: str = "grid") -> None:
    """Raise InputError unless ``path`` names a field of the workload or hardware spec."""
    from accelsim.api import SET_PREFIXES

    head, _, rest = path.partition(".")
    bare = rest if head in SET_PREFIXES and rest else path
    known = HARDWARE_PATHS if head in ("hw", "hardware", "baseline_hw") else (
        WORKLOAD_PATHS if head == "workload" else HARDWARE_PATHS + WORKLOAD_PATHS)
    if bare in known or any(bare.startswith(p) for p in _FREE_BELOW):
        return
    raise InputError.single(
        where, f"{section}.{path}",
        f"unknown field path {path!r}{suggest(bare, known)} (any field of the workload or hardware spec)",
    )


def plan_points(plan: SweepPlan) -> list[Point]:
    """Validate the plan and every point; return the points with their keys.

    All problems are collected: unknown axis paths first, then points whose values fail
    validation (each named by its index and values).
    """
    from accelsim.api import split_sets

    problems: list[Problem] = []
    sections = [("fixed", p) for p, _ in plan.fixed] + [("grid", p) for p, _ in plan.grid] + [("zip", p) for p, _ in plan.zip]
    for section, path in sections:
        try:
            check_axis_path(path, plan.source, section)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    wdata = _load_base(plan.workload)
    hdata = load_yaml_file(plan.hardware)
    bdata = load_yaml_file(plan.baseline_hw) if plan.baseline_hw else None
    points = []
    for index, params in enumerate(plan.combinations()):
        sets = _sets(plan.fixed) + _sets(params)
        try:
            routed = split_sets(sets)
            w = spec_load.validate_data("workload", spec_load.apply_sets(wdata, routed["workload"], str(plan.workload)), str(plan.workload))
            h = spec_load.validate_data("hardware", spec_load.apply_sets(hdata, routed["hardware"], str(plan.hardware)), str(plan.hardware))
            b = None
            if bdata is not None:
                b = spec_load.validate_data("hardware", spec_load.apply_sets(bdata, routed["baseline_hw"], str(plan.baseline_hw)), str(plan.baseline_hw))
        except InputError as exc:
            label = ", ".join(f"{p}={v!r}" for p, v in params)
            problems.extend(Problem(p.file, p.field, f"{p.message} (point {index}: {label})") for p in exc.problems)
            if len(problems) >= 20:
                break
            continue
        resolved = {
            "workload": w.model_dump(mode="json"), "hardware": h.model_dump(mode="json"),
            "baseline_hw": b.model_dump(mode="json") if b is not None else None,
        }
        key = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:20]
        points.append(Point(index, tuple(params), key, tuple(sets)))
    if problems:
        raise InputError(problems)
    return points


def _load_base(path: Path) -> dict:
    if path.suffix.lower() == ".csv":
        return {"version": 1, "name": path.stem, "phases": "inference", "model": {"topology": str(path.resolve())}}
    return load_yaml_file(path)


# ------------------------------------------------------------------------------------------------
# running one point (in a worker process)


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one point; never raises: a failure is returned as ``status: failed`` with its error."""
    from accelsim import api

    out = {"key": task["key"], "index": task["index"], "params": task["params"]}
    try:
        result = api.run(
            task["workload"], task["hardware"], baseline_hw=task["baseline_hw"], sets=task["sets"], write=False,
            cache_dir=task["cache_dir"],
        )
    except InputError as exc:
        return {**out, "status": "failed", "error": str(exc).replace("\n", "; "), "summary": None}
    except Exception as exc:  # keep the sweep going; the error is recorded with the point
        return {**out, "status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}", "summary": None}
    return {**out, "status": "ok", "error": None, "summary": result.summary}


def _task(plan: SweepPlan, point: Point, cache_dir: Path) -> dict[str, Any]:
    return {
        "cache_dir": str(cache_dir),
        "key": point.key, "index": point.index, "params": [list(p) for p in point.params],
        "workload": str(plan.workload), "hardware": str(plan.hardware),
        "baseline_hw": str(plan.baseline_hw) if plan.baseline_hw else None, "sets": list(point.sets),
    }


# ------------------------------------------------------------------------------------------------
# the store


class SweepStore:
    """``results.sqlite``: one row per finished point, each committed on its own."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS points ("
            " key TEXT PRIMARY KEY, idx INTEGER NOT NULL, params TEXT NOT NULL,"
            " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), error TEXT, summary TEXT)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def close(self) -> None:
        self.db.close()

    def set_meta(self, name: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def meta(self, name: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def finished_keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM points WHERE status = 'ok'")}

    def record(self, result: dict[str, Any]) -> None:
        summary = json.dumps(result["summary"], sort_keys=False) if result["summary"] is not None else None
        self.db.execute(
            "INSERT OR REPLACE INTO points (key, idx, params, status, error, summary) VALUES (?, ?, ?, ?, ?, ?)",
            (result["key"], result["index"], json.dumps(result["params"]), result["status"], result["error"], summary),
        )

    def rows(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        rows = [
            {"key": k, "index": i, "params": json.loads(p), "status": s, "error": e,
             "summary": json.loads(m) if m else None}
            for k, i, p, s, e, m in self.db.execute("SELECT key, idx, params, status, error, summary FROM points")
        ]
        if keys is not None:
            wanted = set(keys)
            rows = [r for r in rows if r["key"] in wanted]
        return sorted(rows, key=lambda r: r["index"])


# ------------------------------------------------------------------------------------------------
# running a sweep


@dataclass
class SweepOutcome:
    out_dir: Path
    total: int
    skipped: int
    ok: int
    failed: int
    failures: list[tuple[int, str]] = field(default_factory=list)


#: progress(done, failed, total): called as points finish.
SweepProgress = Callable[[int, int, int], None]


def run_sweep(
    plan: SweepPlan,
    out_dir: Path,
    *,
    jobs: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    progress: SweepProgress | None = None,
    points: list[Point] | None = None,
    plots: str = "summary",
) -> SweepOutcome:
    """Run every point not already in the store; export ``results.csv``, draw the plots of level
    ``plots`` and write ``report.md``; return the tally.

    ``points`` are the plan's validated points (:func:`plan_points`), computed here if not given.
    """
    if points is None:
        points = plan_points(plan)
    store = SweepStore(out_dir / STORE_NAME)
    try:
        store.set_meta("plan", {"name": plan.name, "axes": plan.axes, "points": len(points)})
        done = store.finished_keys()
        todo = [p for p in points if p.key not in done]
        tally = SweepOutcome(out_dir, len(points), len(points) - len(todo), 0, 0)
        report = progress or (lambda *_: None)
        report(tally.skipped, 0, len(points))
        runner = _run_dask if (executor == "dask" or scheduler) else _run_local
        cache_dir = out_dir.resolve().parent / ".cache" / "training"
        for result in runner(_waves(plan, todo, cache_dir), jobs, scheduler):
            store.record(result)
            if result["status"] == "ok":
                tally.ok += 1
            else:
                tally.failed += 1
                tally.failures.append((result["index"], result["error"]))
            report(tally.skipped + tally.ok + tally.failed, tally.failed, len(points))
        export_csv(store, points, plan.axes, out_dir / CSV_NAME)
    finally:
        store.close()
    from accelsim.report.sweep_report import write_sweep_report

    write_sweep_report(out_dir, plots)  # plots and report.md, from results.csv alone
    return tally


def _waves(plan: SweepPlan, points: list[Point], cache_dir: Path) -> list[list[dict[str, Any]]]:
    """Two waves: first one point per distinct workload configuration (so each training runs once
    and lands in the cache), then every other point, which finds its trainings cached."""
    from accelsim.api import split_sets

    first: dict[tuple[str, ...], Point] = {}
    for p in points:
        first.setdefault(tuple(split_sets(p.sets)["workload"]), p)
    lead = {p.key for p in first.values()}
    waves = [
        [_task(plan, p, cache_dir) for p in points if p.key in lead],
        [_task(plan, p, cache_dir) for p in points if p.key not in lead],
    ]
    return [w for w in waves if w]


def _run_local(waves: list[list[dict]], jobs: int | None, scheduler: str | None) -> Iterable[dict]:
    total = sum(len(w) for w in waves)
    if not total:
        return
    workers = max(1, min(jobs or multiprocessing.cpu_count(), total))
    if workers == 1:
        for task in itertools.chain.from_iterable(waves):
            yield run_point(task)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for tasks in waves:
            pending = {pool.submit(run_point, t) for t in tasks[: workers * 2]}
            queue = iter(tasks[workers * 2:])
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(run_point, nxt))


def _run_dask(waves: list[list[dict]], jobs: int | None, scheduler: str | None) -> Iterable[dict]:
    total = sum(len(w) for w in waves)
    if not total:
        return
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError.single("--executor", "dask", "Dask is not installed: pip install 'accelsim[dask]'") from None
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise InputError.single("--scheduler", scheduler, f"cannot reach the Dask scheduler: {exc}") from None
        else:
            workers = max(1, min(jobs or multiprocessing.cpu_count(), total))
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            for tasks in waves:
                for fut in as_completed(client.map(run_point, tasks, pure=False)):
                    yield fut.result()
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------------
# export


def csv_columns(axes: list[str]) -> list[str]:
    runs = [f"{label}_{fig}" for label in ("policy", "baseline") for fig in RUN_FIGURES]
    return ["index", *axes, *runs, *RATIOS, "status", "error", "key"]


def result_row(row: dict[str, Any], axes: list[str]) -> dict[str, Any]:
    params = dict((p, v) for p, v in row["params"])
    out: dict[str, Any] = {"index": row["index"], **{a: _cell(params.get(a)) for a in axes}}
    summary = row["summary"] or {}
    for label in ("policy", "baseline"):
        run = (summary.get("runs") or {}).get(label) or {}
        for fig in RUN_FIGURES:
            out[f"{label}_{fig}"] = _cell(run.get(fig))
    for ratio in RATIOS:
        out[ratio] = _cell(summary.get(ratio))
    out.update(status=row["status"], error=row["error"] or "", key=row["key"])
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def export_csv(store: SweepStore, points: list[Point], axes: list[str], path: Path) -> None:
    from accelsim.report.writers import dumps_csv

    rows = store.rows(p.key for p in points)
    atomic_write_text(path, dumps_csv(csv_columns(axes), [result_row(r, axes) for r in rows]))
