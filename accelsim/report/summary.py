"""The ``summary.json`` contract (DESIGN.md, Outputs) and the per-op rows of ``ops.csv``."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from accelsim import breakdown as why
from accelsim.numerics.formats import element_bits
from accelsim.report.text import FACTOR_LABELS, short_precision, stall_share

from accelsim.sim.engine import unit_busy_cycles
from accelsim.sim.result import OpResult
from accelsim.trace import GemmOp, RescaleOp, Trace, VectorOp

if TYPE_CHECKING:
    from accelsim.api import RunTiming, Setup
    from accelsim.nn.train import TrainResult

SUMMARY_VERSION = 1

OPS_COLUMNS = (
    "run", "index", "layer", "phase", "kind", "op", "m", "n", "k", "count", "elements",
    "a_format", "b_format", "out_format", "unit", "mode", "macs", "ideal_cycles",
    "fill_drain_cycles", "compute_cycles", "stall_cycles", "total_cycles", "start_cycle",
    "utilization", "dram_read_bits", "dram_write_bits", "energy_pj",
)


def accuracy_stats(results: "list[TrainResult]") -> dict[str, Any]:
    """Accuracy over seeds: the mean and the sample standard deviation (``n − 1``; ``None`` for a
    single seed) of the final epoch's test accuracy over the seeds that finished, and the value of
    every seed (``None`` where it diverged)."""
    per_seed = [r.accuracy for r in results]
    done = [a for a in per_seed if a is not None]
    return {
        "accuracy": statistics.fmean(done) if done else None,
        "accuracy_std": statistics.stdev(done) if len(done) > 1 else None,
        "accuracy_per_seed": per_seed,
        "seeds": [r.seed for r in results],
        "diverged": [{"seed": r.seed, **r.diverged} for r in results if r.diverged],
    }


def four_bit_mac_fraction(trace: Trace) -> float:
    """Share of a step's MACs whose two operands are 4-bit formats (run in a 4-bit array mode)."""
    total = trace.macs()
    four = sum(op.macs for op in trace.gemms() if element_bits(op.a_format) == 4 and element_bits(op.b_format) == 4)
    return four / total if total else 0.0


def run_steps(run: "RunTiming") -> why.RunSteps:
    """Every step shape of a run with its number of steps (a last partial batch included)."""
    return why.RunSteps(run.machine, list(run.step_runs) or [(run.step, run.steps)])


def run_entry(run: "RunTiming", training: "list[TrainResult] | None" = None) -> dict[str, Any]:
    """One ``RUN`` object of ``summary.json`` (accuracy fields ``null`` when the workload is not trained)."""
    step = run.step
    machine = run.machine
    busy_cycles = sum(r.macs / r.peak_per_cycle for r in step.ops if r.unit == "array")
    stats = accuracy_stats(training) if training else {
        "accuracy": None, "accuracy_std": None, "accuracy_per_seed": None, "seeds": None, "diverged": [],
    }
    return {
        "precision": run.precision,
        "hardware": machine.name,
        "steps": run.steps,
        "cycles": run.cycles,
        "time_s": run.time_s,
        "energy_pj": run.energy["energy_pj"],
        "energy_breakdown_pj": run.energy["energy_breakdown_pj"],
        "area_mm2": run.energy["area_mm2"],
        "average_power_mw": run.average_power_mw,
        "array_rows": machine.rows,
        "array_cols": machine.cols,
        "utilization": busy_cycles / step.cycles if step.cycles else 0.0,
        **stats,
        "four_bit_mac_fraction": four_bit_mac_fraction(run.trace),
        **why.quantization_stats(run_steps(run)),
        "cycles_per_step": step.cycles,
        "ideal_compute_cycles_per_step": step.ideal_cycles,
        "fill_drain_cycles_per_step": step.fill_drain_cycles,
        "stall_cycles_per_step": step.stall_cycles,
        "op_cycles_per_step": sum(r.total_cycles for r in step.ops),
        "macs_per_step": step.macs,
        "dram_bits_per_step": step.dram_bits,
        "busy_cycles_per_step": unit_busy_cycles(step, machine),
        "clock_ghz": machine.spec.clock_ghz,
        "dram_bits_per_cycle": machine.dram_bits_per_cycle,
        "timing_model": step.model,
    }


