"""Plots of one run folder, drawn from its files alone (``summary.json``, ``ops.csv``,
``layers.csv``, ``config.resolved.yaml``, and ``training.csv`` / ``numerics.npz`` when trained).

``accelsim run`` calls :func:`plot_run` after writing the folder; ``accelsim plot RUN_DIR`` calls it
again, so every figure can be regenerated without re-simulating. Each plot has a level: the
``summary`` plots are what a person looks at first (drawn by default), ``all`` adds the rest.

* ``timeline.png`` (summary): both runs' units over one step on one time axis (:mod:`.timeline`).
* ``speedup_waterfall.png`` (summary): from the peak speedup down to the measured one, one bar per
  factor of ``speedup_breakdown`` (:mod:`accelsim.breakdown`), on a log axis where they multiply.
* ``energy_waterfall.png`` (summary): the energy ratio as the product of one factor per component.
* ``speedup_by_layer.png`` (summary): speedup per phase of the costliest GEMM layers.
* ``energy_breakdown.png`` (summary): energy of both runs by component.
* ``roofline.png`` (summary): each GEMM under its machine's roofs.
* ``training_curves.png``, ``grad_histogram.png``, ``input_bits.png`` (summary, trained runs).
* ``utilization.png`` (all): array utilization per phase of the costliest GEMM layers.

A plot that :mod:`.timeline` or :mod:`.numerics_plots` offers and :data:`RUN_PLOTS` does not list
is drawn at the ``summary`` level, after the listed ones.

Per-layer plots show at most :data:`~.plotkit.MAX_LABELLED_ROWS` layers by name (the costliest,
in network order) and gather the rest into one row, so their size and cost do not grow with the
network; every layer is in ``layers.csv``. Every step of the drawing is linear in the rows read.
"""

from __future__ import annotations

import csv
import json
import math
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import yaml

from accelsim.errors import InputError
from accelsim.report import plotkit as pk

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASES = ("fwd", "bwd_data", "bwd_weight")
#: (file name, level) of every run plot, in the order report.md shows them.
RUN_PLOTS = (
    ("timeline.png", "summary"),
    ("speedup_waterfall.png", "summary"),
    ("speedup_by_layer.png", "summary"),
    ("energy_breakdown.png", "summary"),
    ("energy_waterfall.png", "summary"),
    ("roofline.png", "summary"),
    ("training_curves.png", "summary"),
    ("grad_histogram.png", "summary"),
    ("input_bits.png", "summary"),
    ("utilization.png", "all"),
)
Draw = Callable[[Path], bool]
MISSING = "missing: not a complete run folder (accelsim run writes it)"


