"""Why the speedup is below peak, and where the energy ratio comes from: exact breakdowns.

Both functions take the two runs of a comparison as they were simulated — each a machine and its
steps, ``[(StepResult, number of steps), ...]`` (a run can have two step shapes: its full batches
and a last partial batch) — and return plain, JSON-ready dicts. Pure: no printing, no state; this
module sits beside :mod:`accelsim.energy` (it imports ``hw``, ``sim`` and ``energy``, nothing above).

Peak speedup
------------
``peak_speedup`` is the ratio of the two machines' peak MACs per second in the modes the comparison
is about (:func:`comparison_modes`): the policy machine's **4-bit mode** (among its modes whose two
operands have at most 4 bits, the one with the most MACs per PE per cycle; the first listed among
equals; if it has none, its fastest mode) against the baseline machine's **16-bit mode** (among its
modes whose wider operand has 16 bits, the fastest; if none, its fastest mode)::

    peak_speedup = (R·C·r·f)_policy / (R·C·r·f)_baseline

(PEs, MACs per PE per cycle in that mode, clock). Different clocks are inside it (``peak.clock_ratio``).

Where a run's cycles go
-----------------------
The units run in parallel (a step's makespan is not the sum of its ops), so the attribution follows
the **array**: every cycle of a step is either a cycle the array works on a GEMM (its ops never
overlap: one unit, one op at a time) or a cycle it is idle. Array cycles are split by what the GEMM
spends them on; idle cycles by which other unit is busy while the array waits (:func:`step_cycles`).
Summed over the run (each step shape times its number of steps), the cumulative stages are:

========================= =========================================================================
stage                     cycles of the run up to and including this stage
========================= =========================================================================
``peak``                  Σ GEMM MACs / (R·C·r of the comparison mode): every MAC at the peak rate
``layers_not_in_4_bits``  Σ GEMM MACs / (R·C·r of the GEMM's own mode): GEMMs in slower modes
                          (the first and last layer in FP16, HFP8 layers, ...) run at their own rate
``mapping``               Σ folds·streamed cycles: edge folds padded to the whole array and SIMD
                          lanes left idle by the shortened dimension
``fill_drain``            Σ GEMM compute cycles (fill and drain of every fold added)
``memory_stalls``         Σ GEMM total cycles (the array waiting for DRAM or a buffer half during
                          its own ops)
``rescale``               + cycles the array is idle while only quantization work runs (the
                          rescale unit's reductions, block scales and requantization, and the
                          Hadamard transforms of block-scaled recipes on the vector unit), and half
                          of those while quantization and other vector work both run
``vector``                + cycles the array is idle while only the vector unit works, and the other
                          half of those while both work
``idle``                  + cycles the array is idle while neither works (waits with nothing
                          running); the total is the run's makespan, its measured cycles
========================= =========================================================================

A unit's busy time includes its own memory stalls, so the array waiting for a rescale op that waits
for DRAM counts under ``rescale``. Work on other units hidden under array work costs nothing here.

The speedup breakdown
---------------------
With ``C_i`` those cumulative cycles (policy ``p``, baseline ``b``; ``C_0`` = ``peak``, ``C_7`` =
the run's cycles) and ``MACs`` the GEMM MACs of each run::

    speedup = (C_7,b / f_b) / (C_7,p / f_p)
            = peak_speedup · work · Π_{i=1..7} factor_i,
    work     = MACs_b / MACs_p                     (1 when both runs do the same GEMMs)
    factor_i = (C_i,b / C_{i−1},b) / (C_i,p / C_{i−1},p)

exactly (the product telescopes). ``factor_i < 1`` is speedup lost at that stage (the policy's time
grows more than the baseline's), ``> 1`` speedup gained. Each factor carries the cycles it adds on
each machine and the cumulative cycles, and ``gap_log_share = ln factor_i / ln(speedup /
peak_speedup)`` (these shares sum to 1; null when the speedup equals the peak). The order of the
stages is part of the definition (a chain attribution): a stage's factor is measured against the
time both machines have already accumulated. When either run has no GEMM MACs there is no peak to
start from and ``speedup_breakdown`` is null.

The energy breakdown
--------------------
By component (``mac, sram, dram, rescale, vector, leakage``) with the logarithmic-mean (LMDI)
decomposition, exact and independent of order: with ``ΔE_c = E_b,c − E_p,c`` and ``L = (E_b − E_p) /
ln(E_b / E_p)`` (``L = E_b`` when they are equal)::

    energy_ratio = E_b / E_p = Π_c factor_c,    factor_c = exp(ΔE_c / L),
    log_share_c  = ln factor_c / ln energy_ratio = ΔE_c / (E_b − E_p)

so a component's log share is its share of the energy saved (null when nothing is saved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from accelsim.energy import COMPONENTS, energy_breakdown_pj
from accelsim.hw.machine import Machine, Mode, operand_bits
from accelsim.hw.tech import TechTable
from accelsim.numerics.formats import parse_mode
from accelsim.sim.result import ActionCounts, OpResult, StepResult
from accelsim.trace import VectorOp

__all__ = [
    "STAGES", "RunSteps", "comparison_modes", "peak_speedup", "step_cycles", "run_cycles",
    "speedup_breakdown", "energy_ratio_breakdown", "run_energy_breakdown_pj", "breakdown",
    "is_quantization_op", "quantization_stats",
]

#: The cumulative stages of a run's cycles, in chain order (``peak`` first; see the module doc).
STAGES = ("peak", "layers_not_in_4_bits", "mapping", "fill_drain", "memory_stalls", "rescale", "vector", "idle")

_DESCRIPTIONS = {
    "work": "GEMM MACs of the baseline run over the policy run's (1 when both do the same GEMMs)",
    "layers_not_in_4_bits": "GEMMs in modes slower than the comparison mode (layers kept in 8 or 16 bits)",
    "mapping": "edge folds padded to the whole array and SIMD lanes the shortened dimension leaves idle",
    "fill_drain": "fill and drain of every fold (the systolic skew, and ws/is preloads)",
    "memory_stalls": "the array waiting for DRAM or a free buffer half during its own GEMMs",
    "rescale": "the array idle while quantization work runs (the rescale unit's reductions, block scales "
               "and requantization; Hadamard transforms on the vector unit)",
    "vector": "the array idle while the vector unit works (activations, normalization, loss, update)",
    "idle": "the array idle while no other unit works (dependency waits)",
}


@dataclass(frozen=True)
class RunSteps:
    """One run of a comparison: the machine and its distinct steps with how often each runs."""

    machine: Machine
    steps: Sequence[tuple[StepResult, int]]

    @property
    def cycles(self) -> int:
        return sum(s.cycles * n for s, n in self.steps)

    @property
    def time_s(self) -> float:
        return self.cycles / self.machine.clock_hz


# ------------------------------------------------------------------------------------------------
# peak


def _fastest(machine: Machine, names: list[str]) -> Mode:
    modes = {m.name: m for m in machine.modes().values()}
    best = max(modes[n].macs_per_pe_per_cycle for n in names)
    return next(modes[n] for n in names if modes[n].macs_per_pe_per_cycle == best)


def _widths(name: str) -> tuple[int, int]:
    a, b = (operand_bits(x) for x in parse_mode(name))
    return max(a, b), min(a, b)


def comparison_modes(policy: Machine, baseline: Machine) -> tuple[Mode, Mode]:
    """The policy machine's 4-bit mode and the baseline machine's 16-bit mode (module docstring)."""
    p_names = list(policy.spec.array.modes)
    b_names = list(baseline.spec.array.modes)
    four = [n for n in p_names if _widths(n)[0] <= 4]
    sixteen = [n for n in b_names if _widths(n)[0] == 16]
    return _fastest(policy, four or p_names), _fastest(baseline, sixteen or b_names)


def peak_speedup(policy: Machine, baseline: Machine) -> dict[str, Any]:
    """``{"peak_speedup", "policy_mode", "baseline_mode", "policy_peak_macs_per_cycle",
    "baseline_peak_macs_per_cycle", "clock_ratio"}``."""
    pm, bm = comparison_modes(policy, baseline)
    p_peak, b_peak = policy.peak_macs_per_cycle(pm), baseline.peak_macs_per_cycle(bm)
    return {
        "peak_speedup": (p_peak * policy.clock_hz) / (b_peak * baseline.clock_hz),
        "policy_mode": pm.name, "baseline_mode": bm.name,
        "policy_peak_macs_per_cycle": p_peak, "baseline_peak_macs_per_cycle": b_peak,
        "clock_ratio": policy.clock_hz / baseline.clock_hz,
    }


# ------------------------------------------------------------------------------------------------
# cycles


def is_quantization_op(r: OpResult) -> bool:
    """Quantization work: the rescale unit's ops, and the Hadamard transforms block-scaled recipes
    run on the vector unit before quantizing (``vector`` op ``hadamard``)."""
    return r.unit == "rescale" or (isinstance(r.op, VectorOp) and r.op.op == "hadamard")


def _idle_split(step: StepResult) -> dict[str, float]:
    """Cycles of the step in which the array is idle, by which other units are busy then."""
    edges: list[tuple[int, int, str]] = []
    for r in step.ops:
        if r.total_cycles > 0:
            unit = "rescale" if is_quantization_op(r) else r.unit
            edges.append((r.start_cycle, 1, unit))
            edges.append((r.start_cycle + r.total_cycles, -1, unit))
    edges.sort(key=lambda e: e[0])
    active = {"array": 0, "rescale": 0, "vector": 0}
    out = {"rescale": 0.0, "vector": 0.0, "idle": 0.0}
    t_prev, i = 0, 0
    while i <= len(edges):
        t = edges[i][0] if i < len(edges) else step.cycles
        span = t - t_prev
        if span > 0 and not active["array"]:
            if active["rescale"] and active["vector"]:
                out["rescale"] += span / 2
                out["vector"] += span / 2
            elif active["rescale"]:
                out["rescale"] += span
            elif active["vector"]:
                out["vector"] += span
            else:
                out["idle"] += span
        if i == len(edges):
            break
        while i < len(edges) and edges[i][0] == t:
            active[edges[i][2]] = active.get(edges[i][2], 0) + edges[i][1]
            i += 1
        t_prev = t
    return out


def step_cycles(step: StepResult, machine: Machine, comparison: Mode) -> dict[str, float]:
    """The cumulative stages (:data:`STAGES`) of one step, in cycles, plus ``macs`` (GEMM MACs):
    ``idle`` is the step's makespan."""
    modes = {m.name: m for m in machine.modes().values()}
    pes = machine.rows * machine.cols
    gemms = [r for r in step.ops if r.unit == "array"]
    macs = sum(r.macs for r in gemms)
    ideal = math.fsum(r.macs / (pes * modes[r.mode].macs_per_pe_per_cycle) for r in gemms)
    padded = sum(r.compute_cycles - r.fill_drain_cycles for r in gemms)
    compute = sum(r.compute_cycles for r in gemms)
    busy = sum(r.total_cycles for r in gemms)
    idle = _idle_split(step)
    rescale = busy + idle["rescale"]
    vector = rescale + idle["vector"]
    total = vector + idle["idle"]
    if total != step.cycles:  # pragma: no cover - the split covers [0, makespan) exactly
        raise AssertionError(f"cycle attribution {total} != makespan {step.cycles}")
    return {
        "macs": macs, "peak": macs / (pes * comparison.macs_per_pe_per_cycle),
        "layers_not_in_4_bits": ideal, "mapping": padded, "fill_drain": compute, "memory_stalls": busy,
        "rescale": rescale, "vector": vector, "idle": step.cycles,
    }