def paired_delta(policy: "list[TrainResult]", baseline: "list[TrainResult]") -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the per-seed differences policy − baseline, over the
    seeds where both finished (``None`` where there is nothing to average)."""
    deltas = [p.accuracy - b.accuracy for p, b in zip(policy, baseline, strict=True)
              if p.accuracy is not None and b.accuracy is not None]
    if not deltas:
        return None, None
    return statistics.fmean(deltas), statistics.stdev(deltas) if len(deltas) > 1 else None


def run_notes(setup: "Setup", policy: "RunTiming", training: "dict[str, list[TrainResult]] | None") -> list[str]:
    """Things a reader of the comparison must know: nothing in 4 bits, an option with no effect,
    a diverged training."""
    notes: list[str] = []
    trace = policy.trace
    if four_bit_mac_fraction(trace) == 0.0:
        kept = sorted({op.layer for op in trace.gemms()})
        notes.append(
            f"{policy.precision} runs no GEMM in a 4-bit mode on this network (all of "
            f"{', '.join(kept[:6])}{', ...' if len(kept) > 6 else ''} stay in wider formats, e.g. by the "
            "first/last-layer rule): the comparison measures no 4-bit arithmetic"
        )
    if setup.policy.tpr and not any(
        op.phase == "bwd_data" and op.a_format == "fp4r4" for op in trace.gemms()
    ):
        notes.append(
            "Two-Phase Rounding has no effect here: no layer with radix-4 FP4 gradients has an "
            "activation-gradient (bwd_data) GEMM"
        )
    for label, results in (training or {}).items():
        for r in results:
            if r.diverged:
                notes.append(
                    f"{r.precision} ({label}) diverged with seed {r.seed} at epoch {r.diverged['epoch']}, "
                    f"step {r.diverged['step']}: NaN or infinite values; that seed has no accuracy"
                )
    return notes


def run_breakdown(policy: "RunTiming", baseline: "RunTiming") -> dict[str, Any]:
    """Why the speedup is below peak and where the energy ratio comes from
    (:func:`accelsim.breakdown.breakdown` of every step shape of both runs)."""
    return why.breakdown(run_steps(policy), run_steps(baseline), policy.table, baseline.table)


def build_summary(
    setup: "Setup", policy: "RunTiming", baseline: "RunTiming",
    training: "dict[str, list[TrainResult]] | None" = None,
) -> dict[str, Any]:
    runs = {
        "policy": run_entry(policy, training["policy"] if training else None),
        "baseline": run_entry(baseline, training["baseline"] if training else None),
    }
    speedup = baseline.time_s / policy.time_s if policy.time_s > 0 else None
    e_policy, e_base = runs["policy"]["energy_pj"], runs["baseline"]["energy_pj"]
    delta, delta_std = paired_delta(training["policy"], training["baseline"]) if training else (None, None)
    gaps = run_breakdown(policy, baseline) if policy.cycles and baseline.cycles else {}
    summary = {
        "version": SUMMARY_VERSION,
        "workload": setup.workload.name,
        "hardware": setup.hardware.name,
        "baseline_hardware": setup.baseline_hardware.name,
        "baseline_hardware_source": setup.baseline_source,
        "precision": setup.policy.name,
        "baseline_precision": setup.baseline_policy.name,
        "phases": setup.workload.phases,
        "trained": bool(training),
        "technology": setup.hardware.technology,
        "baseline_technology": setup.baseline_hardware.technology,
        "runs": runs,
        "speedup": speedup,
        "energy_ratio": e_base / e_policy if e_policy else None,
        "accuracy_delta": delta,
        "accuracy_delta_std": delta_std,
        "iso": setup.iso,
        "iso_details": setup.iso_details,
        "peak_speedup": gaps.get("peak_speedup"),
        "peak": gaps.get("peak"),
        "speedup_breakdown": gaps.get("speedup_breakdown"),
        "energy_ratio_breakdown": gaps.get("energy_ratio_breakdown"),
    }
    summary["notes"] = run_notes(setup, policy, training) + surprise_notes(summary, policy, baseline)
    return summary


#: A (layer, phase) whose 4-bit time exceeds its 16-bit time by less than this share is not named
#: (a few per cent come and go with the DRAM traffic of the ops beside it).
SLOWER_MIN_SHARE = 0.05
#: (layer, phase) pairs named in the note on pairs slower in 4 bits.
SLOWER_NAMED = 3
#: A component above this share of a run's energy dominates it.
DOMINANT_ENERGY_SHARE = 0.8
#: A run whose ops wait for memory more than this share of their time is memory-bound.
MEMORY_BOUND_SHARE = 0.5


def _cycles(n: float) -> str:
    for scale, prefix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{prefix}"
    return f"{n:.3g} "


def _worst_factor(summary: dict[str, Any]) -> str:
    factors = summary.get("speedup_breakdown") or {}
    if not factors:
        return ""
    name, f = min(factors.items(), key=lambda kv: kv[1]["factor"])
    return f"; the largest loss: {FACTOR_LABELS.get(name, name)} ({f['factor']:.3g}x)" if f["factor"] < 1 else ""


def _pair_times(run: "RunTiming") -> dict[tuple[str, str], dict[str, float]]:
    """Seconds per (layer, phase) of the main step, and cycles per unit."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    hz = run.machine.clock_hz
    for r in run.step.ops:
        entry = out.setdefault((r.op.layer, r.op.phase), {"time_s": 0.0})
        entry["time_s"] += r.total_cycles / hz
        entry[r.unit] = entry.get(r.unit, 0) + r.total_cycles
    return out


