"""Figures as text, shared by the console table and report.md."""

from __future__ import annotations

from typing import Any


def accuracy_text(run: dict[str, Any]) -> str:
    """``97.9 ± 0.8 %`` (mean ± sample std over the seeds that finished), with diverged seeds."""
    per_seed = run["accuracy_per_seed"] or []
    diverged = sum(a is None for a in per_seed)
    if run["accuracy"] is None:
        return f"diverged ({diverged}/{len(per_seed)} seeds)" if diverged else "n/a"
    text = f"{run['accuracy'] * 100:.1f}"
    if run["accuracy_std"] is not None:
        text += f" ± {run['accuracy_std'] * 100:.1f}"
    text += " %"
    if diverged:
        text += f" ({diverged} of {len(per_seed)} seeds diverged)"
    return text


def delta_text(summary: dict[str, Any]) -> str:
    """The accuracy difference policy − baseline, mean ± std of the paired per-seed differences."""
    delta, std = summary["accuracy_delta"], summary.get("accuracy_delta_std")
    if delta is None:
        return "n/a"
    return f"{delta * 100:+.2f}" + (f" ± {std * 100:.2f}" if std is not None else "") + " pt"


#: How each factor of the speedup breakdown is named for a reader (``accelsim.breakdown`` keys).
FACTOR_LABELS = {
    "work": "GEMM work", "layers_not_in_4_bits": "layers not in 4 bits",
    "mapping": "mapping (edge folds, idle SIMD lanes)", "fill_drain": "fill and drain",
    "memory_stalls": "memory stalls", "rescale": "rescale (quantization)", "vector": "vector unit",
    "idle": "dependency waits",
}


def short_precision(name: str) -> str:
    """A precision's preset name without its overrides (``int4[pact_alpha_init=2.0]`` -> ``int4``)."""
    return name.split("[", 1)[0]


def share_text(share: float | None) -> str:
    """A share as a whole percentage (``n/a`` when undefined; never ``-0%``)."""
    if share is None:
        return "n/a"
    text = f"{share:.0%}"
    return "0%" if text == "-0%" else text


def stall_share(run: dict[str, Any]) -> float | None:
    """The share of its ops' time a run's ops wait for memory (units run in parallel, so stalls are
    compared with the sum of the ops' spans, not with the makespan, which they can exceed)."""
    op_cycles = run.get("op_cycles_per_step")
    return run["stall_cycles_per_step"] / op_cycles if op_cycles else None


def stall_text(run: dict[str, Any]) -> str:
    share = stall_share(run)
    return "n/a" if share is None else f"{share:.1%}"


def quantization_text(run: dict[str, Any], key: str = "quantization_cycles") -> str:
    """Cycles of the run's quantization ops (rescale unit and Hadamard transforms; ``key=
    "quantization_exposed_cycles"``: the part the array sits idle for)."""
    value = run.get(key)
    if value is None:
        return "n/a"
    return cycles_text(value, signed=False) if value else "none"


def scale_bits_text(run: dict[str, Any]) -> str:
    """The share of the run's DRAM traffic that is block and tensor scales."""
    share = run.get("scale_bit_overhead")
    return "n/a" if share is None else ("none" if not share else f"{share:.1%}")


def array_text(run: dict[str, Any]) -> str:
    """``32x32`` (the run's array shape), or n/a for a summary without it."""
    rows, cols = run.get("array_rows"), run.get("array_cols")
    return "n/a" if rows is None or cols is None else f"{rows}x{cols}"


def power_text(mw: float | None) -> str:
    """An average power in the unit that fits it: ``4.64 W``, ``820 mW``."""
    if mw is None:
        return "n/a"
    for unit, scale in (("kW", 1e6), ("W", 1e3), ("mW", 1.0), ("µW", 1e-3)):
        if abs(mw) >= scale:
            return f"{mw / scale:.3g} {unit}"
    return f"{mw * 1e6:.3g} nW"


def cycles_text(n: float, *, signed: bool = True) -> str:
    """``+8.56 M`` style cycle counts (signed, for what a stage adds; ``signed=False``: ``8.56 M``)."""
    sign = ("+" if n >= 0 else "−") if signed else ("" if n >= 0 else "−")
    n = abs(n)
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{sign}{n / scale:.3g} {prefix}"
    return f"{sign}{n:.3g}"


def factor_text(factor: float) -> str:
    return f"{factor:.3g}x"


def breakdown_lines(summary: dict[str, Any]) -> list[str]:
    """Why the speedup is below peak, one line per factor that changes it (factors of exactly 1
    are gathered on the head line): ``  × 0.721  fill and drain   int4 +33.5 M cycles, fp16 +12.1 M``."""
    factors = summary.get("speedup_breakdown")
    speedup, peak = summary.get("speedup"), summary.get("peak_speedup")
    if not factors or speedup is None or peak is None:
        return []
    modes = summary.get("peak") or {}
    head = (f"speedup {speedup:.3g}x = peak {peak:.3g}x ({modes.get('policy_mode', '?')} vs "
            f"{modes.get('baseline_mode', '?')}, MACs per cycle {modes.get('policy_peak_macs_per_cycle', 0):,} vs "
            f"{modes.get('baseline_peak_macs_per_cycle', 0):,})")
    same = [FACTOR_LABELS.get(k, k) for k, f in factors.items() if factor_text(f["factor"]) == "1x"]
    lines = [head + (f"; no effect: {', '.join(same)}" if same else "")]
    width = max(len(FACTOR_LABELS.get(k, k)) for k in factors)
    for name, f in factors.items():
        if factor_text(f["factor"]) == "1x":
            continue
        label = FACTOR_LABELS.get(name, name)
        if name == "work":
            extra = f"GEMM MACs: baseline {f.get('baseline_macs', 0):,}, policy {f.get('policy_macs', 0):,}"
        else:
            extra = f"policy {cycles_text(f['policy_cycles'])} cycles, baseline {cycles_text(f['baseline_cycles'])}"
        lines.append(f"  × {f['factor']:<6.3g} {label:<{width}}  {extra}")
    return lines


def energy_breakdown_line(summary: dict[str, Any]) -> str:
    """``energy ratio 3.17x = mac 1.34x · sram 1.13x · dram 2.09x · ...`` (components of factor 1 left out)."""
    parts = summary.get("energy_ratio_breakdown")
    ratio = summary.get("energy_ratio")
    if not parts or ratio is None:
        return ""
    shown = [f"{c} {factor_text(v['factor'])}" for c, v in parts.items() if factor_text(v["factor"]) != "1x"]
    return f"energy ratio {ratio:.3g}x = " + (" · ".join(shown) if shown else "1x")