def run_cycles(run: RunSteps, comparison: Mode) -> dict[str, float]:
    """:func:`step_cycles` summed over the run's steps (each shape times its number of steps)."""
    per = [(step_cycles(s, run.machine, comparison), n) for s, n in run.steps]
    out: dict[str, float] = {"macs": sum(c["macs"] * n for c, n in per)}
    for stage in STAGES:
        values = [c[stage] * n for c, n in per]
        out[stage] = sum(values) if all(isinstance(v, int) for v in values) else math.fsum(values)
    return out


def quantization_stats(run: RunSteps) -> dict[str, Any]:
    """What quantization costs a run, summed over its steps (each shape times its number of steps):

    ``quantization_cycles``: cycles the quantization ops ran (:func:`is_quantization_op`: the rescale
    unit's ops and the Hadamard transforms), their memory stalls included; work that overlaps other
    units counts in full here. ``quantization_exposed_cycles``: the part of them the array sat idle
    for (the ``rescale`` stage of :func:`speedup_breakdown`). ``scale_bit_overhead``: the share of
    the run's DRAM bits that are block and tensor scales (MXFP4 operands: 0.25 of 4.25 bits; 0
    without block formats). ``dram_scale_bits``: those bits.
    """
    busy = scale = dram = 0
    exposed = 0.0
    for step, n in run.steps:
        busy += n * sum(r.total_cycles for r in step.ops if is_quantization_op(r))
        exposed += n * _idle_split(step)["rescale"]
        scale += n * step.counts.dram_scale_bits
        dram += n * (step.counts.dram_read_bits + step.counts.dram_write_bits)
    return {
        "quantization_cycles": busy, "quantization_exposed_cycles": exposed,
        "scale_bit_overhead": scale / dram if dram else 0.0, "dram_scale_bits": scale,
    }


