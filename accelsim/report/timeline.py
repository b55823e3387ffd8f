"""Plots of the event model's timing, drawn from a run folder's ``ops.csv`` rows alone.

* ``timeline.png``: a Gantt chart of one training step, policy run above and baseline below, one
  lane per unit (array, DMA, rescale, vector). An op's bar spans its ``start_cycle`` to
  ``start_cycle + total_cycles``, coloured by phase: solid for its compute cycles, pale for its
  memory stalls. The DMA lane shows how busy DRAM is: the sum over running ops of their average
  bus share (DRAM bits / bandwidth / ``total_cycles``; bits per cycle, scaled to the lane, when
  the run in ``summary.json`` has no ``dram_bits_per_cycle``).
* ``utilization.png``: array utilization (MACs over peak MACs during the op) per layer and phase,
  both runs side by side.

:func:`plots_from_ops` returns ``(file name, draw)`` pairs; ``draw(path)`` writes the PNG and
returns True, or False when the rows hold nothing to draw. Matplotlib's object API only (no
pyplot state), so plots can be drawn from several threads or processes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure
from matplotlib.patches import Patch

LANES = ("array", "dma", "rescale", "vector")
PHASE_COLORS = {"fwd": "tab:blue", "bwd_data": "tab:orange", "bwd_weight": "tab:green", "update": "tab:purple"}
RUN_COLORS = {"policy": "tab:blue", "baseline": "tab:orange"}
RUNS = ("policy", "baseline")


def plots_from_ops(ops_rows: list[dict], summary: dict) -> list[tuple[str, Callable[[Path], bool]]]:
    """The timeline and utilization plots of a run folder (see the module docstring)."""
    return [
        ("timeline.png", lambda path: draw_timeline(ops_rows, summary, path)),
        ("utilization.png", lambda path: draw_utilization(ops_rows, summary, path)),
    ]


def _int(row: dict, key: str) -> int:
    value = row.get(key, "")
    return int(float(value)) if value not in ("", None) else 0


def _float(row: dict, key: str) -> float:
    value = row.get(key, "")
    return float(value) if value not in ("", None) else 0.0


def _run_label(summary: dict, run: str) -> str:
    info = summary.get("runs", {}).get(run, {})
    return f"{run}: {info.get('precision', '?')} on {info.get('hardware', '?')}"


def _dram_profile(rows: list[dict], bits_per_cycle: float | None) -> tuple[list[float], list[float], str]:
    """Step function (times, values) of DRAM activity summed over running ops: each op's bus
    share ``bits / bandwidth / total_cycles`` when the bandwidth is known, else its bits per cycle."""
    deltas: dict[float, float] = defaultdict(float)
    for row in rows:
        start, total = _int(row, "start_cycle"), _int(row, "total_cycles")
        if total <= 0:
            continue
        rate = (_float(row, "dram_read_bits") + _float(row, "dram_write_bits")) / total
        if bits_per_cycle:
            rate /= bits_per_cycle
        if rate > 0:
            deltas[start] += rate
            deltas[start + total] -= rate
    times, values, level = [], [], 0.0
    for t in sorted(deltas):
        level += deltas[t]
        times.append(t)
        values.append(max(level, 0.0))
    what = "DRAM bus share" if bits_per_cycle else "DRAM demand, bits/cycle"
    return times, values, f"{what} (sum of running ops' averages)"


def draw_timeline(ops_rows: list[dict], summary: dict, path: Path) -> bool:
    runs = [(run, [r for r in ops_rows if r.get("run") == run]) for run in RUNS]
    runs = [(run, rows) for run, rows in runs if rows]
    if not runs or not any(_int(r, "total_cycles") for _, rows in runs for r in rows):
        return False
    fig = Figure(figsize=(11, 2.6 * len(runs) + 0.8), constrained_layout=True)
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, (run, rows) in zip(axes, runs):
        _gantt(ax, run, rows, summary)
    handles = [Patch(color=c, label=p) for p, c in PHASE_COLORS.items()]
    handles.append(Patch(color="0.6", alpha=0.35, label="memory stall (pale)"))
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=len(handles))
    axes[-1].set_xlabel("cycle")
    fig.suptitle(f"{summary.get('workload', '')}: one training step, event timeline", fontsize=10)
    fig.savefig(path, dpi=110)
    return True


def _gantt(ax, run: str, rows: list[dict], summary: dict) -> None:
    ypos = {lane: len(LANES) - 1 - i for i, lane in enumerate(LANES)}
    bars: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    stalls: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    end = 0
    for row in rows:
        unit = row.get("unit", "")
        if unit not in ypos:
            continue
        start, total, compute = _int(row, "start_cycle"), _int(row, "total_cycles"), _int(row, "compute_cycles")
        end = max(end, start + total)
        phase = row.get("phase", "fwd")
        if total > 0:
            stalls[(unit, phase)].append((start, total))
            bars[(unit, phase)].append((start, min(compute, total)))
    for (unit, phase), spans in stalls.items():
        ax.broken_barh(spans, (ypos[unit] - 0.35, 0.7), color=PHASE_COLORS.get(phase, "0.5"), alpha=0.3, linewidth=0)
    for (unit, phase), spans in bars.items():
        ax.broken_barh(spans, (ypos[unit] - 0.35, 0.7), color=PHASE_COLORS.get(phase, "0.5"), linewidth=0)
    info = summary.get("runs", {}).get(run, {})
    times, values, label = _dram_profile(rows, info.get("dram_bits_per_cycle"))
    if times:
        peak = max(values) or 1.0
        scaled = [ypos["dma"] - 0.35 + 0.7 * v / peak for v in values]
        ax.fill_between(times, ypos["dma"] - 0.35, scaled, step="post", color="0.35", linewidth=0)
        ax.text(0, ypos["dma"] + 0.38, f"{label}, peak {peak:.3g}", fontsize=6, va="bottom")
    ax.set_yticks([ypos[lane] for lane in LANES], [lane for lane in LANES])
    ax.set_ylim(-0.6, len(LANES) - 0.4)
    ax.set_xlim(0, max(end, 1))
    cycles = summary.get("runs", {}).get(run, {}).get("cycles_per_step", end)
    ax.set_title(f"{_run_label(summary, run)}: {cycles:,} cycles per step", fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)


def draw_utilization(ops_rows: list[dict], summary: dict, path: Path) -> bool:
    """Array utilization per (layer, phase), time-weighted over the layer's GEMMs."""
    keys: list[tuple[str, str]] = []
    weighted: dict[tuple[str, str, str], float] = defaultdict(float)
    cycles: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in ops_rows:
        if row.get("kind") != "gemm":
            continue
        total = _int(row, "total_cycles")
        key = (row.get("layer", ""), row.get("phase", ""))
        if key not in keys:
            keys.append(key)
        run = row.get("run", "")
        weighted[(run, *key)] += _float(row, "utilization") * total
        cycles[(run, *key)] += total
    if not keys:
        return False
    n = len(keys)
    height = min(max(3.0, 0.14 * n * 1.6 + 1.4), 60.0)
    fig = Figure(figsize=(7.5, height), constrained_layout=True)
    ax = fig.subplots()
    bar = 0.4
    for j, run in enumerate(RUNS):
        values = [weighted[(run, *k)] / cycles[(run, *k)] if cycles[(run, *k)] else 0.0 for k in keys]
        ax.barh([i + (j - 0.5) * bar for i in range(n)], values, height=bar, color=RUN_COLORS[run],
                label=_run_label(summary, run))
    ax.set_yticks(range(n), [f"{layer} {phase}" for layer, phase in keys], fontsize=5 if n > 60 else 7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("array utilization (MACs / peak MACs over the op's cycles, stalls included)")
    ax.set_title(f"{summary.get('workload', '')}: array utilization per layer and phase", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110)
    return True
