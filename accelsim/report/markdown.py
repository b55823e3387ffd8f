"""``report.md``: what was simulated, the headline comparison, the per-layer table and every plot."""

from __future__ import annotations

from typing import Any

from accelsim.report.text import (
    FACTOR_LABELS, accuracy_text, array_text, cycles_text, delta_text, power_text, quantization_text, scale_bits_text,
    share_text, stall_text,
)

#: Per-layer rows shown in report.md (the full table is layers.csv).
MAX_LAYER_ROWS = 40


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    for prefix, scale in (("", 1.0), ("m", 1e-3), ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def render_report(
    summary: dict[str, Any], config: dict[str, Any], layers: list[dict[str, Any]], plots: list[str],
) -> str:
    """The Markdown text of ``report.md``."""
    p, b = summary["runs"]["policy"], summary["runs"]["baseline"]
    hw, bhw = config["hardware"], config["baseline_hardware"]
    wl = config["workload"]
    lines = [
        f"# {summary['workload']}: {summary['precision']} vs {summary['baseline_precision']}",
        "",
        "## What was simulated",
        "",
        f"* **Workload** `{wl['name']}` ({config['workload_file']}): {wl['phases']}, batch "
        f"{wl['data']['batch_size']}, {p['steps']:,} step{'s' if p['steps'] != 1 else ''}"
        + (f", trained on `{wl['data']['dataset']}`" if summary.get("trained") else " (timed, not trained)") + ".",
        f"* **4-bit machine** `{hw['name']}` ({config['hardware_file']}): {hw['array']['rows']}x{hw['array']['cols']} "
        f"{hw['array']['dataflow']} array at {hw['clock_ghz']} GHz, modes "
        + ", ".join(f"{m} ({r} MAC/PE/cycle)" for m, r in hw["array"]["modes"].items())
        + f"; DRAM {hw['dram']['bandwidth_gbps']} Gbit/s; technology {hw['technology']}.",
        f"* **Baseline machine** `{bhw['name']}`: {bhw['array']['rows']}x{bhw['array']['cols']} "
        f"{bhw['array']['dataflow']} array at {bhw['clock_ghz']} GHz, {_mm2(b.get('area_mm2'))}; "
        f"{summary['baseline_hardware_source']}.",
        f"* **Precisions**: policy `{config['precision']['name']}` (weights {config['precision']['fwd_weight']}, "
        f"activations {config['precision']['fwd_activation']}, gradients {config['precision']['grad_bwd_data']}"
        f"{', Two-Phase Rounding' if config['precision']['tpr'] else ''}), baseline "
        f"`{config['baseline_precision']['name']}`.",
        f"* **Timing model**: {p['timing_model']}.",
        "",
        "## Headline",
        "",
        "| | policy | baseline | vs baseline |",
        "|---|---:|---:|---:|",
        f"| precision on machine | {p['precision']} on {p['hardware']} | {b['precision']} on {b['hardware']} | |",
        f"| time | {_si(p['time_s'], 's')} | {_si(b['time_s'], 's')} | speedup **{_ratio(summary['speedup'])}** |",
        f"| cycles | {p['cycles']:,} | {b['cycles']:,} | |",
        f"| energy | {_si(p['energy_pj'] and p['energy_pj'] * 1e-12, 'J')} | "
        f"{_si(b['energy_pj'] and b['energy_pj'] * 1e-12, 'J')} | energy ratio **{_ratio(summary['energy_ratio'])}** |",
        f"| accuracy{_seeds(p)} | {accuracy_text(p) if summary.get('trained') else 'not trained'} | "
        f"{accuracy_text(b) if summary.get('trained') else 'not trained'} | "
        f"delta **{delta_text(summary) if summary.get('trained') else 'n/a'}** |",
        f"| 4-bit share of MACs | {p['four_bit_mac_fraction']:.1%} | {b['four_bit_mac_fraction']:.1%} | |",
        f"| quantization cycles (rescale unit, Hadamard transforms) | {quantization_text(p)} | {quantization_text(b)} | |",
        f"| … of them with the array idle | {quantization_text(p, 'quantization_exposed_cycles')} | "
        f"{quantization_text(b, 'quantization_exposed_cycles')} | |",
        f"| scale bits in DRAM traffic | {scale_bits_text(p)} | {scale_bits_text(b)} | |",
        f"| array | {array_text(p)} | {array_text(b)} | {'iso ' + summary['iso'] if summary.get('iso') else ''} |",
        f"| area | {_mm2(p['area_mm2'])} | {_mm2(b['area_mm2'])} | |",
        f"| average power | {power_text(p.get('average_power_mw'))} | {power_text(b.get('average_power_mw'))} | |",
        f"| array utilization | {p['utilization']:.1%} | {b['utilization']:.1%} | |",
        f"| memory stall (share of op time) | {stall_text(p)} | {stall_text(b)} | |",
        "",
    ]
    if summary.get("trained"):
        lines += [
            "Accuracy is the final epoch's test accuracy, mean ± sample standard deviation over the "
            "seeds; the delta is the mean ± std of the per-seed differences.",
            "",
        ]
    if summary.get("notes"):
        lines += ["### Notes", ""] + [f"* {note}" for note in summary["notes"]] + [""]
    lines += _why_below_peak(summary)
    parts = summary.get("energy_ratio_breakdown")
    if parts:
        lines += [
            "### Energy by component",
            "",
            f"The energy ratio **{_ratio(summary.get('energy_ratio'))}** as a product of one factor per component "
            "(logarithmic-mean decomposition: a factor below 1 is energy the 4-bit run spends beyond the baseline; "
            "the share is the component's part of the energy saved).",
            "",
            "| component | policy | baseline | factor | share of the saving |",
            "|---|---:|---:|---:|---:|",
        ]
        for comp, v in parts.items():
            share = v.get("log_share")
            lines.append(
                f"| {comp} | {_si(v['policy_pj'] * 1e-12, 'J')} | {_si(v['baseline_pj'] * 1e-12, 'J')} | "
                f"{v['factor']:.4g} | {share_text(share)} |"
            )
        lines.append("")
    elif p.get("energy_breakdown_pj") and b.get("energy_breakdown_pj"):
        lines += ["### Energy by component", "", "| component | policy | baseline |", "|---|---:|---:|"]
        for comp in p["energy_breakdown_pj"]:
            lines.append(
                f"| {comp} | {_si(p['energy_breakdown_pj'][comp] * 1e-12, 'J')} | "
                f"{_si(b['energy_breakdown_pj'][comp] * 1e-12, 'J')} |"
            )
        lines.append("")
    ranked = sorted(layers, key=lambda r: -int(r["baseline_cycles"] or 0))[:MAX_LAYER_ROWS]
    lines += [
        "## Per layer and phase",
        "",
        f"The {len(ranked)} costliest of {len(layers)} (layer, phase) pairs by baseline cycles; "
        "all of them are in `layers.csv`, every op in `ops.csv`.",
        "",
        "| layer | phase | policy cycles | baseline cycles | speedup |",
        "|---|---|---:|---:|---:|",
    ]
    for r in ranked:
        speedup = r["speedup"]
        lines.append(
            f"| {r['layer']} | {r['phase']} | {int(r['policy_cycles']):,} | {int(r['baseline_cycles']):,} | "
            f"{float(speedup):.3g}x |" if speedup not in ("", None) else
            f"| {r['layer']} | {r['phase']} | {int(r['policy_cycles']):,} | {int(r['baseline_cycles']):,} | n/a |"
        )
    lines += ["", "## Plots", ""]
    for name in plots:
        lines += [f"### {name.removesuffix('.png').replace('_', ' ')}", "", f"![{name}](plots/{name})", ""]
    return "\n".join(lines)


def _why_below_peak(summary: dict[str, Any]) -> list[str]:
    """The speedup breakdown and the energy-ratio breakdown as two tables (nothing when the
    summary has none)."""
    factors = summary.get("speedup_breakdown")
    if not factors:
        return []
    p, b = summary["runs"]["policy"]["precision"], summary["runs"]["baseline"]["precision"]
    peak = summary.get("peak") or {}
    lines = [
        "### Why the speedup is below peak",
        "",
        f"Peak speedup **{_ratio(summary.get('peak_speedup'))}**: {peak.get('policy_mode', '?')} at "
        f"{peak.get('policy_peak_macs_per_cycle', 0):,} MACs per cycle against {peak.get('baseline_mode', '?')} at "
        f"{peak.get('baseline_peak_macs_per_cycle', 0):,}"
        + (f", clocks {peak['clock_ratio']:.3g}:1" if peak.get("clock_ratio") not in (None, 1, 1.0) else "")
        + f". Each factor below multiplies it, in this order, down to the measured **{_ratio(summary.get('speedup'))}** "
        "(a factor below 1 loses speedup; the share is its part of the whole gap, in log terms).",
        "",
        f"| factor | what | {p} cycles added | {b} cycles added | factor | share of the gap |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, f in factors.items():
        share = f.get("gap_log_share")
        if name == "work":
            added = (f"{f.get('policy_macs', 0):,} MACs", f"{f.get('baseline_macs', 0):,} MACs")
        else:
            added = (cycles_text(f["policy_cycles"]), cycles_text(f["baseline_cycles"]))
        lines.append(
            f"| {FACTOR_LABELS.get(name, name)} | {f.get('description', '')} | {added[0]} | {added[1]} | "
            f"{f['factor']:.4g} | {share_text(share)} |"
        )
    return lines + [""]


def _seeds(run: dict[str, Any]) -> str:
    seeds = run.get("seeds") or []
    return f" ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})" if seeds else ""


def _mm2(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} mm²"