def speedup_breakdown(policy: RunSteps, baseline: RunSteps) -> dict[str, Any]:
    """The peak speedup and the factors from it down to the measured speedup (module docstring).

    Returns ``{"speedup", "peak_speedup", "peak": {...peak_speedup() fields}, "speedup_breakdown":
    {name: {"factor", "gap_log_share", "policy_cycles", "baseline_cycles",
    "policy_cumulative_cycles", "baseline_cumulative_cycles", "description"}} | None,
    ...}``; ``work`` carries the peak-rate cycles of each run and ``policy_macs``/``baseline_macs``;
    the other factors, :data:`STAGES` after ``peak`` in chain order, the cycles each adds. Also
    ``"cycles": {"policy": {stage: cycles, "macs"}, "baseline": {...}}`` (cumulative).
    """
    peak = peak_speedup(policy.machine, baseline.machine)
    pm, bm = comparison_modes(policy.machine, baseline.machine)
    cp, cb = run_cycles(policy, pm), run_cycles(baseline, bm)
    speedup = baseline.time_s / policy.time_s
    out: dict[str, Any] = {
        "speedup": speedup, "peak_speedup": peak["peak_speedup"],
        "peak": {k: v for k, v in peak.items() if k != "peak_speedup"},
        "speedup_breakdown": None,
        "cycles": {"policy": cp, "baseline": cb},
    }
    if not cp["macs"] or not cb["macs"]:
        return out
    gap = math.log(speedup / peak["peak_speedup"])
    factors: dict[str, dict[str, Any]] = {}

    def add(name: str, factor: float, dp: float, db: float, p_cum: float, b_cum: float) -> None:
        factors[name] = {
            "factor": factor, "gap_log_share": math.log(factor) / gap + 0.0 if gap else None,
            "policy_cycles": dp, "baseline_cycles": db,
            "policy_cumulative_cycles": p_cum, "baseline_cumulative_cycles": b_cum,
            "description": _DESCRIPTIONS[name],
        }

    add("work", cb["macs"] / cp["macs"], cp["peak"], cb["peak"], cp["peak"], cb["peak"])
    factors["work"].update(policy_macs=cp["macs"], baseline_macs=cb["macs"])
    for prev, stage in zip(STAGES, STAGES[1:]):
        factor = (cb[stage] / cb[prev]) / (cp[stage] / cp[prev])
        add(stage, factor, cp[stage] - cp[prev], cb[stage] - cb[prev], cp[stage], cb[stage])
    out["speedup_breakdown"] = factors
    return out