def read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError.single(str(path), "", MISSING) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError.single(str(path), "", f"not a readable CSV file: {exc}") from None


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(str(path), "", MISSING) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.single(str(path), "", f"not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError.single(str(path), "", "expected a JSON object")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError.single(str(path), "", MISSING) from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError.single(str(path), "", f"not a readable YAML file: {exc}") from None
    if not isinstance(data, dict):
        raise InputError.single(str(path), "", "expected a mapping")
    return data


class RunFolder:
    """The files of a run folder that the plots and report.md read, each read once, when first
    needed: ``summary`` (summary.json), ``config`` (config.resolved.yaml), ``layers``
    (layers.csv rows) and ``ops`` (ops.csv as :class:`~.plotkit.Columns`)."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir

    @cached_property
    def summary(self) -> dict[str, Any]:
        return read_json(self.dir / "summary.json")

    @cached_property
    def config(self) -> dict[str, Any]:
        return read_yaml(self.dir / "config.resolved.yaml")

    @cached_property
    def layers(self) -> list[dict[str, str]]:
        return read_csv(self.dir / "layers.csv")

    @cached_property
    def ops(self) -> pk.Columns:
        path = self.dir / "ops.csv"
        try:
            return pk.Columns.read(path)
        except FileNotFoundError:
            raise InputError.single(str(path), "", MISSING) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError.single(str(path), "", f"not a readable CSV file: {exc}") from None


def plot_run(run_dir: Path, level: str = "all", folder: RunFolder | None = None) -> list[str]:
    """Draw the plots of ``level`` (``none``, ``summary`` or ``all``) that the folder's data
    supports into ``run_dir/plots``; return the names drawn. ``folder`` passes files already read."""
    if pk.check_level(level) == "none":
        return []
    folder = folder or RunFolder(run_dir)
    draws = _draws(run_dir, folder.summary, folder.config, folder.ops, folder.layers)
    out = run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    levels = dict(RUN_PLOTS)
    order = [name for name, _ in RUN_PLOTS] + [name for name in draws if name not in levels]
    written = []
    for name in order:
        draw = draws.get(name)
        if draw is None or (level == "summary" and levels.get(name, "summary") != "summary"):
            continue
        if draw(out / name):
            written.append(name)
        else:
            (out / name).unlink(missing_ok=True)  # nothing to draw: no stale picture either
    return written


def existing_plots(run_dir: Path) -> list[str]:
    """The plots present in ``run_dir/plots``: those of :data:`RUN_PLOTS` in its order, then any
    other PNG by name."""
    present = {p.name for p in (run_dir / "plots").glob("*.png")} if (run_dir / "plots").is_dir() else set()
    known = [name for name, _ in RUN_PLOTS if name in present]
    return known + sorted(present - set(known))


def _draws(run_dir: Path, summary: dict, config: dict, ops: pk.Columns,
           layers: list[dict[str, str]]) -> dict[str, Draw]:
    from accelsim.report import timeline

    draws: dict[str, Draw] = {
        "speedup_by_layer.png": pk.drawer(lambda: speedup_figure(layers, summary)),
        "roofline.png": pk.drawer(lambda: roofline_figure(ops, config, summary)),
        "energy_breakdown.png": pk.drawer(lambda: energy_figure(summary)),
        "speedup_waterfall.png": pk.drawer(lambda: speedup_waterfall_figure(summary)),
        "energy_waterfall.png": pk.drawer(lambda: energy_waterfall_figure(summary)),
    }
    draws.update(timeline.plots_from_ops(ops, summary))
    if (run_dir / "training.csv").is_file():
        from accelsim.report import numerics_plots

        draws.update(numerics_plots.plots_from_folder(run_dir, summary))
    return draws


# ------------------------------------------------------------------------------------------------
# per-layer aggregation


def costliest(order: list[str], cost: dict[str, float], limit: int = pk.MAX_LABELLED_ROWS) -> tuple[list[str], list[str]]:
    """The ``limit`` costliest of ``order`` (kept in network order) and the rest (in order)."""
    if len(order) <= limit:
        return list(order), []
    top = set(sorted(order, key=lambda n: -cost.get(n, 0.0))[:limit])
    return [n for n in order if n in top], [n for n in order if n not in top]


def row_labels(shown: list[str], rest: list[str]) -> list[str]:
    labels = [pk.shorten(n) for n in shown]
    if rest:
        labels.append(f"the other {len(rest):,} layers")
    return labels


def _clock_ratio(summary: dict) -> float:
    """Policy clock / baseline clock: turns a ratio of cycles into a ratio of times."""
    runs = summary.get("runs") or {}
    p = pk.to_float((runs.get("policy") or {}).get("clock_ghz"))
    b = pk.to_float((runs.get("baseline") or {}).get("clock_ghz"))
    return p / b if p and b else 1.0


def speedup_figure(layers: list[dict[str, str]], summary: dict) -> "Figure | None":
    """Speedup (baseline time / policy time) per phase of the costliest GEMM layers."""
    cycles: dict[tuple[str, str], list[float]] = {}
    order: dict[str, None] = {}
    cost: dict[str, float] = {}
    cols = pk.Columns.from_rows(layers)
    macs = cols.num("policy_macs").tolist()
    pol, base = (np.nan_to_num(cols.num(c)).tolist() for c in ("policy_cycles", "baseline_cycles"))
    for layer, phase, m, p, b in zip(cols.text("layer"), cols.text("phase"), macs, pol, base):
        if not m > 0 or phase not in PHASES:  # GEMM phases only (NaN is not > 0)
            continue
        acc = cycles.setdefault((layer, phase), [0.0, 0.0])
        acc[0] += p
        acc[1] += b
        order.setdefault(layer, None)
        cost[layer] = cost.get(layer, 0.0) + b
    if not order:
        return None
    shown, rest = costliest(list(order), cost)
    groups = [[n] for n in shown] + ([rest] if rest else [])
    phases = [ph for ph in PHASES if any((n, ph) in cycles for n in order)]
    ratio = _clock_ratio(summary)
    values: dict[str, list[float | None]] = {}
    for ph in phases:
        col: list[float | None] = []
        for group in groups:
            p = sum(cycles.get((n, ph), (0.0, 0.0))[0] for n in group)
            b = sum(cycles.get((n, ph), (0.0, 0.0))[1] for n in group)
            col.append(b / p * ratio if p > 0 and b > 0 else None)
        values[ph] = col
    labels = row_labels(shown, rest)
    n_rows = len(labels)
    row_in = 0.1 + 0.09 * len(phases)
    left = pk.label_margin_in(labels, 7.5)
    fig = pk.figure(7.5, 1.75 + max(row_in * n_rows, 1.8), left=left, right=0.25, bottom=0.9, top=0.75)
    ax = fig.add_subplot()
    height = 0.8 / len(phases)
    top_value = 1.0
    for p_i, ph in enumerate(phases):
        ys = [i + (p_i - (len(phases) - 1) / 2) * height for i, v in enumerate(values[ph]) if v is not None]
        xs = [v for v in values[ph] if v is not None]
        top_value = max([top_value, *xs])
        pk.hbars(ax, ys, xs, height, pk.PHASE_COLORS[ph], ph)
    ax.axvline(1.0, color="black", linewidth=0.8)
    whole = pk.to_float(summary.get("speedup"))
    if whole is not None:
        ax.axvline(whole, color="0.3", linewidth=1.0, linestyle="--", label=f"whole step: {whole:.3g}x")
        top_value = max(top_value, whole)
    ax.set_xlim(0, top_value * 1.08)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_yticks(range(n_rows), labels, fontsize=7.5)
    ax.set_xlabel("speedup: baseline time / policy time (1 = no gain)", fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7.5, ncols=len(phases) + 1, loc="lower center",
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    what = (f"speedup of the {len(shown)} costliest of {len(order):,} GEMM layers (by baseline time), in network order"
            if rest else "speedup per GEMM layer and phase")
    pk.suptitle(fig, pk.title(summary, what))
    return fig


# ------------------------------------------------------------------------------------------------
# roofline


def roofline_figure(ops: "list[dict[str, str]] | pk.Columns", config: dict, summary: dict) -> "Figure | None":
    """Each GEMM at (MACs per DRAM byte, achieved MAC/s) under its machine's roofs: a compute
    roof per MAC rate of the array and the DRAM slope. Roofs both machines share are drawn once."""
    machines = {"policy": config["hardware"], "baseline": config["baseline_hardware"]}
    ops = ops if isinstance(ops, pk.Columns) else pk.Columns.from_rows(ops)
    kind, run_of = np.array(ops.text("kind"), dtype=object), np.array(ops.text("run"), dtype=object)
    macs, total = ops.num("macs"), ops.num("total_cycles")
    dram_bytes = (np.nan_to_num(ops.num("dram_read_bits")) + np.nan_to_num(ops.num("dram_write_bits"))) / 8
    points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for label in ("policy", "baseline"):
            sel = (kind == "gemm") & (run_of == label) & (macs > 0) & (total > 0) & (dram_bytes > 0)
            hz = float(machines[label]["clock_ghz"]) * 1e9
            x, y = macs[sel] / dram_bytes[sel], macs[sel] / total[sel] * hz
            ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
            points[label] = (x[ok], y[ok])
    xs_all = np.concatenate([points["policy"][0], points["baseline"][0]])
    if not xs_all.size:
        return None
    lo, hi = float(xs_all.min()) / 2, float(xs_all.max()) * 2
    # roofs: (peak MAC/s, DRAM bytes/s) -> [(run label, machine name, modes)]
    roofs: dict[tuple[float, float], list[tuple[str, str, list[str]]]] = {}
    for label, hw in machines.items():
        hz = float(hw["clock_ghz"]) * 1e9
        bytes_per_s = float(hw["dram"]["bandwidth_gbps"]) * 1e9 / 8
        pes = int(hw["array"]["rows"]) * int(hw["array"]["cols"])
        by_rate: dict[float, list[str]] = {}
        for mode, rate in hw["array"]["modes"].items():
            by_rate.setdefault(float(rate), []).append(mode)
        for rate, modes in by_rate.items():
            key = (float(f"{pes * rate * hz:.6g}"), float(f"{bytes_per_s:.6g}"))
            roofs.setdefault(key, []).append((label, hw["name"], modes))
    peaks = [peak for peak, _ in roofs]
    ys_all = np.concatenate([points["policy"][1], points["baseline"][1]])
    y_min, y_max = float(ys_all.min()), float(ys_all.max())
    scale, unit = pk.si_scale(peaks + [y_max], "MAC/s")
    y_lo = min([y_min] + [min(peak, lo * bw) for peak, bw in roofs]) / 3
    y_hi = max(peaks + [y_max]) * 4
    lines = []  # (xs, ys, colour, style) of each roof, and its label
    texts: list[tuple[float, str, str]] = []
    for (peak, bw), owners in roofs.items():
        knee = peak / bw
        xs = [lo, knee, hi] if lo < knee < hi else [lo, hi]
        labels_of = {o[0] for o in owners}
        color = "0.25" if len(labels_of) > 1 else pk.RUN_COLORS[owners[0][0]]
        lines.append((xs, [min(peak, x * bw) / scale for x in xs], color, "--" if labels_of == {"baseline"} else "-"))
        names = " & ".join(dict.fromkeys(o[1] for o in owners))
        modes = ", ".join(dict.fromkeys(m for o in owners for m in o[2]))
        texts.append((peak / scale, f"{names}:\n{modes}, {pk.si(peak, 'MAC/s')}", color))
    right = 0.35 + max(len(line) for _, t, _ in texts for line in t.split("\n")) * 6.5 * 0.6 / 72
    fig = pk.figure(6.4 + right, 5.6, left=0.85, right=right, bottom=1.2, top=0.75)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    ax.set_yscale("log")
    for label in ("policy", "baseline"):
        xs, ys = points[label]
        if xs.size:
            ax.scatter(xs, ys / scale, s=9, alpha=0.6, color=pk.RUN_COLORS[label], linewidths=0,
                       label=f"{pk.run_label(summary, label)}: {len(xs):,} GEMMs", rasterized=len(xs) > 2000)
    for xs, ys, color, style in lines:
        ax.plot(xs, ys, color=color, linewidth=1.1, alpha=0.8, linestyle=style)
    ax.set_xlim(lo, hi)
    ax.set_ylim(y_lo / scale, y_hi / scale)
    _place_roof_labels(ax, texts, y_lo / scale, y_hi / scale)
    ax.set_xlabel("arithmetic intensity, MACs per DRAM byte", fontsize=8.5)
    ax.set_ylabel(f"achieved rate, {unit}", fontsize=8.5)
    ax.tick_params(labelsize=8)
    pk.plain_log_axis(ax)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, frameon=False, markerscale=2)
    what = "each GEMM's MACs per DRAM byte and achieved MAC rate under its machine's roofs (dashed: baseline only)"
    pk.suptitle(fig, pk.title(summary, what))
    return fig


def _place_roof_labels(ax, texts: list[tuple[float, str, str]], y_lo: float, y_hi: float) -> None:
    """Roof labels in the right margin at their roof's height (where no point can sit), pushed
    apart in log space so that no two overlap (two roofs at one height get a label each)."""
    from matplotlib.transforms import blended_transform_factory

    span = math.log10(y_hi) - math.log10(y_lo)
    gap = span * 0.075
    placed: list[float] = []
    for y, _, _ in sorted(texts, key=lambda t: t[0]):
        pos = math.log10(y)
        placed.append(max(pos, placed[-1] + gap) if placed else pos)
    overflow = placed[-1] - math.log10(y_hi) + gap / 2 if placed else 0
    if overflow > 0:
        placed = [p - overflow for p in placed]
    where = blended_transform_factory(ax.transAxes, ax.transData)
    for pos, (_, text, color) in zip(placed, sorted(texts, key=lambda t: t[0])):
        ax.text(1.02, 10 ** pos, text, fontsize=6.5, ha="left", va="center", color=color, transform=where,
                linespacing=1.2)


# ------------------------------------------------------------------------------------------------
# energy


def energy_figure(summary: dict) -> "Figure | None":
    """Stacked energy per component of both runs, in the SI prefix that fits the larger total."""
    runs = summary["runs"]
    keys = ("policy", "baseline")
    breakdown = {k: (runs[k].get("energy_breakdown_pj") or None) for k in keys}
    if any(b is None for b in breakdown.values()):
        return None
    # the components in summary.json's order (accelsim.energy.COMPONENTS when accelsim wrote it)
    components = list(dict.fromkeys([*breakdown["policy"], *breakdown["baseline"]]))
    joules = {k: {c: (pk.to_float(breakdown[k].get(c)) or 0.0) * 1e-12 for c in components} for k in keys}
    totals = [sum(joules[k].values()) for k in keys]
    if not any(t > 0 for t in totals):
        return None
    scale, unit = pk.si_scale(totals, "J")
    fig = pk.figure(7.5, 4.8, left=0.9, right=1.55, bottom=0.75, top=0.85)
    ax = fig.add_subplot()
    labels = [f"{runs[k]['precision']}\non {runs[k]['hardware']}" for k in keys]
    bottom = [0.0, 0.0]
    colors = {"mac": "tab:blue", "sram": "tab:orange", "dram": "tab:red", "rescale": "tab:green",
              "vector": "tab:purple", "leakage": "tab:gray"}
    for comp in components:
        vals = [joules[k][comp] / scale for k in keys]
        if not any(v > 0 for v in vals):
            continue  # a component neither run spends energy on gets no legend entry
        ax.bar([0, 1], vals, bottom=bottom, width=0.55, label=comp, color=colors.get(comp))
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, t in enumerate(totals):
        ax.text(i, t / scale, f"{pk.si(t, 'J')}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([0, 1], labels, fontsize=8)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(0, max(totals) / scale * 1.12)
    ax.set_ylabel(f"energy, {unit}", fontsize=8.5)
    ax.tick_params(axis="y", labelsize=8)
    pk.plain_axis(ax, "y")
    ax.grid(axis="y", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ratio = pk.to_float(summary.get("energy_ratio"))
    what = "energy by component" + (f": baseline / policy = {ratio:.3g}x" if ratio else "")
    pk.suptitle(fig, pk.title(summary, what, per_step=False))
    return fig


# ------------------------------------------------------------------------------------------------
# waterfalls: why the speedup is below peak, where the energy ratio comes from


def _factor_label(name: str) -> str:
    from accelsim.report.text import FACTOR_LABELS

    return {"mapping": "mapping", "rescale": "rescale\n(quantization)", "layers_not_in_4_bits": "layers not\nin 4 bits",
            "memory_stalls": "memory\nstalls", "fill_drain": "fill and\ndrain", "idle": "dependency\nwaits",
            "vector": "vector\nunit", "work": "GEMM\nwork"}.get(name, FACTOR_LABELS.get(name, name))


def _factor_digits(factor: float) -> str:
    """A factor in 3 significant digits, or 4 when 3 would round it to 1 (it is not 1)."""
    text = f"{factor:.3g}"
    return f"{factor:.4g}" if text == "1" and factor != 1 else text


def _nice_ratio_ticks(lo: float, hi: float, most: int = 9) -> list[float]:
    """Ticks of a log ratio axis between ``lo`` and ``hi``: 1, 2, 5 per decade, with 1.25, 1.5, 3,
    4, 6, 8 added while there are few."""
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for mantissas in ((1, 1.25, 1.5, 2, 3, 4, 5, 6, 8), (1, 1.5, 2, 3, 5, 7), (1, 2, 5), (1,)):
        ticks = [float(f"{m * 10 ** d:.6g}") for d in decades for m in mantissas]
        ticks = [t for t in ticks if lo <= t <= hi]
        if len(ticks) <= most:
            return ticks
    return ticks


def waterfall_figure(
    steps: list[tuple[str, float]], start: tuple[str, float] | None, end: tuple[str, float], title: str,
    ylabel: str, unchanged: list[str],
) -> "Figure":
    """A multiplicative waterfall on a log axis: an optional ``start`` bar from 1, one floating bar
    per ``(label, factor)`` from the running product to the product times the factor (red: a loss,
    green: a gain), and the ``end`` bar from 1 to the result; ``unchanged`` names factors of
    exactly 1 left out (said under the axis)."""
    bars: list[tuple[str, float, float, str]] = []  # label, bottom, top, colour
    level = 1.0
    if start is not None:
        bars.append((start[0], 1.0, start[1], "0.55"))
        level = start[1]
    for label, factor in steps:
        bars.append((label, level, level * factor, "tab:red" if factor < 1 else "tab:green"))
        level *= factor
    bars.append((end[0], 1.0, end[1], "tab:blue"))
    values = [v for _, lo, hi, _ in bars for v in (lo, hi)]
    lo_v, hi_v = min(values + [1.0]), max(values + [1.0])
    span = math.log10(hi_v / lo_v) or 0.1
    y_lo, y_hi = lo_v / 10 ** (0.12 * span), hi_v * 10 ** (0.16 * span)
    width = max(6.4, 1.6 + 0.95 * len(bars))
    fig = pk.figure(width, 4.6, left=0.8, right=0.3, bottom=0.6 if not unchanged else 0.8, top=0.7)
    ax = fig.add_subplot()
    ax.set_yscale("log")
    for i, (label, bottom, top, color) in enumerate(bars):
        low, high = min(bottom, top), max(bottom, top)
        if high / low < 1.0005:  # keep a sliver visible
            high = low * 1.0005
        ax.bar(i, high - low, bottom=low, width=0.62, color=color, edgecolor="none")
        if i + 1 < len(bars):
            nxt = bars[i + 1]
            join = top if nxt[1] != 1.0 or i + 2 < len(bars) else top
            ax.plot([i + 0.31, i + 1 - 0.31], [join, join], color="0.45", linewidth=0.7, linestyle=":")
        is_factor = (start is None or i > 0) and i < len(bars) - 1
        text = f"×{_factor_digits(top / bottom)}" if is_factor else f"{top:.3g}x"
        above = top >= bottom
        ax.text(i, high * 10 ** (0.02 * span) if above else low / 10 ** (0.02 * span), text,
                ha="center", va="bottom" if above else "top", fontsize=8,
                color="black" if not is_factor else color)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7.5)
    ax.set_ylabel(ylabel, fontsize=8.5)
    ax.tick_params(axis="y", labelsize=8)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.yaxis.set_major_locator(FixedLocator(_nice_ratio_ticks(y_lo, y_hi)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", alpha=0.3)
    if unchanged:
        fig.text(0.5, 0.12 / fig.get_figheight(), f"left out, factor 1: {', '.join(unchanged)}", ha="center",
                 va="bottom", fontsize=7.5, color="0.35")
    pk.suptitle(fig, title)
    return fig


def speedup_waterfall_figure(summary: dict) -> "Figure | None":
    """From the peak speedup (the two machines' peak MACs per second) down to the measured speedup:
    one bar per factor of ``summary["speedup_breakdown"]``, in chain order."""
    factors = summary.get("speedup_breakdown")
    peak, speedup = pk.to_float(summary.get("peak_speedup")), pk.to_float(summary.get("speedup"))
    if not factors or peak is None or speedup is None:
        return None
    from accelsim.report.text import FACTOR_LABELS

    steps = [(_factor_label(k), float(f["factor"])) for k, f in factors.items() if abs(f["factor"] - 1) > 1e-9]
    unchanged = [FACTOR_LABELS.get(k, k) for k, f in factors.items() if abs(f["factor"] - 1) <= 1e-9]
    modes = summary.get("peak") or {}
    what = (f"why the speedup is {speedup:.3g}x, not the peak {peak:.3g}x ({modes.get('policy_mode', '?')} vs "
            f"{modes.get('baseline_mode', '?')}): each factor multiplies (red loses, green gains)")
    return waterfall_figure(steps, ("peak", peak), ("measured", speedup), pk.title(summary, what, per_step=False),
                            "speedup, baseline time / policy time (log)", unchanged)


def energy_waterfall_figure(summary: dict) -> "Figure | None":
    """The energy ratio as the product of one factor per component (``energy_ratio_breakdown``):
    from 1 (no saving) to the measured ratio."""
    parts = summary.get("energy_ratio_breakdown")
    ratio = pk.to_float(summary.get("energy_ratio"))
    if not parts or ratio is None:
        return None
    steps = [(c, float(v["factor"])) for c, v in parts.items() if abs(v["factor"] - 1) > 1e-9]
    unchanged = [c for c, v in parts.items() if abs(v["factor"] - 1) <= 1e-9]
    what = (f"where the energy ratio {ratio:.3g}x comes from: one factor per component, from 1 (no saving); "
            "red: energy the 4-bit run spends beyond the baseline")
    return waterfall_figure(steps, None, ("measured", ratio), pk.title(summary, what, per_step=False),
                            "energy ratio, baseline / policy (log)", unchanged)
