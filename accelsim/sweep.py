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

Robustness:

* **Bounded.** The number of points is known before any is expanded; a sweep beyond
  :data:`accelsim.budget.SWEEP_POINTS_LIMIT` points, or estimated to take longer than
  :data:`accelsim.budget.LIMIT_S`, is refused unless ``allow_long`` (``--allow-long``). A value
  listed twice on one axis is an error (the point would run twice).
* **Workers die with the sweep.** Local workers are processes of their own pool that end when the
  sweep's process ends however it ends: each watches its parent (on Linux the kernel kills it the
  moment the parent dies, ``PR_SET_PDEATHSIG``; elsewhere a watchdog thread notices within half a
  second), and they never hold the terminal: their standard output and error go to ``/dev/null``,
  so ``accelsim sweep … | tee log`` ends when the sweep does. SIGTERM ends the sweep like Ctrl-C.
* **A dead worker costs one point, not the sweep.** A worker that dies (killed, out of memory)
  has its point run once more on a fresh worker; if that dies too, the point is recorded as failed
  with the reason and the sweep carries on. On Dask, the scheduler retries a point whose worker
  died, then it is recorded as failed.
* **A damaged store is set aside.** A ``results.sqlite`` that SQLite cannot read is moved to
  ``results.sqlite.damaged-<time>``; the points that can still be read from it are copied into a
  fresh store, and the outcome's ``notes`` say so; the others run again.
