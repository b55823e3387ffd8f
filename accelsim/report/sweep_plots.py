"""Sweep plots, drawn from ``results.csv`` alone: heatmaps over the first two swept axes (the best
value over any further axes), line plots over one axis (both runs where both are measured, the
y axis from zero so a small change looks small), and the Pareto front of energy against time.

Levels (``--plots``): ``summary`` draws the speedup, the energy ratio, the energy-delay product
and the Pareto front; ``all`` adds time, energy, utilization and accuracy. Values are shown in
the SI prefix that fits them, so no axis or colour bar carries a ×10ⁿ offset.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim.errors import InputError
from accelsim.report import plotkit as pk

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Metric:
    """A column of results.csv (or derived from it) as a plot shows it."""

    column: str
    title: str
    unit: str  # SI unit after ``factor``; "%" and "x" are not prefixed
    factor: float  # results.csv value × factor = value in ``unit``
    better: str  # "low" or "high"
    level: str  # "summary" or "all"
    baseline: str | None = None  # the baseline's column, drawn beside the policy's on line plots

    def value(self, row: dict[str, Any]) -> float | None:
        return _scaled(row.get(self.column), self.factor)

    def baseline_value(self, row: dict[str, Any]) -> float | None:
        return _scaled(row.get(self.baseline), self.factor) if self.baseline else None


def _scaled(value: Any, factor: float) -> float | None:
    x = pk.to_float(value)
    return None if x is None else x * factor


METRICS = (
    Metric("speedup", "speedup (baseline time / policy time)", "x", 1.0, "high", "summary"),
    Metric("energy_ratio", "energy ratio (baseline energy / policy energy)", "x", 1.0, "high", "summary"),
    Metric("policy_edp", "energy × delay of the 4-bit policy", "J·s", 1e-12, "low", "summary", "baseline_edp"),
    Metric("policy_time_s", "time of the 4-bit policy", "s", 1.0, "low", "all", "baseline_time_s"),
    Metric("policy_energy_pj", "energy of the 4-bit policy", "J", 1e-12, "low", "all", "baseline_energy_pj"),
    Metric("policy_utilization", "array utilization of the 4-bit policy", "%", 100.0, "high", "all",
           "baseline_utilization"),
    Metric("policy_accuracy", "accuracy of the 4-bit policy", "%", 100.0, "high", "all", "baseline_accuracy"),
    Metric("accuracy_delta", "accuracy delta (policy − baseline), points", "pt", 100.0, "high", "all"),
)
#: Cells of a heatmap above which values are no longer written in the cells.
MAX_CELL_TEXT = 400
#: Cells of a heatmap up to which a ratio's cell also names the baseline array it was measured against.
MAX_BASELINE_CELLS = 144
#: Tick labels per heatmap or line-plot axis before only every k-th is written.
MAX_TICKS = 24
#: Pareto points labelled by number (the list beside the plot names their axes).
MAX_PARETO_LABELS = 12
PLOT_PATTERNS = ("heatmap_*.png", "line_*.png", "pareto.png", "recipes.png")
#: Axes that sweep the 4-bit recipe (a precision preset, or a mapping over one): ``recipes.png``.
RECIPE_AXES = ("precision", "workload.precision")


def read_results(path: Path) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Axes (the columns between ``index`` and ``policy_cycles``), the successful rows and the
    failed ones; each row gains ``policy_edp`` and ``baseline_edp`` (pJ·s)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            names = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError.single(str(path), "", f"not a readable CSV file: {exc}") from None
    missing = [c for c in ("index", "policy_cycles", "status") if c not in names]
    if missing:
        raise InputError.single(str(path), "", f"not a sweep's results.csv: no column {', '.join(missing)}")
    axes = names[1: names.index("policy_cycles")]
    for r in rows:
        for label in ("policy", "baseline"):
            r[f"{label}_edp"] = _edp(r, label)
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = [r for r in rows if r.get("status") != "ok"]
    return axes, ok, failed


def _edp(row: dict[str, Any], label: str) -> str:
    e, t = pk.to_float(row.get(f"{label}_energy_pj")), pk.to_float(row.get(f"{label}_time_s"))
    return "" if e is None or t is None else repr(e * t)


def _distinct(rows: list[dict[str, Any]], column: str) -> list[str]:
    return list(dict.fromkeys(str(r.get(column) or "") for r in rows if r.get(column) not in (None, "")))


def _area_range(rows: list[dict[str, Any]], column: str) -> str:
    areas = [a for a in (pk.to_float(r.get(column)) for r in rows) if a is not None]
    if not areas:
        return ""
    lo, hi = min(areas), max(areas)
    return f"{lo:.3g} mm²" if f"{lo:.3g}" == f"{hi:.3g}" else f"{lo:.3g}–{hi:.3g} mm²"


def _shape_range(rows: list[dict[str, Any]], column: str) -> str:
    shapes = _distinct(rows, column)

    def pes(shape: str) -> int:
        r, _, c = shape.partition("x")
        return int(r) * int(c) if r.isdigit() and c.isdigit() else 0

    shapes.sort(key=pes)
    return shapes[0] if len(shapes) == 1 else f"{shapes[0]} to {shapes[-1]}" if shapes else ""


def baseline_varies(rows: list[dict[str, Any]]) -> bool:
    """Whether a point's baseline array differs from its 4-bit machine's somewhere while not being
    one shape for all points: then each point's baseline shape is worth showing beside its value."""
    pairs = [(r.get("policy_array"), r.get("baseline_array")) for r in rows if r.get("baseline_array")]
    if not pairs:
        return False
    return any(p != b for p, b in pairs) and len({b for _, b in pairs}) > 1


