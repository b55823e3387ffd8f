"""The ``summary.json`` contract (DESIGN.md, Outputs) and the per-op rows of ``ops.csv``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accelsim.sim.engine import unit_busy_cycles
from accelsim.sim.result import OpResult
from accelsim.trace import GemmOp, RescaleOp, VectorOp

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


def run_entry(run: "RunTiming", accuracy: float | None = None) -> dict[str, Any]:
    """One ``RUN`` object of ``summary.json`` (accuracy ``null`` when the workload is not trained)."""
    step = run.step
    machine = run.machine
    busy_cycles = sum(r.macs / r.peak_per_cycle for r in step.ops if r.unit == "array")
    return {
        "precision": run.precision,
        "hardware": machine.name,
        "steps": run.steps,
        "cycles": run.cycles,
        "time_s": run.time_s,
        "energy_pj": run.energy["energy_pj"],
        "energy_breakdown_pj": run.energy["energy_breakdown_pj"],
        "area_mm2": run.energy["area_mm2"],
        "utilization": busy_cycles / step.cycles if step.cycles else 0.0,
        "accuracy": accuracy,
        "cycles_per_step": step.cycles,
        "ideal_compute_cycles_per_step": step.ideal_cycles,
        "fill_drain_cycles_per_step": step.fill_drain_cycles,
        "stall_cycles_per_step": step.stall_cycles,
        "macs_per_step": step.macs,
        "dram_bits_per_step": step.dram_bits,
        "busy_cycles_per_step": unit_busy_cycles(step, machine),
        "clock_ghz": machine.spec.clock_ghz,
        "dram_bits_per_cycle": machine.dram_bits_per_cycle,
        "timing_model": step.model,
    }


def build_summary(
    setup: "Setup", policy: "RunTiming", baseline: "RunTiming", training: "dict[str, TrainResult] | None" = None,
) -> dict[str, Any]:
    acc = {label: training[label].accuracy for label in training} if training else {}
    runs = {"policy": run_entry(policy, acc.get("policy")), "baseline": run_entry(baseline, acc.get("baseline"))}
    speedup = baseline.time_s / policy.time_s if policy.time_s > 0 else None
    e_policy, e_base = runs["policy"]["energy_pj"], runs["baseline"]["energy_pj"]
    return {
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
        "accuracy_delta": acc["policy"] - acc["baseline"] if acc else None,
    }


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
