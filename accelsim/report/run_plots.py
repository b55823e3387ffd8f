"""Plots of one run folder, drawn from its files alone (``summary.json``, ``ops.csv``,
``layers.csv``, ``config.resolved.yaml``, and ``training.csv`` / ``numerics.npz`` when trained).

``accelsim run`` calls :func:`plot_run` after writing the folder; ``accelsim plot RUN_DIR`` calls it
again, so every figure can be regenerated without re-simulating.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import yaml
from matplotlib.figure import Figure

from accelsim.energy import COMPONENTS


COLORS = {"policy": "tab:blue", "baseline": "tab:orange"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def plot_run(run_dir: Path) -> list[str]:
    """Write every plot the folder's data supports into ``run_dir/plots``; return their names."""
    out = run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((run_dir / "config.resolved.yaml").read_text(encoding="utf-8"))
    ops = read_csv(run_dir / "ops.csv")
    layers = read_csv(run_dir / "layers.csv")
    plots: list[tuple[str, Callable[[Path], bool]]] = [
        ("speedup_by_layer.png", lambda p: _speedup_by_layer(layers, summary, p)),
        ("roofline.png", lambda p: _roofline(ops, config, summary, p)),
        ("energy_breakdown.png", lambda p: _energy_breakdown(summary, p)),
    ]
    extra = _extra_plots(run_dir, summary, config, ops)
    written = []
    for name, draw in plots + extra:
        if draw(out / name):
            written.append(name)
    return written


def _extra_plots(run_dir: Path, summary: dict, config: dict, ops: list[dict[str, str]]) -> list[tuple[str, Callable[[Path], bool]]]:
    """Plots contributed by the timing model and the numerics, when their data is in the folder."""
    extra: list[tuple[str, Callable[[Path], bool]]] = []
    try:
        from accelsim.report import timeline
    except ImportError:  # pragma: no cover - the event model ships timeline plots
        timeline = None
    if timeline is not None and hasattr(timeline, "plots_from_ops"):
        extra.extend(timeline.plots_from_ops(ops, summary))
    if (run_dir / "training.csv").is_file():
        from accelsim.report import numerics_plots

        extra.extend(numerics_plots.plots_from_folder(run_dir, summary))
    return extra


def _save(fig: Figure, path: Path) -> bool:
    fig.savefig(path, dpi=110)
    return True


#: Layers shown in speedup_by_layer.png (the costliest by baseline cycles; all are in layers.csv).
MAX_LAYERS_PLOTTED = 40
PHASES = ("fwd", "bwd_data", "bwd_weight")


def _speedup_by_layer(layers: list[dict[str, str]], summary: dict, path: Path) -> bool:
    """Speedup per GEMM layer, one bar per phase, for the costliest layers."""
    rows = [r for r in layers if r["speedup"] not in ("", None) and int(r["policy_macs"] or 0) > 0]
    if not rows:
        return False
    cost: dict[str, int] = {}
    for r in rows:
        cost[r["layer"]] = cost.get(r["layer"], 0) + int(r["baseline_cycles"])
    names = sorted(cost, key=lambda n: -cost[n])[:MAX_LAYERS_PLOTTED]
    names = [n for n in dict.fromkeys(r["layer"] for r in rows) if n in names]  # network order
    by_key = {(r["layer"], r["phase"]): float(r["speedup"]) for r in rows}
    fig = Figure(figsize=(7.5, max(3.0, 0.28 * len(names) + 1.4)), constrained_layout=True)
    ax = fig.subplots()
    width = 0.8 / len(PHASES)
    for p_i, phase in enumerate(PHASES):
        ys = [i + (p_i - 1) * width for i, n in enumerate(names) if (n, phase) in by_key]
        xs = [by_key[(n, phase)] for n in names if (n, phase) in by_key]
        ax.barh(ys, xs, height=width, label=phase)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("speedup vs baseline (baseline cycles / policy cycles)")
    shown = f"the {len(names)} costliest GEMM layers" if len(cost) > len(names) else "GEMM layers"
    ax.set_title(f"{summary['workload']}: {shown}, {summary['precision']} vs {summary['baseline_precision']}", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _roofline(ops: list[dict[str, str]], config: dict, summary: dict, path: Path) -> bool:
    """Each GEMM at (MACs per DRAM byte, achieved MACs per cycle) under its machine's roofs."""
    gemms = [r for r in ops if r["kind"] == "gemm" and int(r["total_cycles"] or 0) > 0]
    if not gemms:
        return False
    fig = Figure(figsize=(7.5, 5), constrained_layout=True)
    ax = fig.subplots()
    machines = {"policy": config["hardware"], "baseline": config["baseline_hardware"]}
    xs_all = []
    for label in ("policy", "baseline"):
        rows = [r for r in gemms if r["run"] == label]
        xs, ys = [], []
        for r in rows:
            dram_bytes = (int(r["dram_read_bits"]) + int(r["dram_write_bits"])) / 8
            if dram_bytes <= 0:
                continue
            xs.append(int(r["macs"]) / dram_bytes)
            ys.append(int(r["macs"]) / int(r["total_cycles"]))
        xs_all += xs
        ax.scatter(xs, ys, s=10, alpha=0.7, color=COLORS[label], label=f"{label} ({summary['runs'][label]['precision']})")
    if not xs_all:
        return False
    lo, hi = min(xs_all) / 2, max(xs_all) * 2
    for label, hw in machines.items():
        bytes_per_cycle = hw["dram"]["bandwidth_gbps"] / hw["clock_ghz"] / 8
        pes = hw["array"]["rows"] * hw["array"]["cols"]
        by_rate: dict[int, list[str]] = {}
        for mode, rate in hw["array"]["modes"].items():
            by_rate.setdefault(rate, []).append(mode)
        for rate, modes in by_rate.items():
            peak = pes * rate
            knee = peak / bytes_per_cycle
            xs = [lo, knee, hi] if lo < knee < hi else [lo, hi]
            ys = [min(peak, x * bytes_per_cycle) for x in xs]
            ax.plot(xs, ys, color=COLORS[label], linewidth=1, alpha=0.6, linestyle="-" if label == "policy" else "--")
            ax.text(hi, peak, f" {hw['name']}: {', '.join(modes)}", fontsize=6, va="center", color=COLORS[label])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity, MACs per DRAM byte")
    ax.set_ylabel("achieved MACs per cycle")
    ax.set_title(f"{summary['workload']}: GEMMs on the roofline")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _energy_breakdown(summary: dict, path: Path) -> bool:
    runs = summary["runs"]
    if any(runs[label].get("energy_breakdown_pj") is None for label in ("policy", "baseline")):
        return False
    fig = Figure(figsize=(6, 4.5), constrained_layout=True)
    ax = fig.subplots()
    labels = [f"{runs[k]['precision']}\non {runs[k]['hardware']}" for k in ("policy", "baseline")]
    bottom = [0.0, 0.0]
    for comp in COMPONENTS:
        vals = [runs[k]["energy_breakdown_pj"].get(comp, 0.0) / 1e6 for k in ("policy", "baseline")]
        ax.bar(labels, vals, bottom=bottom, label=comp)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ratio = summary.get("energy_ratio")
    ax.set_ylabel("energy, µJ")
    ax.set_title(f"{summary['workload']}: energy" + (f" (baseline / policy = {ratio:.3g}x)" if ratio else ""))
    ax.legend(fontsize=8)
    return _save(fig, path)