def baseline_description(rows: list[dict[str, Any]]) -> str:
    """What every point was compared with, from results.csv: the baseline machine, its array
    (the point's own, one for all, or resized per point for an iso baseline) and its area."""
    names = _distinct(rows, "baseline_hardware")
    if not names:
        return ""
    who = f"baseline {', '.join(names)}"
    shapes = _shape_range(rows, "baseline_array")
    area = _area_range(rows, "baseline_area_mm2")
    iso = _distinct(rows, "iso")
    if iso:
        what = {"area": "area", "power": "average power"}.get(iso[0], iso[0])
        return f"{who} resized to the 4-bit machine's {what} at each point (iso {iso[0]}: {shapes}, {area})"
    if all(r.get("baseline_array") == r.get("policy_array") for r in rows):
        return f"{who} with the 4-bit machine's array at every point ({area})"
    if len(_distinct(rows, "baseline_array")) == 1:
        return f"{who} ({shapes}, {area}) at every point"
    return f"{who}: arrays {shapes}, {area}"


def sweep_name(sweep_dir: Path) -> str:
    """The sweep's name, from its folder (``reports/sweep-NAME`` by default)."""
    name = sweep_dir.resolve().name
    staged = re.fullmatch(r"\.(.+)\.tmp-.+-\d+-[0-9a-f]+", name)  # drawn in its staging folder
    if staged:
        name = staged[1]
    return name.removeprefix("sweep-") or name


def measured(rows: list[dict[str, Any]], metric: Metric) -> bool:
    return any(metric.value(r) is not None for r in rows)


def plot_names(axes: list[str], rows: list[dict[str, Any]], level: str = "all") -> list[str]:
    """The plot files the rows support at ``level``, in report order."""
    if pk.check_level(level) == "none" or not rows or not axes:
        return []
    kind = "heatmap" if len(axes) >= 2 else "line"
    names = [f"{kind}_{m.column}.png" for m in METRICS if (level == "all" or m.level == "summary") and measured(rows, m)]
    if recipe_axis(axes) is not None and measured(rows, METRICS[3]):
        names.insert(0, "recipes.png")
    if measured(rows, METRICS[2]):
        names.insert(0, "pareto.png")
    return names


def recipe_axis(axes: list[str]) -> str | None:
    """The axis that sweeps the 4-bit recipe, if any (:data:`RECIPE_AXES`)."""
    return next((a for a in axes if a in RECIPE_AXES), None)


