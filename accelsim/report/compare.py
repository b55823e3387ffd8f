"""Several run folders and sweep folders side by side in one table (``accelsim compare DIR...``).

A run folder (``summary.json``) gives one row; a sweep folder (``results.csv``) gives a row per
point when it has at most :data:`MAX_SWEEP_ROWS` successful points, else a row for each of its
best points (by time, energy, energy-delay product and accuracy). The table is built here, as a
rich :class:`~rich.table.Table` for the console (printed only by the CLI) or as Markdown; the
folders are only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from accelsim.errors import InputError
from accelsim.report import plotkit as pk

if TYPE_CHECKING:
    from rich.table import Table

SWEEP_POLICY = "4-bit policy"
#: A sweep with at most this many successful points shows them all.
MAX_SWEEP_ROWS = 6
COLUMNS = ("folder", "what", "policy", "baseline", "time", "baseline time", "speedup", "energy",
           "baseline energy", "energy ratio", "accuracy", "accuracy delta")


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: a run, or one point of a sweep."""

    folder: str
    what: str
    policy: str
    baseline: str
    time_s: float | None
    baseline_time_s: float | None
    speedup: float | None
    energy_j: float | None
    baseline_energy_j: float | None
    energy_ratio: float | None
    accuracy: float | None
    accuracy_delta: float | None

    def cells(self) -> list[str]:
        return [
            self.folder, self.what, self.policy, self.baseline,
            pk.si(self.time_s, "s"), pk.si(self.baseline_time_s, "s"), _ratio(self.speedup),
            pk.si(self.energy_j, "J"), pk.si(self.baseline_energy_j, "J"), _ratio(self.energy_ratio),
            _pct(self.accuracy), "n/a" if self.accuracy_delta is None else f"{self.accuracy_delta * 100:+.2f} pt",
        ]


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _joules(value: Any) -> float | None:
    pj = pk.to_float(value)
    return None if pj is None else pj * 1e-12


def load_entries(folders: Sequence[Path]) -> list[Entry]:
    """The rows of every folder, in the order given. Folders that are neither a run folder nor a
    sweep folder, or whose files cannot be read, make one :class:`InputError` naming each."""
    from accelsim.errors import Problem

    entries: list[Entry] = []
    problems: list[Problem] = []
    for folder in folders:
        try:
            if (folder / "results.csv").is_file():
                entries += _sweep_entries(folder)
            elif (folder / "summary.json").is_file():
                entries.append(_run_entry(folder))
            else:
                why = "does not exist" if not folder.exists() else (
                    "is not a folder" if not folder.is_dir()
                    else "is neither a run folder (summary.json) nor a sweep folder (results.csv)")
                problems.append(Problem(str(folder), "", why))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    return entries


def _run_entry(folder: Path) -> Entry:
    from accelsim.report.run_plots import read_json

    path = folder / "summary.json"
    summary = read_json(path)
    runs = summary.get("runs")
    if not isinstance(runs, dict) or not all(isinstance(runs.get(k), dict) for k in ("policy", "baseline")):
        raise InputError.single(str(path), "runs", "expected the policy and baseline runs of an accelsim summary")
    p, b = runs["policy"], runs["baseline"]
    what = f"{summary.get('workload', '?')}, {pk.step_kind(summary)}"
    steps = p.get("steps")
    if isinstance(steps, int):
        what += f", {steps:,} step{'s' if steps != 1 else ''}"
    return Entry(
        folder=folder.name or str(folder), what=what,
        policy=pk.run_label(summary, "policy"), baseline=pk.run_label(summary, "baseline"),
        time_s=pk.to_float(p.get("time_s")), baseline_time_s=pk.to_float(b.get("time_s")),
        speedup=pk.to_float(summary.get("speedup")),
        energy_j=_joules(p.get("energy_pj")), baseline_energy_j=_joules(b.get("energy_pj")),
        energy_ratio=pk.to_float(summary.get("energy_ratio")),
        accuracy=pk.to_float(p.get("accuracy")), accuracy_delta=pk.to_float(summary.get("accuracy_delta")),
    )