def surprise_notes(summary: dict[str, Any], policy: "RunTiming", baseline: "RunTiming") -> list[str]:
    """What a reader would not expect, said out loud with its numbers (at most four lines): the
    4-bit run slower or costlier than the baseline; (layer, phase) pairs that take longer in 4 bits
    (the costliest named, with the unit that takes the time); a unit other than the array busy
    longer than the array; a component above 80 % of a run's energy; a memory-bound run."""
    notes: list[str] = []
    p_name, b_name = short_precision(policy.precision), short_precision(baseline.precision)
    speedup, ratio = summary.get("speedup"), summary.get("energy_ratio")
    if speedup is not None and speedup < 1:
        notes.append(f"{p_name} is slower than {b_name} here: speedup {speedup:.3g}x{_worst_factor(summary)}")
    if ratio is not None and ratio < 1:
        parts = summary.get("energy_ratio_breakdown") or {}
        worst = min(parts.items(), key=lambda kv: kv[1]["factor"]) if parts else None
        tail = f"; the largest loss: {worst[0]} ({worst[1]['factor']:.3g}x)" if worst and worst[1]["factor"] < 1 else ""
        notes.append(f"{p_name} costs more energy than {b_name} here: energy ratio {ratio:.3g}x{tail}")
    p_pairs, b_pairs = _pair_times(policy), _pair_times(baseline)
    slower = []
    for key, p in p_pairs.items():
        b = b_pairs.get(key)
        if b and b["time_s"] > 0 and p["time_s"] > b["time_s"] * (1 + SLOWER_MIN_SHARE):
            slower.append((p["time_s"] - b["time_s"], key, p, b))
    if slower:
        slower.sort(key=lambda s: (-s[0], s[1]))
        named = []
        for _, (layer, phase), p, b in slower[:SLOWER_NAMED]:
            units = sorted(((u, c) for u, c in p.items() if u != "time_s" and c), key=lambda uc: -uc[1])
            busy = ", ".join(f"{u} {_cycles(c)}cycles" for u, c in units[:2])
            named.append(f"{layer} {phase} at {b['time_s'] / p['time_s']:.2g}x ({busy})")
        notes.append(
            f"{len(slower)} of {len(p_pairs)} (layer, phase) pairs take at least {SLOWER_MIN_SHARE:.0%} longer in {p_name} "
            f"than in {b_name}; "
            f"the costliest: {'; '.join(named)}"
        )
    busy = summary["runs"]["policy"]["busy_cycles_per_step"]
    for unit in ("rescale", "vector"):
        if busy.get(unit, 0) > busy.get("array", 0) > 0 or (busy.get(unit, 0) and not busy.get("array")):
            notes.append(
                f"the {unit} unit is busy longer than the array in {p_name}: {_cycles(busy[unit])}cycles against "
                f"{_cycles(busy.get('array', 0))}cycles per step"
            )
    dominant: dict[str, str] = {}
    for label, run in (("policy", policy), ("baseline", baseline)):
        parts = summary["runs"][label]["energy_breakdown_pj"]
        total = sum(parts.values())
        comp, value = max(parts.items(), key=lambda kv: kv[1])
        if total > 0 and value / total > DOMINANT_ENERGY_SHARE:
            what = "DRAM traffic" if comp == "dram" else f"the {comp} component"
            dominant[label] = f"{what} is {value / total:.0%} of its energy"
        entry = summary["runs"][label]
        share = stall_share(entry)
        if share is not None and share > MEMORY_BOUND_SHARE:
            stalled = f"its ops wait for memory {share:.0%} of their time"
            dominant[label] = f"{dominant[label]}, and {stalled}" if label in dominant else stalled
    for label, run in (("policy", policy), ("baseline", baseline)):
        if label in dominant:  # the 4-bit run's, else the baseline's: one line
            notes.append(f"{short_precision(run.precision)} on {run.machine.name}: {dominant[label]}")
            break
    return notes[:4]


def op_rows(label: str, results: tuple[OpResult, ...], energies: tuple[float, ...]) -> list[dict[str, Any]]:
    rows = []
    for r, energy_pj in zip(results, energies, strict=True):
        op = r.op
        row = {
            "run": label, "index": r.index, "layer": op.layer, "phase": op.phase, "kind": op.kind,
            "op": "", "m": "", "n": "", "k": "", "count": "", "elements": "",
            "a_format": "", "b_format": "", "out_format": "", "unit": r.unit, "mode": r.mode,
            "macs": r.macs, "ideal_cycles": r.ideal_cycles, "fill_drain_cycles": r.fill_drain_cycles,
            "compute_cycles": r.compute_cycles, "stall_cycles": r.stall_cycles,
            "total_cycles": r.total_cycles, "start_cycle": r.start_cycle,
            "utilization": round(r.utilization, 6), "dram_read_bits": r.dram_read_bits,
            "dram_write_bits": r.dram_write_bits, "energy_pj": energy_pj,
        }
        if isinstance(op, GemmOp):
            row.update(op="matmul", m=op.m, n=op.n, k=op.k, count=op.count, elements=op.elements,
                       a_format=op.a_format, b_format=op.b_format, out_format=op.out_format)
        elif isinstance(op, RescaleOp):
            row.update(op=f"rescale_{op.tensor}", elements=op.elements, count=op.copies,
                       a_format=op.in_format, out_format=op.out_format)
        else:
            assert isinstance(op, VectorOp)
            row.update(op=op.op, elements=op.elements, a_format=op.format, out_format=op.format)
        rows.append(row)
    return rows