def plot_sweep(sweep_dir: Path, level: str = "all") -> list[str]:
    """Draw the sweep's plots of ``level`` into ``sweep_dir/plots``; return their file names.

    Plots the current results do not support (another axis count, a metric not measured) and
    plots older than ``results.csv`` are removed, so the folder never shows stale pictures."""
    results = sweep_dir / "results.csv"
    axes, rows, _ = read_results(results)
    out = sweep_dir / "plots"
    supported = set(plot_names(axes, rows, "all"))
    if out.is_dir():
        fresh = results.stat().st_mtime
        for pattern in PLOT_PATTERNS:
            for old in out.glob(pattern):
                if old.name not in supported or old.stat().st_mtime < fresh:
                    old.unlink(missing_ok=True)
    names = plot_names(axes, rows, level)
    if not names:
        return []
    out.mkdir(parents=True, exist_ok=True)
    context = f"sweep {sweep_name(sweep_dir)}, {len(rows):,} points"
    against = baseline_description(rows)
    if against:
        context += f"; {against}"
    by_column = {m.column: m for m in METRICS}
    for name in names:
        if name == "pareto.png":
            pk.save(pareto_figure(rows, axes, context), out / name)
            continue
        if name == "recipes.png":
            pk.save(recipes_figure(rows, axes, context), out / name)
            continue
        kind, column = name.removesuffix(".png").split("_", 1)
        metric = by_column[column]
        if kind == "heatmap":
            pk.save(heatmap_figure(rows, axes, metric, context), out / name)
        else:
            pk.save(line_figure(rows, axes[0], metric, context), out / name)
    return names


def existing_plots(sweep_dir: Path) -> list[str]:
    """The sweep plots present in ``sweep_dir/plots`` that the results support, in report order."""
    axes, rows, _ = read_results(sweep_dir / "results.csv")
    return [n for n in plot_names(axes, rows, "all") if (sweep_dir / "plots" / n).is_file()]


def plot_title(name: str) -> str:
    """What a plot file shows, for report.md: ``heatmap_speedup.png`` -> ``speedup (baseline
    time / policy time), heatmap``."""
    if name == "pareto.png":
        return "Pareto front: energy against time"
    if name == "recipes.png":
        return "recipes: accuracy against time and energy (or time and energy per recipe)"
    kind, _, column = name.removesuffix(".png").partition("_")
    metric = next((m for m in METRICS if m.column == column), None)
    return f"{metric.title if metric else column}, {'heatmap' if kind == 'heatmap' else 'over the axis'}"


def axis_values(rows: list[dict[str, Any]], axis: str) -> list[str]:
    """The distinct values of ``axis`` in the rows, numerically sorted when all are numbers."""
    values = list(dict.fromkeys(r[axis] for r in rows))
    numeric = [pk.to_float(v) for v in values]
    if all(n is not None for n in numeric):
        values = [v for _, v in sorted(zip(numeric, values))]
    return values


def _unit_scale(values: list[float], unit: str) -> tuple[float, str]:
    return (1.0, unit) if unit in ("%", "x", "pt") else pk.si_scale(values, unit)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _tick_positions(n: int) -> list[int]:
    step = max(1, math.ceil(n / MAX_TICKS))
    return list(range(0, n, step))


