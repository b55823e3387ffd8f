"""Plots of the event model's timing, drawn from a run folder's ``ops.csv`` rows alone.

* ``timeline.png``: a Gantt chart of one step, policy run above and baseline below **on one time
  axis** (seconds, from each run's clock; cycles when the summary has no clock), so the faster
  run's bars end earlier. One lane per unit (array, DMA, rescale, vector). An op's bar spans its
  ``start_cycle`` to ``start_cycle + total_cycles``, coloured by phase: solid for its compute
  cycles, pale for its memory stalls. The DMA lane shows how busy DRAM is: the average over each
  pixel column of the sum over running ops of their bus share (DRAM bits / bandwidth /
  ``total_cycles``; bits per cycle when the run in ``summary.json`` has no
  ``dram_bits_per_cycle``). Bars closer than a pixel are merged and the DRAM profile is binned
  to the pixel columns, so the picture costs the same for ten ops or a million.
* ``utilization.png``: array utilization (MACs over peak MACs during the op) per phase of the
  costliest GEMM layers, both runs side by side; the other layers in one row.

:func:`plots_from_ops` returns ``(file name, draw)`` pairs; ``draw(path)`` writes the PNG and
returns True, or False when the rows hold nothing to draw. Matplotlib's object API only (no
pyplot state), so plots can be drawn from several threads or processes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from accelsim.report import plotkit as pk

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LANES = ("array", "dma", "rescale", "vector")
PHASE_COLORS = pk.PHASE_COLORS
RUN_COLORS = pk.RUN_COLORS
RUNS = ("policy", "baseline")
GEMM_PHASES = ("fwd", "bwd_data", "bwd_weight")
#: Width of the timeline figure in inches and of its axes in pixel columns (merge and bin size).
WIDTH_IN = 11.0
COLUMNS = 1000


def plots_from_ops(ops_rows: list[dict], summary: dict) -> list[tuple[str, Callable[[Path], bool]]]:
    """The timeline and utilization plots of a run folder (see the module docstring)."""
    return [
        ("timeline.png", pk.drawer(lambda: timeline_figure(ops_rows, summary))),
        ("utilization.png", pk.drawer(lambda: utilization_figure(ops_rows, summary))),
    ]


def _hz(summary: dict, run: str) -> float | None:
    ghz = pk.to_float(((summary.get("runs") or {}).get(run) or {}).get("clock_ghz"))
    return ghz * 1e9 if ghz and ghz > 0 else None


def _columns(ops: "list[dict] | pk.Columns") -> pk.Columns:
    return ops if isinstance(ops, pk.Columns) else pk.Columns.from_rows(ops)


def merge_spans(starts: np.ndarray, widths: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Spans ``[start, start + width)`` with those closer than ``eps`` joined: ``(starts, widths)``
    of the merged spans, sorted. Vectorised; O(n log n) for the sort."""
    if starts.size == 0:
        return starts, widths
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], starts[order] + widths[order]
    reach = np.maximum.accumulate(e)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    new[1:] = s[1:] > reach[:-1] + eps
    first = np.flatnonzero(new)
    ends = np.maximum.reduceat(e, first)
    return s[first], ends - s[first]