# ------------------------------------------------------------------------------------------------
# energy


def _log_mean(a: float, b: float) -> float:
    if a == b:
        return a
    return (a - b) / math.log1p((a - b) / b)


def energy_ratio_breakdown(policy_pj: Mapping[str, float], baseline_pj: Mapping[str, float]) -> dict[str, Any]:
    """The energy ratio (baseline / policy) by component, LMDI factors (module docstring).

    Takes two ``energy_breakdown_pj`` dicts (:data:`~accelsim.energy.COMPONENTS`); returns
    ``{"energy_ratio", "energy_ratio_breakdown": {component: {"factor", "log_share", "policy_pj",
    "baseline_pj"}}}``.
    """
    missing = [c for c in COMPONENTS if c not in policy_pj or c not in baseline_pj]
    if missing:
        raise ValueError(f"energy breakdowns lack components {missing}; need {list(COMPONENTS)}")
    ep = math.fsum(policy_pj[c] for c in COMPONENTS)
    eb = math.fsum(baseline_pj[c] for c in COMPONENTS)
    if ep <= 0 or eb <= 0:
        raise ValueError(f"energy ratio of non-positive energies: policy {ep} pJ, baseline {eb} pJ")
    mean = _log_mean(eb, ep)
    saved = eb - ep
    parts = {}
    for c in COMPONENTS:
        delta = baseline_pj[c] - policy_pj[c]
        parts[c] = {
            "factor": math.exp(delta / mean), "log_share": delta / saved if saved else None,
            "policy_pj": float(policy_pj[c]), "baseline_pj": float(baseline_pj[c]),
        }
    return {"energy_ratio": eb / ep, "energy_ratio_breakdown": parts}


def run_energy_breakdown_pj(run: RunSteps, table: TechTable) -> dict[str, float]:
    """The run's energy by component, pJ (every step shape's counts times its number of steps)."""
    total = ActionCounts()
    for step, n in run.steps:
        total.add(step.counts.scaled(n))
    return energy_breakdown_pj(total, run.machine, table)


def breakdown(
    policy: RunSteps, baseline: RunSteps, policy_table: TechTable | None = None,
    baseline_table: TechTable | None = None,
) -> dict[str, Any]:
    """:func:`speedup_breakdown`, plus :func:`energy_ratio_breakdown` of the two runs when both
    tables are given."""
    out = speedup_breakdown(policy, baseline)
    if policy_table is not None and baseline_table is not None:
        out.update(energy_ratio_breakdown(
            run_energy_breakdown_pj(policy, policy_table), run_energy_breakdown_pj(baseline, baseline_table),
        ))
    return out