def heatmap_figure(rows: list[dict[str, Any]], axes: list[str], metric: Metric, context: str) -> "Figure":
    import numpy as np

    x_axis, y_axis = axes[0], axes[1]
    xs, ys = axis_values(rows, x_axis), axis_values(rows, y_axis)
    xi, yi = {v: j for j, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    grid = np.full((len(ys), len(xs)), np.nan)
    chosen: dict[tuple[int, int], dict[str, Any]] = {}
    for r in rows:  # with more than two axes, each cell keeps the best value over the others
        v = metric.value(r)
        if v is None:
            continue
        i, j = yi[r[y_axis]], xi[r[x_axis]]
        cur = grid[i, j]
        if math.isnan(cur) or (v > cur if metric.better == "high" else v < cur):
            grid[i, j] = v
            chosen[(i, j)] = r
    against = metric.unit == "x" and baseline_varies(rows) and grid.size <= MAX_BASELINE_CELLS
    finite = grid[np.isfinite(grid)]
    scale, unit = _unit_scale([float(np.max(np.abs(finite)))] if finite.size else [], metric.unit)
    shown = grid / scale
    width = min(max(6.4, 2.3 + 0.72 * len(xs)), 12.0)
    height = min(max(3.6, 2.1 + 0.42 * len(ys)), 10.0)
    left = pk.label_margin_in([pk.shorten(str(v), 12) for v in ys], 8) + 0.35
    fig = pk.figure(width, height, left=left, right=1.45, bottom=0.65, top=0.95)
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["viridis" if metric.better == "high" else "viridis_r"].with_extremes(bad="0.85")
    image = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xticks(_tick_positions(len(xs)), [pk.shorten(str(xs[j]), 12) for j in _tick_positions(len(xs))], fontsize=8)
    ax.set_yticks(_tick_positions(len(ys)), [pk.shorten(str(ys[i]), 12) for i in _tick_positions(len(ys))], fontsize=8)
    ax.set_xlabel(x_axis, fontsize=8.5)
    ax.set_ylabel(y_axis, fontsize=8.5)
    if shown.size <= MAX_CELL_TEXT and finite.size:
        lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
        middle = (lo + hi) / 2
        for i in range(len(ys)):
            for j in range(len(xs)):
                v = shown[i, j]
                if math.isnan(v):
                    ax.text(j, i, "–", ha="center", va="center", fontsize=7, color="0.3")
                    continue
                light = (v > middle) if metric.better == "high" else (v < middle)
                text = _fmt(v)
                if against and chosen.get((i, j), {}).get("baseline_array"):
                    text += f"\nvs {chosen[(i, j)]['baseline_array']}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if not against else 6.5,
                        color="black" if light else "white", linespacing=1.1)
    fig_w, fig_h = fig.get_figwidth(), fig.get_figheight()
    bar_ax = fig.add_axes((1 - 1.2 / fig_w, 0.65 / fig_h, 0.16 / fig_w, 1 - (0.65 + 0.95) / fig_h))
    bar = fig.colorbar(image, cax=bar_ax)
    bar.set_label(f"{unit}" if unit not in ("x", "pt") else ("ratio" if unit == "x" else "points"), fontsize=8)
    bar.ax.tick_params(labelsize=7.5)
    pk.plain_axis(bar.ax, "y")
    notes = ["higher is better" if metric.better == "high" else "lower is better"]
    if len(axes) > 2:
        notes.append(f"each cell the best over {', '.join(axes[2:])}")
    if np.isnan(grid).any():
        notes.append("grey: no result")
    if against:
        notes.append("under each value: the baseline's array")
    what = f"{metric.title}, {unit}" if unit not in ("x", "pt") else metric.title
    pk.suptitle(fig, f"{context}\n{what}\n({'; '.join(notes)})")
    return fig


def line_figure(rows: list[dict[str, Any]], axis: str, metric: Metric, context: str) -> "Figure":
    xs = axis_values(rows, axis)
    by_x = {r[axis]: r for r in rows}
    series = [("policy", [metric.value(by_x[x]) for x in xs])]
    if metric.baseline and any(metric.baseline_value(by_x[x]) is not None for x in xs):
        series.append(("baseline", [metric.baseline_value(by_x[x]) for x in xs]))
    values = [v for _, vs in series for v in vs if v is not None]
    scale, unit = _unit_scale(values, metric.unit)
    fig = pk.figure(7.0, 4.2, left=0.9, right=0.3, bottom=0.95, top=0.75)
    ax = fig.add_subplot()
    for label, vs in series:
        pts = [(i, v / scale) for i, v in enumerate(vs) if v is not None]
        ax.plot([i for i, _ in pts], [v for _, v in pts], marker="o", markersize=4, color=pk.RUN_COLORS[label],
                label="4-bit policy" if label == "policy" else "16-bit baseline")
    top = max([v / scale for v in values] + [0.0])
    bottom = min([v / scale for v in values] + [0.0])
    pad = (top - bottom) * 0.08 or 1.0
    ax.set_ylim(bottom - (pad if bottom < 0 else 0), top + pad)  # from zero: a 0.1 % change looks like one
    if metric.unit == "x":
        ax.axhline(1.0, color="black", linewidth=0.8)
        if baseline_varies(rows) and len(xs) <= MAX_TICKS:
            for i, x in enumerate(xs):
                v, shape = metric.value(by_x[x]), by_x[x].get("baseline_array")
                if v is not None and shape:
                    ax.annotate(f"vs {shape}", (i, v / scale), xytext=(0, 6), textcoords="offset points",
                                ha="center", fontsize=6.5, color="0.3")
    ax.set_xticks(_tick_positions(len(xs)), [pk.shorten(str(xs[i]), 12) for i in _tick_positions(len(xs))], fontsize=8)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(axis, fontsize=8.5)
    ax.set_ylabel(unit if unit not in ("x", "pt") else ("ratio" if unit == "x" else "points"), fontsize=8.5)
    ax.tick_params(axis="y", labelsize=8)
    pk.plain_axis(ax, "y")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="lower right")
    policy = [v for v in series[0][1] if v is not None]
    spread = ""
    if policy and min(policy) > 0:
        spread = f"; the policy's varies by {(max(policy) - min(policy)) / min(policy):.2%} over {axis}"
    pk.suptitle(fig, f"{context}\n{metric.title}{spread}")
    return fig


