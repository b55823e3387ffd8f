"""Sweep plots, drawn from ``results.csv`` alone: heatmaps over two swept axes, line plots over one,
and the Pareto front of energy against time."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

#: (column, title, better) — ``better`` says which way is good, for labelling.
METRICS = (
    ("policy_cycles", "cycles (4-bit policy)", "low"),
    ("policy_energy_pj", "energy, pJ (4-bit policy)", "low"),
    ("policy_edp", "energy × delay, pJ·s (4-bit policy)", "low"),
    ("speedup", "speedup vs 16-bit baseline", "high"),
    ("energy_ratio", "energy ratio vs 16-bit baseline", "high"),
    ("policy_utilization", "array utilization (4-bit policy)", "high"),
)


def read_results(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Axes (the columns between ``index`` and ``policy_cycles``) and the successful rows."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        rows = [r for r in reader if r.get("status") == "ok"]
    axes = names[1: names.index("policy_cycles")] if "policy_cycles" in names else []
    for r in rows:
        r["policy_edp"] = _edp(r)
    return axes, rows


def _edp(row: dict[str, Any]) -> str:
    e, t = _num(row.get("policy_energy_pj")), _num(row.get("policy_time_s"))
    return "" if e is None or t is None else repr(e * t)


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def plot_sweep(sweep_dir: Path) -> list[str]:
    """Write the sweep's plots into ``sweep_dir/plots``; return their file names."""
    axes, rows = read_results(sweep_dir / "results.csv")
    out = sweep_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    if not rows or not axes:
        return written
    for column, title, _ in METRICS:
        if not any(_num(r.get(column)) is not None for r in rows):
            continue  # not computed in this sweep (e.g. energy before the energy model)
        if len(axes) >= 2:
            name = f"heatmap_{column}.png"
            if len(axes) > 2:
                title = f"{title}, best over {', '.join(axes[2:])}"
            _heatmap(rows, axes[0], axes[1], column, title, out / name)
        else:
            name = f"line_{column}.png"
            _line(rows, axes[0], column, title, out / name)
        written.append(name)
    if any(_num(r.get("policy_energy_pj")) is not None for r in rows):
        _pareto(rows, axes, out / "pareto.png")
        written.append("pareto.png")
    return written


def _axis_values(rows: list[dict[str, Any]], axis: str) -> list[str]:
    values = list(dict.fromkeys(r[axis] for r in rows))
    numeric = [_num(v) for v in values]
    if all(n is not None for n in numeric):
        values = [v for _, v in sorted(zip(numeric, values))]
    return values


def _heatmap(rows, x_axis: str, y_axis: str, column: str, title: str, path: Path) -> None:
    xs, ys = _axis_values(rows, x_axis), _axis_values(rows, y_axis)
    grid = [[math.nan] * len(xs) for _ in ys]
    for r in rows:  # with more than two axes, each cell keeps the best value over the others
        v = _num(r.get(column))
        if v is None:
            continue
        i, j = ys.index(r[y_axis]), xs.index(r[x_axis])
        better_high = dict((m, b) for m, _, b in METRICS)[column] == "high"
        cur = grid[i][j]
        if math.isnan(cur) or (v > cur if better_high else v < cur):
            grid[i][j] = v
    fig = Figure(figsize=(1.2 + 0.9 * len(xs), 1.0 + 0.6 * len(ys)), constrained_layout=True)
    ax = fig.subplots()
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(x_axis)
    ax.set_ylabel(y_axis)
    ax.set_title(title, fontsize=10)
    finite = [v for row in grid for v in row if not math.isnan(v)]
    middle = (min(finite) + max(finite)) / 2 if finite else 0.0
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                        color="black" if v > middle else "white")
    fig.colorbar(image, ax=ax)
    fig.savefig(path, dpi=110)


def _line(rows, axis: str, column: str, title: str, path: Path) -> None:
    xs = _axis_values(rows, axis)
    by_x = {r[axis]: _num(r.get(column)) for r in rows}
    fig = Figure(figsize=(6, 3.6), constrained_layout=True)
    ax = fig.subplots()
    ax.plot(range(len(xs)), [by_x[x] for x in xs], marker="o")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_xlabel(axis)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def pareto_front(points: list[tuple[float, float, int]]) -> list[int]:
    """Indices of points not dominated in (time, energy), both minimised, sorted by time."""
    front, best_energy = [], math.inf
    for t, e, i in sorted(points):
        if e < best_energy:
            front.append(i)
            best_energy = e
    return front


def _pareto(rows, axes: list[str], path: Path) -> None:
    pts = [
        (_num(r.get("policy_time_s")), _num(r.get("policy_energy_pj")), k)
        for k, r in enumerate(rows)
    ]
    pts = [(t, e, k) for t, e, k in pts if t is not None and e is not None]
    front = pareto_front(pts)
    fig = Figure(figsize=(7, 4.5), constrained_layout=True)
    ax = fig.subplots()
    ax.scatter([t for t, _, _ in pts], [e for _, e, _ in pts], s=12, color="0.6", label="points")
    fx = [rows[k] for k in front]
    ax.plot([_num(r["policy_time_s"]) for r in fx], [_num(r["policy_energy_pj"]) for r in fx],
            marker="o", color="tab:red", label="Pareto front")
    for r in fx[:8]:
        label = ", ".join(f"{a}={r[a]}" for a in axes)
        ax.annotate(label, (_num(r["policy_time_s"]), _num(r["policy_energy_pj"])), fontsize=6,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("time per run, s (4-bit policy)")
    ax.set_ylabel("energy, pJ (4-bit policy)")
    ax.set_title("energy vs time")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