* **The folder is replaced whole.** ``results.csv``, the plots (and any file the plots write) are
  regenerated on every run and put in place item by item without a gap; files of an earlier run
  that are no longer written (plots of other axes) are deleted; a folder accelsim did not write, or
  one holding a file it did not write, is refused (:mod:`accelsim.report.files`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_ready
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from accelsim import budget
from accelsim.atomic import atomic_write_text
from accelsim.errors import InputError, Problem
from accelsim.report import files as report_files
from accelsim.spec import load as spec_load
from accelsim.spec.load import union_members
from accelsim.spec.models import HardwareSpec, SweepSpec, WorkloadSpec, suggest
from accelsim.spec.yamlio import load_yaml_file, parse_scalar
from accelsim.workload.model import resolve_path

STORE_NAME = "results.sqlite"
CSV_NAME = "results.csv"
#: Files of the store (SQLite's own companions included): kept in place from run to run.
STORE_FILES = (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal")

#: Figures exported per run (``policy_*`` and ``baseline_*`` columns), then the ratios.
RUN_FIGURES = (
    "cycles", "time_s", "energy_pj", "area_mm2", "average_power_mw", "utilization", "accuracy", "accuracy_std",
    "steps", "precision", "hardware", "array",
)
RATIOS = ("speedup", "energy_ratio", "accuracy_delta", "peak_speedup")
#: What the comparison of each point was (after the ratios): the iso baseline, if any.
POINT_FIELDS = ("iso",)


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
    #: ``None``, ``area`` or ``power``: every point's baseline resized to its 4-bit machine's
    iso: str | None = None

    @property
    def axes(self) -> list[str]:
        return [p for p, _ in self.grid] + [p for p, _ in self.zip]

    def combinations(self) -> Iterable[tuple[tuple[str, Any], ...]]:
        """Every point's (path, value) pairs, one by one: the product of the grid axes and the
        zipped block (generated, never all held at once)."""
        factors: list[list[tuple[tuple[str, Any], ...]]] = [
            [((path, v),) for v in values] for path, values in self.grid
        ]
        if self.zip:
            length = len(self.zip[0][1])
            factors.append([tuple((path, values[i]) for path, values in self.zip) for i in range(length)])
        for combo in itertools.product(*factors):
            yield tuple(itertools.chain.from_iterable(combo))


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
        iso=spec.iso,
    )


def parse_fixed(items: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """``--set PATH=VALUE`` options of a sweep: fields set at every point (``fixed:``)."""
    out: dict[str, Any] = {}
    for item in items:
        keys, value = spec_load.parse_set(item)  # run's own --set parsing: same rules, same errors
        out[".".join(keys)] = value
    return tuple(out.items())


def with_fixed(plan: SweepPlan, fixed: Sequence[tuple[str, Any]]) -> SweepPlan:
    """The plan with ``fixed`` fields set at every point (replacing the plan's own value of a
    field set twice); a field that is also an axis is refused."""
    if not fixed:
        return plan
    axes = {p for p, _ in (*plan.grid, *plan.zip)}
    for path, _ in fixed:
        if path in axes:
            raise InputError.single("--set", path, "is an axis of the sweep; set it with --grid or --zip only")
    merged = {**dict(plan.fixed), **dict(fixed)}
    return dataclasses.replace(plan, fixed=tuple(merged.items()))


def inline_plan(
    workload: Path, hardware: Path, grid: Sequence[str], zipped: Sequence[str] = (),
    baseline_hw: Path | None = None, name: str | None = None, iso: str | None = None,
    fixed: Sequence[str] = (),
) -> SweepPlan:
    """A plan from ``--grid PATH=V1,V2`` and ``--zip PATH=V1,V2`` options, ``--set PATH=VALUE``
    (fields set at every point) and ``--iso``."""
    def axes(items: Sequence[str], option: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        out = []
        for item in items:
            path, eq, raw = item.partition("=")
            if not eq or not path.strip() or not raw.strip():
                raise InputError.single(option, item, "expected PATH=V1,V2,..., e.g. array.rows=8,16,32")
            try:
                values = tuple(parse_scalar(v.strip()) for v in raw.split(","))
            except InputError as exc:
                raise InputError.single(option, path.strip(), exc.problems[0].message) from None
            out.append((path.strip(), values))
        return tuple(out)

    grid_axes, zip_axes = axes(grid, "--grid"), axes(zipped, "--zip")
    if not grid_axes and not zip_axes:
        raise InputError.single("--grid", "", "a sweep needs at least one --grid or --zip axis")
    data = {"version": 1, "name": name or f"{workload.stem}-{hardware.stem}-sweep",
            "workload": str(workload), "hardware": str(hardware),
            "grid": {p: list(v) for p, v in grid_axes}, "zip": {p: list(v) for p, v in zip_axes}}
    spec_load.validate_data("sweep", data, "--grid/--zip")
    plan = SweepPlan(data["name"], workload, hardware, baseline_hw, grid_axes, zip_axes, iso=iso)
    return with_fixed(plan, parse_fixed(fixed))


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
    known = HARDWARE_PATHS if head in ("hw", "hardware", "policy_hw", "baseline_hw") else (
        WORKLOAD_PATHS if head == "workload" else HARDWARE_PATHS + WORKLOAD_PATHS)
    if bare in known or any(bare.startswith(p) for p in _FREE_BELOW):
        return
    raise InputError.single(
        where, f"{section}.{path}",
        f"unknown field path {path!r}{suggest(bare, known)} (any field of the workload or hardware spec)",
    )


def point_count(plan: SweepPlan) -> int:
    """The number of points of ``plan``, without expanding it."""
    return budget.sweep_point_count([len(v) for _, v in plan.grid], len(plan.zip[0][1]) if plan.zip else None)


def plan_points(
    plan: SweepPlan, *, allow_long: bool = False, progress: Callable[[int, int], None] | None = None,
) -> list[Point]:
    """Validate the plan and every point; return the points with their keys.

    The number of points is checked first (:func:`accelsim.budget.check_sweep_points`), before a
    point is expanded. All problems are collected: unknown axis paths first, then points whose
    values fail validation (each named by its index and values). ``progress(done, total)`` is
    called as points are checked (a long, accepted plan).
    """
    from accelsim.api import ISO_KINDS, resolve_machines, split_sets

    count = check_point_count(plan, allow_long=allow_long)
    if plan.iso is not None and plan.iso not in ISO_KINDS:
        raise InputError.single(plan.source, "iso", f"expected one of {', '.join(ISO_KINDS)}; got {plan.iso!r}")
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
    files: dict[Path, dict] = {}

    def read(path: Path) -> dict:  # each hardware file read once for all points
        if path not in files:
            files[path] = load_yaml_file(path)
        return files[path]

    points = []
    keys: dict[str, int] = {}
    for index, params in enumerate(plan.combinations()):
        if progress is not None and index % 500 == 0:
            progress(index, count)
        sets = _sets(plan.fixed) + _sets(params)
        try:
            routed = split_sets(sets)
            w = spec_load.validate_data("workload", spec_load.apply_sets(wdata, routed["workload"], str(plan.workload)), str(plan.workload))
            machines = resolve_machines(plan.hardware, routed, plan.baseline_hw, read)
        except InputError as exc:
            label = ", ".join(f"{p}={v!r}" for p, v in params)
            problems.extend(Problem(p.file, p.field, f"{p.message} (point {index}: {label})") for p in exc.problems)
            if len(problems) >= 20:
                break
            continue
        resolved = {
            "workload": w.model_dump(mode="json"), "hardware": machines.hardware.model_dump(mode="json"),
            "baseline_hw": machines.baseline.model_dump(mode="json"), "iso": plan.iso,
        }
        key = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:20]
        if key in keys:
            label = ", ".join(f"{p}={v!r}" for p, v in params)
            problems.append(Problem(
                plan.source, "", f"point {index} ({label}) is the same configuration as point {keys[key]}; "
                "each would run twice",
            ))
            continue
        keys[key] = index
        points.append(Point(index, tuple(params), key, tuple(sets)))
    if problems:
        raise InputError(problems)
    if progress is not None:
        progress(count, count)
    return points


def check_point_count(plan: SweepPlan, *, allow_long: bool = False) -> int:
    """The number of points of ``plan``, refused (:func:`accelsim.budget.check_sweep_points`) before
    any point is expanded when there are too many."""
    count = point_count(plan)
    budget.check_sweep_points(count, plan.source, _count_field(plan), allow_long=allow_long)
    return count


def _count_field(plan: SweepPlan) -> str:
    """The field a sweep's size is blamed on: its ``grid`` (or ``zip``) in a file, else the axes."""
    if not plan.source.startswith("--"):
        return "grid" if plan.grid else "zip"
    return ", ".join(plan.axes)


def check_cost(plan: SweepPlan, points: list[Point], jobs: int | None = None, *, allow_long: bool = False) -> None:
    """Refuse a sweep estimated to take longer than :data:`accelsim.budget.LIMIT_S` (unless
    ``allow_long``): its first point's cost (:func:`accelsim.budget.check_workload`, which also
    refuses a point too large to run at all) times the points, its distinct trainings, its workers."""
    from accelsim import api

    if not points:
        return
    routed = api.split_sets(points[0].sets)
    workload = api.load_workload(plan.workload, routed["workload"])
    network = api.build_network(workload, str(plan.workload), plan.workload.parent)
    cost = budget.check_workload(workload, network, str(plan.workload), allow_long=allow_long)
    if plan.iso == "power":  # each point searches its baseline's array
        cost = api.iso_cost(workload, network, str(plan.workload), cost)
    trainings = len({tuple(api.split_sets(p.sets)["workload"]) for p in points}) if workload.trained else 0
    workers = max(1, min(jobs or multiprocessing.cpu_count(), len(points)))
    budget.check_sweep_time(len(points), cost, trainings, workers, plan.source, _count_field(plan), allow_long=allow_long)


def _load_base(path: Path) -> dict:
    from accelsim.api import implied_workload

    implied = implied_workload(path)
    return implied if implied is not None else load_yaml_file(path)


# ------------------------------------------------------------------------------------------------
# running one point (in a worker process)


def run_point(task: dict[str, Any], sim_cache: Any = None) -> dict[str, Any]:
    """Run one point; never raises: a failure is returned as ``status: failed`` with its error.
    ``sim_cache`` (an :class:`accelsim.api.SimCache`) keeps step simulations between points."""
    from accelsim import api

    out = {"key": task["key"], "index": task["index"], "params": task["params"]}
    try:
        result = api.run(
            task["workload"], task["hardware"], baseline_hw=task["baseline_hw"], sets=task["sets"], write=False,
            iso=task.get("iso"), cache_dir=task["cache_dir"], allow_long=task.get("allow_long", False),
            jobs=1, sim_cache=sim_cache,  # jobs=1: the sweep is parallel already
        )
    except InputError as exc:
        return {**out, "status": "failed", "error": str(exc).replace("\n", "; "), "summary": None}
    except Exception as exc:  # keep the sweep going; the error is recorded with the point
        return {**out, "status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}", "summary": None}
    return {**out, "status": "ok", "error": None, "summary": result.summary}


class PointRunner:
    """:func:`run_point` with a simulation cache of its own (:class:`accelsim.api.SimCache`): a
    worker process gets one copy and keeps it for every point it runs, so points that share a
    machine and a trace (the baseline of a sweep over 4-bit recipes or ``policy_hw.`` fields, the
    arrays an iso-power search measures) simulate it once. The cache is made in the worker, never
    pickled."""

    def __init__(self, size: int = 32):
        self.size = size
        self._cache: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.size, self._cache = state["size"], None

    def __call__(self, task: dict[str, Any]) -> dict[str, Any]:
        if self._cache is None:
            from accelsim.api import SimCache

            self._cache = SimCache(self.size)
        return run_point(task, self._cache)


def _task(plan: SweepPlan, point: Point, cache_dir: Path, allow_long: bool = False) -> dict[str, Any]:
    return {
        "cache_dir": str(cache_dir), "allow_long": allow_long, "iso": plan.iso,
        "key": point.key, "index": point.index, "params": [list(p) for p in point.params],
        "workload": str(plan.workload), "hardware": str(plan.hardware),
        "baseline_hw": str(plan.baseline_hw) if plan.baseline_hw else None, "sets": list(point.sets),
    }


# ------------------------------------------------------------------------------------------------
# the store


class SweepStore:
    """``results.sqlite``: one row per finished point, each committed on its own.

    Opening checks the file (``PRAGMA quick_check`` and every row's fields); a file SQLite cannot
    read is moved aside and what can be read of it copied into a fresh store (:attr:`notes` says
    what happened). A store in use by another sweep, or in a folder that cannot be written, is an
    environment error (``OSError``)."""

    def __init__(self, path: Path):
        self.path = path
        self.notes: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open()
            self._check()
        except sqlite3.DatabaseError as exc:
            self._environment_error(exc)
            self._recover(exc)

    def _open(self) -> None:
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS points ("
            " key TEXT PRIMARY KEY, idx INTEGER NOT NULL, params TEXT NOT NULL,"
            " status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), error TEXT, summary TEXT)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def _environment_error(self, exc: sqlite3.DatabaseError) -> None:
        """Re-raise what is not damage (locked, unwritable) as an ``OSError`` naming the store."""
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc).lower()
        if code in (5, 6) or "locked" in text or "busy" in text:  # SQLITE_BUSY, SQLITE_LOCKED
            raise OSError(errno.EBUSY, f"in use by another sweep ({exc}); wait for it or choose another --out",
                          str(self.path)) from None
        if code in (3, 8, 10, 14) or "unable to open" in text or "readonly" in text or "disk i/o" in text:
            raise OSError(errno.EIO, f"cannot write the sweep's store: {exc}", str(self.path)) from None
        if code == 13 or "full" in text:  # SQLITE_FULL
            raise OSError(errno.ENOSPC, f"disk full: {exc}", str(self.path)) from None

    def _check(self) -> None:
        rows = self.db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            first = " ".join(str(rows[0][0]).split()) if rows else "no answer"  # SQLite's text spans lines
            raise sqlite3.DatabaseError(f"integrity check failed: {first}")
        columns = [r[1] for r in self.db.execute("PRAGMA table_info(points)")]
        if columns != ["key", "idx", "params", "status", "error", "summary"]:
            raise sqlite3.DatabaseError(f"table 'points' has columns {columns}, not accelsim's")
        bad = [key for key, *rest in self.db.execute("SELECT key, idx, params, status, error, summary FROM points")
               if _bad_row(key, *rest)]
        for key in bad:
            self.db.execute("DELETE FROM points WHERE key = ?", (key,))
        if bad:
            self.notes.append(
                f"{self.path}: {len(bad)} stored point{'s' if len(bad) != 1 else ''} could not be read "
                f"(edited or damaged) and will run again"
            )

    def _recover(self, exc: Exception) -> None:
        try:
            self.db.close()
        except Exception:  # the connection may never have opened
            pass
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                os.replace(companion, aside.with_name(aside.name + suffix))
        salvaged = _salvage(aside)
        self._open()
        for row in salvaged:
            self.db.execute(
                "INSERT OR REPLACE INTO points (key, idx, params, status, error, summary) VALUES (?, ?, ?, ?, ?, ?)", row,
            )
        self.notes.append(
            f"{self.path} was damaged ({exc}); it was moved to {aside.name} and {len(salvaged)} finished "
            f"point{'s' if len(salvaged) != 1 else ''} recovered from it; the others run again"
        )

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


def _bad_row(key: Any, idx: Any, params: Any, status: Any, error: Any, summary: Any) -> bool:
    """Whether a stored row is unusable (edited, or damaged without SQLite noticing)."""
    if not isinstance(key, str) or not isinstance(idx, int) or status not in ("ok", "failed"):
        return True
    try:
        if not isinstance(json.loads(params), list):
            return True
        if status == "ok" and not isinstance(json.loads(summary), dict):
            return True
    except (TypeError, ValueError):
        return True
    return False


def _salvage(path: Path) -> list[tuple]:
    """The readable, well-formed rows of a damaged store (as many as SQLite gives before failing)."""
    rows: list[tuple] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return rows
    try:
        cursor = db.execute("SELECT key, idx, params, status, error, summary FROM points")
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.Error:
                break
            if row is None:
                break
            if not _bad_row(*row):
                rows.append(tuple(row))
    except sqlite3.Error:
        pass
    finally:
        db.close()
    return rows


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
    #: What the user should know (a damaged store set aside, points recovered).
    notes: list[str] = field(default_factory=list)


#: progress(done, failed, total): called as points finish.
SweepProgress = Callable[[int, int, int], None]


def check_folder(out_dir: Path) -> None:
    """Raise :class:`InputError` unless ``out_dir`` may hold this sweep: absent, empty, or a sweep
    folder accelsim wrote holding only its own files."""
    try:
        report_files.check_replaceable(out_dir, also_ours=STORE_FILES, legacy=True)
    except report_files.ReportFolderError as exc:
        raise InputError.single(str(out_dir), "--out", str(exc)) from None


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
    allow_long: bool = False,
) -> SweepOutcome:
    """Run every point not already in the store; export ``results.csv``, draw the plots of level
    ``plots`` and write ``report.md``; return the tally.

    ``points`` are the plan's validated points (:func:`plan_points`), computed here if not given.
    Nothing is written before the plan, its cost (:func:`check_cost`), the scheduler address and
    the folder are checked.
    """
    if scheduler is not None:
        check_scheduler(scheduler)
    if points is None:
        points = plan_points(plan, allow_long=allow_long)
    check_cost(plan, points, jobs, allow_long=allow_long)
    check_folder(out_dir)
    if not out_dir.exists() or not (out_dir / report_files.REPORT_MARKER).exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        report_files.write_marker(out_dir)  # the folder is accelsim's from its first moment
    store = SweepStore(out_dir / STORE_NAME)
    try:
        store.set_meta("plan", {"name": plan.name, "axes": plan.axes, "points": len(points), "iso": plan.iso})
        done = store.finished_keys()
        todo = [p for p in points if p.key not in done]
        tally = SweepOutcome(out_dir, len(points), len(points) - len(todo), 0, 0, notes=list(store.notes))
        report = progress or (lambda *_: None)
        report(tally.skipped, 0, len(points))
        runner = _run_dask if (executor == "dask" or scheduler) else _run_local
        cache_dir = out_dir.resolve().parent / ".cache" / "training"
        results = runner(_waves(plan, todo, cache_dir, allow_long), jobs, scheduler, fn=PointRunner())
        with contextlib.closing(results):  # however the loop ends, the workers end with it
            for result in results:
                store.record(result)
                if result["status"] == "ok":
                    tally.ok += 1
                else:
                    tally.failed += 1
                    tally.failures.append((result["index"], result["error"]))
                report(tally.skipped + tally.ok + tally.failed, tally.failed, len(points))
        staging = report_files.staging_folder(out_dir)
        try:
            export_csv(store, points, plan.axes, staging / CSV_NAME)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        store.close()
    publish_results(staging, out_dir, plots)
    return tally


def publish_results(staging: Path, out_dir: Path, plots: str = "summary") -> None:
    """Draw the plots of level ``plots`` and write ``report.md`` from ``staging``'s ``results.csv``,
    then put everything generated in place in ``out_dir`` (each item atomically; items an earlier
    run wrote and this one did not are removed)."""
    from accelsim.report.sweep_report import write_sweep_report

    try:
        write_sweep_report(staging, plots)
        report_files.publish_items(staging, out_dir, keep=STORE_FILES)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _waves(plan: SweepPlan, points: list[Point], cache_dir: Path, allow_long: bool = False) -> list[list[dict[str, Any]]]:
    """Two waves: first one point per distinct workload configuration (so each training runs once
    and lands in the cache), then every other point, which finds its trainings cached."""
    from accelsim.api import split_sets

    first: dict[tuple[str, ...], Point] = {}
    for p in points:
        first.setdefault(tuple(split_sets(p.sets)["workload"]), p)
    lead = {p.key for p in first.values()}
    waves = [
        [_task(plan, p, cache_dir, allow_long) for p in points if p.key in lead],
        [_task(plan, p, cache_dir, allow_long) for p in points if p.key not in lead],
    ]
    return [w for w in waves if w]


# ------------------------------------------------------------------------------------------------
# local workers: a small pool that knows which point each worker runs


def _die_with_parent(parent: int) -> None:
    """In a worker: end the moment the sweep's process ``parent`` is gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: the kernel kills us with the parent
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="accelsim-parent-watch", daemon=True).start()


def _worker_main(conn: Any, parent: int, fn: Callable[[dict], dict]) -> None:
    """A worker process: run the points it is sent (with ``fn``), one at a time, until told to stop."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the sweep decides
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # never hold the sweep's output pipe (| tee) open, never print
    os.dup2(devnull, 2)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(fn(task))


@dataclass
class _Worker:
    process: Any
    conn: Any
    task: dict[str, Any] | None = None


def _start_worker(ctx: Any, fn: Callable[[dict], dict]) -> _Worker:
    parent_end, child_end = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=_worker_main, args=(child_end, os.getpid(), fn), daemon=True, name="accelsim-sweep-worker",
    )
    process.start()
    child_end.close()
    return _Worker(process, parent_end)


