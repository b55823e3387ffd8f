"""A sweep folder's ``report.md`` and its best points, from ``results.csv`` alone, so that
``accelsim plot SWEEP_DIR`` can redo both at any time.

``report.md`` says what was swept (axes and values, points run and failed), the best points by
time, energy, energy-delay product and accuracy (and by the two ratios against the baseline), the
Pareto front of energy against time, the failed points, and every plot in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim.atomic import atomic_write_text
from accelsim.report import plotkit as pk
from accelsim.report.sweep_plots import (
    axis_values, baseline_description, existing_plots, front_rows, plot_sweep, plot_title, point_label, read_results,
    sweep_name,
)

if TYPE_CHECKING:
    from rich.table import Table

#: Failed points listed in report.md (all of them are in results.csv).
MAX_FAILED_ROWS = 20
#: Pareto-front rows in report.md.
MAX_FRONT_ROWS = 50


@dataclass(frozen=True)
class Criterion:
    """A way to pick the best point: a column, which way is better, and its name."""

    name: str
    column: str
    better: str  # "low" or "high"


CRITERIA = (
    Criterion("time", "policy_time_s", "low"),
    Criterion("energy", "policy_energy_pj", "low"),
    Criterion("energy × delay", "policy_edp", "low"),
    Criterion("accuracy", "policy_accuracy", "high"),
    Criterion("speedup vs baseline", "speedup", "high"),
    Criterion("energy ratio vs baseline", "energy_ratio", "high"),
)


def best_points(rows: list[dict[str, Any]]) -> list[tuple[Criterion, dict[str, Any]]]:
    """The best row by each criterion the rows measure (the first in results.csv on a tie)."""
    out = []
    for c in CRITERIA:
        scored = [(pk.to_float(r.get(c.column)), k, r) for k, r in enumerate(rows)]
        scored = [(v, k, r) for v, k, r in scored if v is not None]
        if not scored:
            continue
        sign = 1.0 if c.better == "low" else -1.0
        _, _, row = min(scored, key=lambda s: (sign * s[0], s[1]))
        out.append((c, row))
    return out


def grouped_best(rows: list[dict[str, Any]]) -> list[tuple[list[str], dict[str, Any]]]:
    """:func:`best_points` with the criteria that pick the same point on one line."""
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for c, row in best_points(rows):
        groups.setdefault(str(row["index"]), ([], row))[0].append(c.name)
    return list(groups.values())


def _time(row: dict[str, Any], label: str = "policy") -> str:
    return pk.si(pk.to_float(row.get(f"{label}_time_s")), "s")


def _energy(row: dict[str, Any], label: str = "policy") -> str:
    e = pk.to_float(row.get(f"{label}_energy_pj"))
    return pk.si(None if e is None else e * 1e-12, "J")


def _edp(row: dict[str, Any]) -> str:
    v = pk.to_float(row.get("policy_edp"))
    return pk.si(None if v is None else v * 1e-12, "J·s")


def _ratio(row: dict[str, Any], column: str) -> str:
    v = pk.to_float(row.get(column))
    return "n/a" if v is None else f"{v:.3g}x"


def _pct(row: dict[str, Any], column: str) -> str:
    v = pk.to_float(row.get(column))
    return "n/a" if v is None else f"{v:.2%}"


def baseline_text(row: dict[str, Any]) -> str:
    """``fp16-32x32 38x37, 7.72 mm²``: the baseline machine a point was compared with (empty in
    a results.csv without those columns)."""
    name, shape = row.get("baseline_hardware") or "", row.get("baseline_array") or ""
    area = pk.to_float(row.get("baseline_area_mm2"))
    if not name:
        return ""
    return f"{name} {shape}".strip() + (f", {area:.3g} mm²" if area is not None else "")


def _has_baseline(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("baseline_hardware") for r in rows)


def _cells(row: dict[str, Any], axes: list[str], accuracy: bool, baseline: bool = False) -> list[str]:
    cells = [f"{row['index']}", *[str(row[a]) for a in axes], _time(row), _energy(row), _edp(row),
             _ratio(row, "speedup"), _ratio(row, "energy_ratio")]
    if accuracy:
        cells.append(_pct(row, "policy_accuracy"))
    if baseline:
        cells.append(baseline_text(row))
    return cells


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_sweep_report(sweep_dir: Path, plots: list[str]) -> str:
    """The Markdown text of a sweep folder's ``report.md``."""
    axes, rows, failed = read_results(sweep_dir / "results.csv")
    name = sweep_name(sweep_dir)
    total = len(rows) + len(failed)
    accuracy = any(pk.to_float(r.get("policy_accuracy")) is not None for r in rows)
    head = ["point", *[f"`{a}`" for a in axes], "time", "energy", "energy × delay", "speedup", "energy ratio"]
    if accuracy:
        head.append("accuracy")
    baseline = _has_baseline(rows)
    if baseline:
        head.append("baseline machine")
    against = baseline_description(rows)
    lines = [
        f"# Sweep `{name}`",
        "",
        f"{total:,} point{'s' if total != 1 else ''} over {len(axes)} ax{'es' if len(axes) != 1 else 'is'}: "
        f"{len(rows):,} ran, {len(failed):,} failed. Time, energy and accuracy are the 4-bit policy's for "
        "the whole run of each point; speedup and energy ratio compare it with its 16-bit baseline "
        "(baseline / policy)" + (f": {against}" if against else "") + ". Every figure is in `results.csv`.",
        "",
        "## Axes",
        "",
        "| axis | values |",
        "|---|---|",
    ]
    everything = rows + failed
    for a in axes:
        lines.append(_md_row([f"`{a}`", ", ".join(axis_values(everything, a))]))
    lines.append("")
    if rows:
        lines += ["## Best points", "", _md_row(["best by", *head]), "|---|" + "---:|" * len(head)]
        for names, row in grouped_best(rows):
            lines.append(_md_row([", ".join(names), *_cells(row, axes, accuracy, baseline)]))
        front = front_rows(rows)
        lines += [
            "",
            "## Pareto front",
            "",
            f"{len(front)} point{'s' if len(front) != 1 else ''} where no other point is both faster and "
            "uses less energy (4-bit policy), fastest first"
            + (f"; the first {MAX_FRONT_ROWS} here" if len(front) > MAX_FRONT_ROWS else "") + ":",
            "",
            _md_row(head),
            "|" + "---:|" * len(head),
        ]
        lines += [_md_row(_cells(r, axes, accuracy, baseline)) for r in front[:MAX_FRONT_ROWS]]
        lines.append("")
    if failed:
        lines += [
            "## Failed points",
            "",
            f"{len(failed):,} point{'s' if len(failed) != 1 else ''}"
            + (f"; the first {MAX_FAILED_ROWS} here" if len(failed) > MAX_FAILED_ROWS else "") + ":",
            "",
            _md_row(["point", *[f"`{a}`" for a in axes], "error"]),
            "|---:|" + "---|" * len(axes) + "---|",
        ]
        for r in failed[:MAX_FAILED_ROWS]:
            lines.append(_md_row([str(r["index"]), *[str(r[a]) for a in axes], (r.get("error") or "").strip()]))
        lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            lines += [f"### {plot_title(p)}", "", f"![{p}](plots/{p})", ""]
    return "\n".join(lines)