def pareto_front(points: list[tuple[float, float, int]]) -> list[int]:
    """Indices of points not dominated in (time, energy), both minimised, sorted by time."""
    front, best_energy = [], math.inf
    for t, e, i in sorted(points):
        if e < best_energy:
            front.append(i)
            best_energy = e
    return front


def point_label(row: dict[str, Any], axes: list[str]) -> str:
    """``rows=64, cols=32, ifmap_kib=256``: the axes' values, by the last part of their path
    when that part is unambiguous."""
    short = [a.rsplit(".", 1)[-1] for a in axes]
    names = short if len(set(short)) == len(short) else axes
    return ", ".join(f"{n}={row[a]}" for n, a in zip(names, axes))


def front_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pts = [(pk.to_float(r.get("policy_time_s")), pk.to_float(r.get("policy_energy_pj")), k) for k, r in enumerate(rows)]
    return [rows[k] for k in pareto_front([(t, e, k) for t, e, k in pts if t is not None and e is not None])]


def _label_front(ax, xs: list[float], ys: list[float]) -> None:
    """Number the front's points with labels in a column beside the front, each joined to its
    point by a thin line, pushed apart so that no two labels overlap however close the points."""
    if not xs:
        return
    ax.set_xlim(ax.get_xlim())  # freeze the limits: the transform below needs the final ones
    ax.set_ylim(ax.get_ylim())
    to_axes = ax.transData + ax.transAxes.inverted()
    pts = [tuple(to_axes.transform((x, y))) for x, y in zip(xs, ys)]
    right = max(px for px, _ in pts) + 0.1
    column_x, side = (right, "left") if right < 0.9 else (max(min(px for px, _ in pts) - 0.1, 0.05), "right")
    order = sorted(range(len(pts)), key=lambda i: pts[i][1])
    gap = 0.055
    placed: list[float] = []
    for i in order:
        y = max(pts[i][1], placed[-1] + gap) if placed else pts[i][1]
        placed.append(y)
    overflow = placed[-1] - 0.97
    if overflow > 0:
        placed = [max(y - overflow, 0.03 + k * gap) for k, y in enumerate(placed)]
    for i, y in zip(order, placed):
        ax.annotate(str(i + 1), (xs[i], ys[i]), xytext=(column_x, y), textcoords="axes fraction", fontsize=7,
                    color="tab:red", va="center", ha=side,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
                    arrowprops={"arrowstyle": "-", "color": "tab:red", "linewidth": 0.5, "alpha": 0.7, "shrinkB": 3})