def dram_profile(starts: np.ndarray, totals: np.ndarray, rates: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean over each bin ``[edges[j], edges[j+1])`` of ``Σ rates[i]`` over the ops running then
    (op ``i`` runs from ``starts[i]`` for ``totals[i]``). Exact, in O((ops + bins) log ops): the
    integral of one op's rate up to ``t`` is ``rate · (min(t, end) − min(t, start))``."""
    ends = starts + totals

    def integral(points: np.ndarray, order_by: np.ndarray) -> np.ndarray:
        # Σ_i rate_i · min(t, x_i): x_i ≤ t contribute rate_i·x_i, the others rate_i·t
        order = np.argsort(order_by, kind="stable")
        xs, rs = order_by[order], rates[order]
        below_rx = np.concatenate(([0.0], np.cumsum(rs * xs)))
        below_r = np.concatenate(([0.0], np.cumsum(rs)))
        k = np.searchsorted(xs, points, side="right")
        return below_rx[k] + points * (below_r[-1] - below_r[k])

    cumulative = integral(edges, ends) - integral(edges, starts)
    widths = np.diff(edges)
    return np.where(widths > 0, np.diff(cumulative) / np.where(widths > 0, widths, 1.0), 0.0)


def timeline_figure(ops_rows: "list[dict] | pk.Columns", summary: dict) -> "Figure | None":
    ops = _columns(ops_rows)
    run_of = np.array(ops.text("run"), dtype=object)
    start, total = np.nan_to_num(ops.num("start_cycle")), np.nan_to_num(ops.num("total_cycles"))
    runs = [run for run in RUNS if np.any(run_of == run)]
    if not runs or not np.any(total > 0):
        return None
    in_seconds = all(_hz(summary, run) for run in runs)
    per_unit = {run: (1.0 / _hz(summary, run) if in_seconds else 1.0) for run in runs}  # type: ignore[operator]
    ends = {run: float(np.max(start[run_of == run] + total[run_of == run], initial=0.0)) for run in runs}
    span_end = max(ends[run] * per_unit[run] for run in runs)
    if not (span_end > 0 and math.isfinite(span_end)):
        return None
    scale, unit = pk.si_scale([span_end], "s" if in_seconds else "cycles")
    fig = pk.figure(WIDTH_IN, 1.7 + 2.15 * len(runs), left=0.85, right=0.3, bottom=0.85, top=0.95, hspace=0.45)
    axes = fig.subplots(len(runs), 1, squeeze=False, sharex=True)[:, 0]
    x_end = span_end / scale
    for ax, run in zip(axes, runs):
        _gantt(ax, run, ops, run_of == run, summary, per_unit[run] / scale, x_end, ends[run] * per_unit[run])
    axes[-1].set_xlim(0, x_end * 1.005)
    axes[-1].set_xlabel(f"time since the step began, {unit}" if in_seconds else f"cycles since the step began, {unit}",
                        fontsize=8.5)
    from matplotlib.patches import Patch

    present = set(ops.text("phase"))
    handles = [Patch(color=c, label=p) for p, c in PHASE_COLORS.items() if p in present]
    handles.append(Patch(color="0.6", alpha=0.35, label="memory stall (pale)"))
    known = all(pk.to_float(((summary.get("runs") or {}).get(run) or {}).get("dram_bits_per_cycle")) for run in runs)
    handles.append(Patch(color="0.35", label="DMA: DRAM demand (full lane = bandwidth)" if known
                         else "DMA: DRAM bits per cycle (full lane = peak)"))
    fig.legend(handles=handles, fontsize=7.5, loc="lower center", ncols=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    pk.suptitle(fig, pk.title(summary, "event timeline of the array, DMA, rescale and vector units, both runs on one time axis"))
    return fig


def _gantt(ax, run: str, ops: pk.Columns, mine: np.ndarray, summary: dict, to_x: float, x_end: float,
           run_end: float) -> None:
    """One run's lanes. ``mine`` selects its rows; ``to_x`` turns cycles into the x unit."""
    ypos = {lane: len(LANES) - 1 - i for i, lane in enumerate(LANES)}
    eps = x_end / COLUMNS / 2
    start = np.nan_to_num(ops.num("start_cycle"))[mine]
    total = np.nan_to_num(ops.num("total_cycles"))[mine]
    compute = np.minimum(np.nan_to_num(ops.num("compute_cycles"))[mine], total)
    moved = (np.nan_to_num(ops.num("dram_read_bits")) + np.nan_to_num(ops.num("dram_write_bits")))[mine]
    units = np.array(ops.text("unit"), dtype=object)[mine]
    phases = np.array([p or "fwd" for p in ops.text("phase")], dtype=object)[mine]
    live = total > 0
    for unit in LANES:
        on_unit = live & (units == unit)
        if not on_unit.any():
            continue
        for phase in dict.fromkeys(phases[on_unit].tolist()):
            sel = on_unit & (phases == phase)
            color = PHASE_COLORS.get(phase, "0.5")
            xs, ws = merge_spans(start[sel] * to_x, total[sel] * to_x, eps)
            ax.broken_barh(np.column_stack((xs, ws)), (ypos[unit] - 0.35, 0.7), color=color, alpha=0.3, linewidth=0)
            busy = sel & (compute > 0)
            xs, ws = merge_spans(start[busy] * to_x, compute[busy] * to_x, eps)
            if xs.size:
                ax.broken_barh(np.column_stack((xs, ws)), (ypos[unit] - 0.35, 0.7), color=color, linewidth=0)
    info = (summary.get("runs") or {}).get(run) or {}
    transfers = live & (moved > 0)
    if transfers.any():
        bits_per_cycle = pk.to_float(info.get("dram_bits_per_cycle"))
        rates = moved[transfers] / total[transfers] / (bits_per_cycle or 1.0)
        edges_x = np.linspace(0.0, x_end, COLUMNS + 1)
        values = dram_profile(start[transfers] * to_x, total[transfers] * to_x, rates, edges_x)
        peak = float(values.max()) if values.size else 0.0
        if peak > 0 and math.isfinite(peak):
            full = max(peak, 1.0) if bits_per_cycle else peak
            scaled = ypos["dma"] - 0.35 + 0.7 * np.minimum(values / full, 1.0)
            ax.fill_between(edges_x[:-1], ypos["dma"] - 0.35, scaled, step="post", color="0.35", linewidth=0)
    ax.set_yticks([ypos[lane] for lane in LANES], list(LANES), fontsize=8)
    ax.set_ylim(-0.6, len(LANES) - 0.35)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    end_x = float(np.max(start + total, initial=0.0)) * to_x
    ax.axvline(end_x, color="black", linewidth=0.8)  # where this run's step ends
    cycles = pk.to_float(info.get("cycles_per_step"))
    text = f"{pk.run_label(summary, run)}: "
    text += f"{pk.si(run_end, 's')} per step" if _hz(summary, run) else ""
    if cycles is not None:
        text += f" ({cycles:,.0f} cycles)" if _hz(summary, run) else f"{cycles:,.0f} cycles per step"
    speedup = pk.to_float(summary.get("speedup"))
    if run == "policy" and speedup is not None and speedup > 0:
        text += (f", {speedup:.3g}x faster than the baseline" if speedup >= 1
                 else f", {1 / speedup:.3g}x slower than the baseline")
    ax.set_title(text, fontsize=8.5, loc="left")


def utilization_figure(ops_rows: "list[dict] | pk.Columns", summary: dict) -> "Figure | None":
    """Array utilization per (layer, phase), time-weighted over the layer's GEMMs, of the
    costliest GEMM layers (by baseline cycles), both runs side by side, one panel per phase."""
    from accelsim.report.run_plots import costliest, row_labels

    ops = _columns(ops_rows)
    weighted: dict[tuple[str, str, str], float] = defaultdict(float)
    cycles: dict[tuple[str, str, str], float] = defaultdict(float)
    order: dict[str, None] = {}
    cost: dict[str, float] = defaultdict(float)
    phases_seen: set[str] = set()
    total_col = np.nan_to_num(ops.num("total_cycles")).tolist()
    util_col = np.clip(np.nan_to_num(ops.num("utilization")), 0.0, 1.0).tolist()
    for kind, layer, phase, run, total, util in zip(ops.text("kind"), ops.text("layer"), ops.text("phase"),
                                                   ops.text("run"), total_col, util_col):
        if kind != "gemm":
            continue
        order.setdefault(layer, None)
        phases_seen.add(phase)
        weighted[(run, layer, phase)] += util * total
        cycles[(run, layer, phase)] += total
        if run == "baseline":
            cost[layer] += total
    if not order:
        return None
    phases = [p for p in GEMM_PHASES if p in phases_seen] + sorted(phases_seen - set(GEMM_PHASES))
    shown, rest = costliest(list(order), cost)
    groups = [[n] for n in shown] + ([rest] if rest else [])
    labels = row_labels(shown, rest)
    n_rows = len(labels)
    row_in = 0.26
    left = pk.label_margin_in(labels, 7.5)
    width = min(max(left + 0.3 + 2.9 * len(phases), 6.5), 13.0)
    fig = pk.figure(width, 1.9 + max(row_in * n_rows, 1.8), left=left, right=0.3, bottom=0.95, top=0.95, wspace=0.08)
    axes = fig.subplots(1, len(phases), squeeze=False, sharey=True)[0]
    bar = 0.4
    for ax, phase in zip(axes, phases):
        for j, run in enumerate(RUNS):
            values = []
            for group in groups:
                w = sum(weighted.get((run, n, phase), 0.0) for n in group)
                c = sum(cycles.get((run, n, phase), 0.0) for n in group)
                values.append(100.0 * w / c if c > 0 else math.nan)
            pk.hbars(ax, [i + (j - 0.5) * bar for i in range(n_rows)], values, bar, RUN_COLORS[run],
                     pk.run_label(summary, run))
        ax.set_xlim(0, 100)
        ax.set_title(phase, fontsize=8.5)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("utilization, %", fontsize=8)
    axes[0].set_yticks(range(n_rows), labels, fontsize=7.5)
    axes[0].set_ylim(n_rows - 0.5, -0.5)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7.5, loc="lower center", ncols=2, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    what = ("array utilization (MACs / peak MACs over the op's cycles, stalls included) of the "
            + (f"{len(shown)} costliest of {len(order):,} GEMM layers, in network order" if rest else "GEMM layers"))
    pk.suptitle(fig, pk.title(summary, what))
    return fig