def _stop_workers(workers: list[_Worker], graceful: bool) -> None:
    for w in workers:
        if graceful and w.task is None:
            try:
                w.conn.send(None)
            except OSError:
                pass
        elif w.process.is_alive():
            w.process.terminate()
    deadline = time.monotonic() + 2.0
    for w in workers:
        w.process.join(max(0.0, deadline - time.monotonic()))
        if w.process.is_alive():
            w.process.kill()
            w.process.join(1.0)
        w.conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = "; out of memory?" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


def _died(task: dict[str, Any], how: str) -> dict[str, Any]:
    return {
        "key": task["key"], "index": task["index"], "params": task["params"], "status": "failed",
        "error": f"the worker process running this point died twice ({how}); it was not retried again",
        "summary": None,
    }


def _run_local(
    waves: list[list[dict]], jobs: int | None, scheduler: str | None, fn: Callable[[dict], dict] = run_point,
) -> Iterable[dict]:
    """Run the waves' tasks on ``jobs`` worker processes (in this process if one), yielding each
    result as it arrives; ``fn`` runs one task (a module-level function, :func:`run_point`)."""
    total = sum(len(w) for w in waves)
    if not total:
        return
    count = max(1, min(jobs or multiprocessing.cpu_count(), total))
    if count == 1:
        for task in itertools.chain.from_iterable(waves):
            yield fn(task)
        return
    ctx = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    graceful = False
    try:
        workers = [_start_worker(ctx, fn) for _ in range(count)]
        for tasks in waves:
            queue = deque(tasks)
            deaths: dict[str, int] = {}
            while queue or any(w.task is not None for w in workers):
                for w in workers:
                    if w.task is None and queue:
                        w.task = queue.popleft()
                        w.conn.send(w.task)
                busy = [w for w in workers if w.task is not None]
                ready = set(wait_ready([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for i, w in enumerate(list(workers)):
                    if w.task is None or (w.conn not in ready and w.process.sentinel not in ready):
                        continue
                    result = None
                    try:
                        if w.conn.poll():
                            result = w.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    if result is not None:
                        w.task = None
                        yield result
                        continue
                    # the worker died with the point: run it once more on a fresh worker
                    task, w.task = w.task, None
                    w.process.join(1.0)
                    how = _death(w.process.exitcode)
                    w.conn.close()
                    deaths[task["key"]] = deaths.get(task["key"], 0) + 1
                    if deaths[task["key"]] >= 2:
                        yield _died(task, how)
                    else:
                        queue.appendleft(task)
                    workers[workers.index(w)] = _start_worker(ctx, fn)
        graceful = True
    finally:
        _stop_workers(workers, graceful)


# ------------------------------------------------------------------------------------------------
# Dask

_SCHEDULER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?$|^(tcp|tls)://\[[0-9a-fA-F:]+\](:\d{1,5})?/?$")


def check_scheduler(address: str) -> None:
    """Raise :class:`InputError` unless ``address`` looks like a Dask scheduler address."""
    if not _SCHEDULER.match(address.strip()):
        raise InputError.single(
            "--scheduler", address, "not a Dask scheduler address; expected PROTOCOL://HOST:PORT, e.g. tcp://10.0.0.5:8786",
        )


def _probe(address: str) -> None:
    """Fail at once, as an environment error, when nothing listens at a tcp:// scheduler address
    (instead of retrying until the client's timeout)."""
    match = re.match(r"^tcp://\[?([^\]/]+?)\]?:(\d+)/?$", address.strip())
    if not match:
        return
    import socket

    try:
        socket.create_connection((match[1], int(match[2])), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(
            errno.ECONNREFUSED, f"cannot reach the Dask scheduler {address}: {exc.strerror or exc}", "--scheduler",
        ) from None


def _run_dask(
    waves: list[list[dict]], jobs: int | None, scheduler: str | None, fn: Callable[[dict], dict] = run_point,
) -> Iterable[dict]:
    """Run the waves' tasks on Dask (``scheduler``, or a local cluster of ``jobs`` workers),
    yielding each result as it arrives; a task whose workers keep dying is recorded as failed."""
    total = sum(len(w) for w in waves)
    if not total:
        return
    try:
        from distributed import Client, LocalCluster, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise InputError.single("--executor", "dask", "Dask is not installed: pip install 'accelsim[dask]'") from None
    cluster = None
    try:
        if scheduler:
            check_scheduler(scheduler)
            _probe(scheduler)
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    errno.ECONNREFUSED, f"cannot reach the Dask scheduler {scheduler}: {exc}", "--scheduler",
                ) from None
            except ValueError as exc:
                raise InputError.single("--scheduler", scheduler, f"not a Dask scheduler address: {exc}") from None
        else:
            workers = max(1, min(jobs or multiprocessing.cpu_count(), total))
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            for tasks in waves:
                futures = client.map(fn, tasks, pure=False)
                by_key = {fut.key: task for fut, task in zip(futures, tasks)}
                for fut in as_completed(futures):
                    try:
                        yield fut.result()
                    except KilledWorker as exc:  # its workers kept dying: the point fails, the sweep goes on
                        task = by_key[fut.key]
                        yield {
                            "key": task["key"], "index": task["index"], "params": task["params"], "status": "failed",
                            "error": f"the Dask workers running this point died ({exc})", "summary": None,
                        }
                    except (OSError, TimeoutError) as exc:
                        raise ConnectionError(
                            errno.ECONNRESET, f"lost the Dask scheduler: {exc}", "--scheduler" if scheduler else "dask",
                        ) from None
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------------
# export


def csv_columns(axes: list[str]) -> list[str]:
    runs = [f"{label}_{fig}" for label in ("policy", "baseline") for fig in RUN_FIGURES]
    return ["index", *axes, *runs, *RATIOS, *POINT_FIELDS, "status", "error", "key"]


def result_row(row: dict[str, Any], axes: list[str]) -> dict[str, Any]:
    params = dict((p, v) for p, v in row["params"])
    out: dict[str, Any] = {"index": row["index"], **{a: _cell(params.get(a)) for a in axes}}
    summary = row["summary"] or {}
    for label in ("policy", "baseline"):
        run = (summary.get("runs") or {}).get(label) or {}
        for fig in RUN_FIGURES:
            value = run.get(fig)
            if fig == "array" and run.get("array_rows") is not None:
                value = f"{run['array_rows']}x{run['array_cols']}"
            out[f"{label}_{fig}"] = _cell(value)
    for ratio in RATIOS:
        out[ratio] = _cell(summary.get(ratio))
    out["iso"] = _cell(summary.get("iso")) if row["summary"] is not None else ""
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