def _sweep_entries(folder: Path) -> list[Entry]:
    from accelsim.report.sweep_plots import point_label, read_results
    from accelsim.report.sweep_report import best_points

    axes, rows, failed = read_results(folder / "results.csv")
    name = folder.name or str(folder)
    if not rows:
        return [Entry(name, f"sweep: no successful point of {len(failed):,}", "", "", *([None] * 8))]
    if len(rows) <= MAX_SWEEP_ROWS:
        picked = [(r, "") for r in rows]
    else:
        tags: dict[int, list[str]] = {}
        by_index: dict[int, dict[str, Any]] = {}
        for c, r in best_points(rows):
            if c.column in ("speedup", "energy_ratio"):
                continue
            k = int(r["index"])
            tags.setdefault(k, []).append(f"best {c.name}")
            by_index[k] = r
        picked = [(by_index[k], ", ".join(t)) for k, t in tags.items()]
    out = []
    for row, tag in picked:
        what = f"point {row['index']} of {len(rows) + len(failed):,}: {point_label(row, axes)}" + (f" ({tag})" if tag else "")
        out.append(Entry(
            folder=name, what=what, policy=SWEEP_POLICY, baseline="16-bit baseline",
            time_s=pk.to_float(row.get("policy_time_s")), baseline_time_s=pk.to_float(row.get("baseline_time_s")),
            speedup=pk.to_float(row.get("speedup")),
            energy_j=_joules(row.get("policy_energy_pj")), baseline_energy_j=_joules(row.get("baseline_energy_pj")),
            energy_ratio=pk.to_float(row.get("energy_ratio")),
            accuracy=pk.to_float(row.get("policy_accuracy")), accuracy_delta=pk.to_float(row.get("accuracy_delta")),
        ))
    return out


def _columns(entries: Sequence[Entry]) -> list[int]:
    """Indices of the columns to show: accuracy only when some row has one."""
    trained = any(e.accuracy is not None or e.accuracy_delta is not None for e in entries)
    return [i for i, c in enumerate(COLUMNS) if trained or c not in ("accuracy", "accuracy delta")]


def compare_table(entries: Sequence[Entry]) -> "Table":
    """The comparison as a rich Table, one numbered row per entry (its folder, and the point of
    a sweep), the figures in columns that never wrap, and a caption that says what each number
    ran (workload or sweep point, both machines)."""
    from rich.table import Table

    trained = any(e.accuracy is not None or e.accuracy_delta is not None for e in entries)
    key = [f"{i}: {e.what}" + (f"; {e.policy} vs {e.baseline}" if e.policy != SWEEP_POLICY else "")
           for i, e in enumerate(entries, 1)]
    table = Table(title="comparison of whole runs (ratios: baseline / policy)", caption=_escape("\n".join(key)),
                  caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("folder", overflow="fold", ratio=1)
    for name in ("time", "speedup", "energy", "energy\nratio") + (("accuracy", "Δ acc.") if trained else ()):
        table.add_column(name, justify="right", no_wrap=True)
    for i, e in enumerate(entries, 1):
        c = e.cells()
        point = e.what.split(":", 1)[0].removeprefix("point ").split(" of ", 1)[0] if e.policy == SWEEP_POLICY else ""
        figures = [c[4], c[6], c[7], c[9]] + ([c[10], c[11]] if trained else [])
        table.add_row(str(i), _escape(e.folder + (f" #{point}" if point else "")), *figures)
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def compare_markdown(entries: Sequence[Entry]) -> str:
    """The comparison as a Markdown document with one table."""
    shown = _columns(entries)
    lines = [
        "# Comparison",
        "",
        "Time and energy of the whole run of each row; speedup and energy ratio are baseline / policy.",
        "",
        "| " + " | ".join(COLUMNS[i] for i in shown) + " |",
        "|" + "".join("---|" if i < 4 else "---:|" for i in shown),
    ]
    for e in entries:
        cells = e.cells()
        lines.append("| " + " | ".join(cells[i].replace("|", "\\|") for i in shown) + " |")
    return "\n".join(lines) + "\n"