def pareto_figure(rows: list[dict[str, Any]], axes: list[str], context: str) -> "Figure":
    pts = [(pk.to_float(r.get("policy_time_s")), pk.to_float(r.get("policy_energy_pj")), r) for r in rows]
    pts = [(t, e * 1e-12, r) for t, e, r in pts if t is not None and e is not None]
    front = front_rows(rows)
    t_scale, t_unit = pk.si_scale([t for t, _, _ in pts], "s")
    e_scale, e_unit = pk.si_scale([e for _, e, _ in pts], "J")
    labels = [f"{i + 1}: {pk.shorten(point_label(r, axes), 48)}" for i, r in enumerate(front[:MAX_PARETO_LABELS])]
    if len(front) > MAX_PARETO_LABELS:
        labels.append(f"(+{len(front) - MAX_PARETO_LABELS} more in report.md)")
    side = max(2.0, 0.3 + max(len(s) for s in labels) * 6.5 * 0.6 / 72) if labels else 0.3
    fig = pk.figure(6.5 + side, 5.0, left=0.85, right=side, bottom=0.95, top=0.75)
    ax = fig.add_subplot()
    ax.scatter([t / t_scale for t, _, _ in pts], [e / e_scale for _, e, _ in pts], s=14, color="0.6", linewidths=0,
               label=f"all {len(pts):,} points")
    fx = [pk.to_float(r["policy_time_s"]) / t_scale for r in front]  # type: ignore[operator]
    fy = [pk.to_float(r["policy_energy_pj"]) * 1e-12 / e_scale for r in front]  # type: ignore[operator]
    ax.plot(fx, fy, marker="o", markersize=5, color="tab:red", label=f"Pareto front ({len(front)} points)")
    spread_t = max(t for t, _, _ in pts) / max(min(t for t, _, _ in pts), 1e-300)
    spread_e = max(e for _, e, _ in pts) / max(min(e for _, e, _ in pts), 1e-300)
    # a log axis for a wide spread; else from zero, so that a 0.1 % difference looks like one
    if spread_t > 30:
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, max(fx + [t / t_scale for t, _, _ in pts]) * 1.06)
    if spread_e > 30:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(fy + [e / e_scale for _, e, _ in pts]) * 1.08)
    _label_front(ax, fx[:MAX_PARETO_LABELS], fy[:MAX_PARETO_LABELS])
    ax.text(1.02, 1.0, "Pareto front, fastest first\n" + "\n".join(labels), transform=ax.transAxes, fontsize=6.5,
            va="top", ha="left", family="monospace", linespacing=1.35)
    ax.set_xlabel(f"time of the 4-bit policy, {t_unit}", fontsize=8.5)
    ax.set_ylabel(f"energy of the 4-bit policy, {e_unit}", fontsize=8.5)
    ax.tick_params(labelsize=8)
    pk.plain_axis(ax)
    pk.plain_log_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)
    pk.suptitle(fig, f"{context}\nenergy against time of the 4-bit policy; the front: no other point is both faster and cheaper")
    return fig


# ------------------------------------------------------------------------------------------------
# recipes


def recipe_label(value: str) -> str:
    """A recipe axis value as a label: the preset name, or ``PRESET + overrides`` for a mapping."""
    import json

    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return value
    if isinstance(data, dict) and isinstance(data.get("preset"), str):
        extra = [f"{k}={v}" for k, v in data.items() if k != "preset"]
        return data["preset"] + (f" ({', '.join(extra)})" if extra else "")
    return value