def write_sweep_report(sweep_dir: Path, plots: str = "summary") -> list[str]:
    """Draw the sweep's plots of level ``plots`` and write ``report.md``, from ``results.csv``
    alone; return the plots drawn. ``report.md`` shows every plot in the folder."""
    drawn = plot_sweep(sweep_dir, plots)
    atomic_write_text(sweep_dir / "report.md", render_sweep_report(sweep_dir, existing_plots(sweep_dir)))
    return drawn


def best_points_table(sweep_dir: Path) -> "Table":
    """The best points by time, energy, energy × delay and accuracy as a rich Table, for the
    console (printed by the CLI only); report.md has the full table."""
    from rich.markup import escape
    from rich.table import Table

    axes, rows, _ = read_results(sweep_dir / "results.csv")
    accuracy = any(pk.to_float(r.get("policy_accuracy")) is not None for r in rows)
    against = baseline_description(rows)
    table = Table(
        title=f"{escape(sweep_name(sweep_dir))}: best points of the 4-bit policy (ratios: baseline / policy)",
        caption=escape(against) if against else None,
    )
    table.add_column("best by", no_wrap=True)
    table.add_column("point", overflow="fold", ratio=1)
    for col in ("time", "energy", "speedup", "energy\nratio") + (("accuracy",) if accuracy else ()):
        table.add_column(col, justify="right", no_wrap=True)
    # a column of its own only where the baseline differs from point to point (the caption names it)
    baseline = _has_baseline(rows) and len({baseline_text(r) for r in rows}) > 1
    if baseline:
        table.add_column("vs baseline", overflow="fold")
    vs_baseline = {"speedup vs baseline", "energy ratio vs baseline"}
    for names, row in grouped_best(rows):
        names = [n for n in names if n not in vs_baseline]
        if names:
            cells = [_time(row), _energy(row), _ratio(row, "speedup"), _ratio(row, "energy_ratio")]
            cells += [_pct(row, "policy_accuracy")] if accuracy else []
            cells += [escape(baseline_text(row))] if baseline else []
            table.add_row("\n".join(names), escape(f"#{row['index']}: {point_label(row, axes)}"), *cells)
    return table