def recipes_figure(rows: list[dict[str, Any]], axes: list[str], context: str) -> "Figure":
    """The recipes of a sweep over ``precision``: with accuracy, accuracy against time and against
    energy of the 4-bit run, each point labelled by its recipe (mean ± std over seeds, the 16-bit
    baseline marked); without, time and energy per recipe as bars (the best over any other axes),
    the baseline as a dashed line where all points share it."""
    axis = recipe_axis(axes)
    assert axis is not None
    recipes = list(dict.fromkeys(r[axis] for r in rows))
    others = [a for a in axes if a != axis]
    colors = {rec: f"C{i % 10}" for i, rec in enumerate(recipes)}
    accuracy = any(pk.to_float(r.get("policy_accuracy")) is not None for r in rows)
    t_scale, t_unit = pk.si_scale([pk.to_float(r.get("policy_time_s")) or 0 for r in rows]
                                  + [pk.to_float(r.get("baseline_time_s")) or 0 for r in rows], "s")
    e_scale, e_unit = pk.si_scale([(pk.to_float(r.get("policy_energy_pj")) or 0) * 1e-12 for r in rows]
                                  + [(pk.to_float(r.get("baseline_energy_pj")) or 0) * 1e-12 for r in rows], "J")
    base_names = _distinct(rows, "baseline_precision")
    base_hw = _distinct(rows, "baseline_hardware")
    base_name = "baseline" + (f" {base_names[0]}" if len(base_names) == 1 else "") + (
        f" on {base_hw[0]}" if len(base_hw) == 1 else "")
    if accuracy:
        fig = pk.figure(11.0, 4.8, left=0.8, right=0.3, bottom=0.95, top=0.75, wspace=0.2)
        panels = fig.subplots(1, 2, sharey=True)
        for ax, column, scale, unit, what in (
            (panels[0], "time_s", t_scale, t_unit, "time"), (panels[1], "energy_pj", e_scale * 1e12, e_unit, "energy"),
        ):
            base_pts = set()
            xs_all = []
            for r in rows:
                x, y = pk.to_float(r.get(f"policy_{column}")), pk.to_float(r.get("policy_accuracy"))
                if x is None or y is None:
                    continue
                err = pk.to_float(r.get("policy_accuracy_std"))
                ax.errorbar(x / scale, y * 100, yerr=None if err is None else err * 100, fmt="o", markersize=6,
                            color=colors[r[axis]], capsize=3, linewidth=1, alpha=0.9)
                label = recipe_label(r[axis]) if not others else pk.shorten(
                    f"{recipe_label(r[axis])}: {point_label(r, others)}", 40)
                ax.annotate(label, (x / scale, y * 100), xytext=(7, 0), textcoords="offset points",
                            fontsize=7.5, color=colors[r[axis]], va="center")
                xs_all.append(x / scale)
                bx, by = pk.to_float(r.get(f"baseline_{column}")), pk.to_float(r.get("baseline_accuracy"))
                if bx is not None and by is not None:
                    base_pts.add((bx / scale, by * 100))
                    xs_all.append(bx / scale)
            for k, (bx, by) in enumerate(sorted(base_pts)):
                ax.plot(bx, by, marker="*", markersize=12, color="black", linestyle="none", zorder=3,
                        label=base_name if k == 0 else None)
            if xs_all:  # the recipes' spread, with room for the labels on the right
                lo, hi = min(xs_all), max(xs_all)
                pad = (hi - lo) or hi * 0.1 or 1.0
                ax.set_xlim(lo - pad * 0.15, hi + pad * 0.45)
            ax.set_xlabel(f"{what} of the run in each recipe, {unit}", fontsize=8.5)
            ax.tick_params(labelsize=8)
            pk.plain_axis(ax)
            ax.grid(alpha=0.3)
            if base_pts:
                ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        panels[0].set_ylabel("test accuracy, % (mean ± std over seeds)", fontsize=8.5)
        what = "accuracy against time and against energy, per recipe (higher and further left is better)"
    else:
        rotate = len(recipes) > 5
        fig = pk.figure(max(8.0, 2.2 + 0.9 * len(recipes) * 2), 4.6, left=0.85, right=0.3,
                        bottom=1.25 if rotate else 0.95, top=0.75, wspace=0.3)
        panels = fig.subplots(1, 2)
        for ax, column, scale, unit, what in (
            (panels[0], "time_s", t_scale, t_unit, "time"), (panels[1], "energy_pj", e_scale * 1e12, e_unit, "energy"),
        ):
            best = {}
            for r in rows:
                v = pk.to_float(r.get(f"policy_{column}"))
                if v is not None and (r[axis] not in best or v < best[r[axis]]):
                    best[r[axis]] = v
            xs = [i for i, rec in enumerate(recipes) if rec in best]
            vals = [best[recipes[i]] / scale for i in xs]
            ax.bar(xs, vals, width=0.6, color=[colors[recipes[i]] for i in xs])
            for i, v in zip(xs, vals):
                ax.text(i, v, f"{v:.3g}", ha="center", va="bottom", fontsize=7.5)
            base = {pk.to_float(r.get(f"baseline_{column}")) for r in rows} - {None}
            if len(base) == 1:
                b = base.pop() / scale
                ax.axhline(b, color="black", linewidth=0.9, linestyle="--", label=f"{base_name}: {b:.3g} {unit}")
                ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.1 if not rotate else -0.22),
                          frameon=False)
            ax.set_xticks(range(len(recipes)), [pk.shorten(recipe_label(r), 18) for r in recipes], fontsize=8,
                          rotation=30 if rotate else 0, ha="right" if rotate else "center")
            ax.set_ylabel(f"{what} of the run in each recipe, {unit}", fontsize=8.5)
            top = max(vals + [0.0] + [ln.get_ydata()[0] for ln in ax.get_lines()])
            ax.set_ylim(0, top * 1.18 or 1.0)
            ax.tick_params(axis="y", labelsize=8)
            pk.plain_axis(ax, "y")
            ax.grid(axis="y", alpha=0.3)
        what = "time and energy per recipe (not trained: no accuracy)" + (
            f"; each bar the best over {', '.join(others)}" if others else "")
    pk.suptitle(fig, f"{context}\n{what}")
    return fig
