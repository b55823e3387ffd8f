"""Energy and area: action counts × a technology table. No energy number is computed anywhere else.

The simulators count actions (:class:`~accelsim.sim.result.ActionCounts`); a technology table
(:mod:`accelsim.hw.tech`, ``accelsim/hw/tables/*.yaml``) gives the energy of one action and the area of
one unit. Everything here is a sum of count × entry, so every component is linear in the entries
that price it and in nothing else:

==========  ==================================================================================
component   sum over
==========  ==================================================================================
mac         MACs by mode × ``mac.<mode>``  +  accumulator adds by format × ``accumulate.<format>``
            + block partial sums by scale format × ``scale_multiply.<scale>`` + tensor-scale
            products × ``tensor_scale_multiply`` (block dot products: :mod:`accelsim.hw.blockmac`)
sram        bits read/written per buffer × ``sram.read_bit``/``sram.write_bit`` at that buffer's
            capacity (see :func:`sram_bit_pj`)
dram        bits read × ``dram.read_bit`` + bits written × ``dram.write_bit``
rescale     element passes × ``rescale.element`` + block scales by format × ``block_scale.<scale>``
            + random bits × ``random_bit``
vector      lane operations by format × ``vector.<format>`` + Hadamard butterflies by format ×
            ``butterfly.<format>``
leakage     ``leakage.power_density`` × the machine's area × the time (cycles / clock)
==========  ==================================================================================

Area (:func:`area_mm2`): PEs × the area of one PE (:func:`pe_area_um2`), SRAM KiB ×
``area.sram_kib``, lanes × ``area.rescale_lane`` and ``area.vector_lane``. One PE, by
``array.pe_area``:

============ ========================================================================================
``separate`` one datapath per mode: Σ over the modes of MACs per cycle × ``area.pe.<mode>`` (nothing
             shared; the model of a PE built from independent MAC lanes)
``shared``   a multi-precision PE: its widest datapath (:func:`~accelsim.hw.machine.widest_mode`) at
             its MACs per cycle × ``area.pe.<mode>``, plus, for every other mode, MACs per cycle ×
             ``area.pe_shared.<mode>``, the increment one lane of that mode adds when it reuses the
             wide datapath (sourced in the tables: IBM's 7 nm chip, whose INT4 engine adds about 16 %
             to its FP16/HFP8 engine; a multiple-precision FMA, 17 % over a single-precision one)
============ ========================================================================================

Average power (:func:`average_power_mw`) is a run's energy over its time.

All functions are pure: no printing, no global state. Units in the results: pJ and mm².
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from accelsim.hw.machine import Machine
from accelsim.hw.tech import (
    TechTable,
    check_table_covers,
    load_table,
    load_table_file,
    resolve_technology,
)
from accelsim.numerics.formats import mode_key, parse_mode
from accelsim.sim.result import BUFFERS, ActionCounts, OpResult, StepResult
from accelsim.spec.models import HardwareSpec

__all__ = [
    "COMPONENTS", "TechTable", "load_table", "load_table_file", "resolve_technology", "check_table_covers",
    "sram_bit_pj", "leakage_power_mw", "energy_breakdown_pj", "op_energy_pj", "ops_energy_pj",
    "area_mm2", "pe_area_um2", "average_power_mw", "area_measure", "power_measure", "energy_summary",
    "machine_table",
]

#: The energy components, in report order (the keys of :func:`energy_breakdown_pj`).
COMPONENTS = ("mac", "sram", "dram", "rescale", "vector", "leakage")
#: pJ per (mW × s): 1 mW for 1 s is 1 mJ = 1e9 pJ.
_PJ_PER_MW_S = 1e9
_UM2_PER_MM2 = 1e6


def machine_table(machine: Machine) -> TechTable:
    """The table a machine's ``technology:`` names, looked up next to its hardware file."""
    return load_table(machine.spec.technology, machine.file or "hw.yaml")


# ------------------------------------------------------------------------------------------------
# prices


def sram_bit_pj(table: TechTable, kind: str, capacity_kib: float) -> float:
    """Energy of one SRAM bit access (``kind``: ``sram.read_bit`` or ``sram.write_bit``) in a buffer
    of ``capacity_kib``.

    Between two anchors the energy is affine in √capacity (wire length across a square array grows as
    the square root of its capacity; Horowitz's 8 KB → 32 KB points follow √capacity exactly and
    32 KB → 1 MB within 13 %). Below the smallest anchor the smallest anchor's value is used (no
    extrapolation toward zero); above the largest, the last segment is extended. The result is a
    fixed weighted sum of the anchors, so it is linear in every anchor.
    """
    anchors = table.anchors(kind)
    if not anchors:
        table.value(kind, None, f"{kind}.<N>KiB")  # raises, naming the entry and the table
    if len(anchors) == 1 or capacity_kib <= anchors[0][0]:
        return anchors[0][1]
    # the segment holding the capacity, or the last one beyond the largest anchor
    i = next((i for i in range(1, len(anchors)) if capacity_kib <= anchors[i][0]), len(anchors) - 1)
    (c0, e0), (c1, e1) = anchors[i - 1], anchors[i]
    t = (math.sqrt(capacity_kib) - math.sqrt(c0)) / (math.sqrt(c1) - math.sqrt(c0))
    return (1.0 - t) * e0 + t * e1


def _mode_pj(table: TechTable, kind: str, mode_name: str) -> float:
    a, b = parse_mode(mode_name)
    return table.value(kind, mode_key(a, b), f"{kind}.{mode_name}")


def _keyed(table: TechTable, kind: str, counted: Any) -> list[float]:
    """count × entry for every key of a counter priced by ``<kind>.<key>`` entries."""
    return [n * table.value(kind, key, f"{kind}.{key}") for key, n in counted.items() if n]


def leakage_power_mw(machine: Machine, table: TechTable) -> float:
    """Static power of the whole machine, mW (power density × area)."""
    return table.value("leakage.power_density") * area_mm2(machine, table)["total"]


# ------------------------------------------------------------------------------------------------
# energy


def energy_breakdown_pj(counts: ActionCounts, machine: Machine, table: TechTable) -> dict[str, float]:
    """Energy of ``counts`` on ``machine``, pJ, by component (exactly :data:`COMPONENTS`).

    ``counts.cycles`` is the time leakage is charged for.
    """
    mac = math.fsum(
        [n * _mode_pj(table, "mac", mode) for mode, n in counts.macs.items() if n]
        + [n * table.value("accumulate", fmt, f"accumulate.{fmt}") for fmt, n in counts.accumulations.items() if n]
        + _keyed(table, "scale_multiply", counts.block_partial_sums)
        + ([counts.tensor_scale_products * table.value("tensor_scale_multiply")] if counts.tensor_scale_products else [])
    )
    sram_terms = []
    for buffer in BUFFERS:
        kib = getattr(machine.spec.sram, f"{buffer}_kib")
        reads, writes = counts.sram_read_bits.get(buffer, 0), counts.sram_write_bits.get(buffer, 0)
        if reads:
            sram_terms.append(reads * sram_bit_pj(table, "sram.read_bit", kib))
        if writes:
            sram_terms.append(writes * sram_bit_pj(table, "sram.write_bit", kib))
    unknown = (set(counts.sram_read_bits) | set(counts.sram_write_bits)) - set(BUFFERS)
    if unknown:
        raise ValueError(f"SRAM bits counted for unknown buffers {sorted(unknown)}; known: {BUFFERS}")
    dram = math.fsum([
        counts.dram_read_bits * table.value("dram.read_bit") if counts.dram_read_bits else 0.0,
        counts.dram_write_bits * table.value("dram.write_bit") if counts.dram_write_bits else 0.0,
    ])
    rescale = math.fsum(
        ([counts.rescale_elements * table.value("rescale.element")] if counts.rescale_elements else [])
        + _keyed(table, "block_scale", counts.block_scales)
        + ([counts.random_bits * table.value("random_bit")] if counts.random_bits else [])
    )
    vector = math.fsum(_keyed(table, "vector", counts.vector_elements) + _keyed(table, "butterfly", counts.butterflies))
    seconds = counts.cycles / machine.clock_hz
    leakage = leakage_power_mw(machine, table) * seconds * _PJ_PER_MW_S if counts.cycles else 0.0
    return {
        "mac": mac, "sram": math.fsum(sram_terms), "dram": dram,
        "rescale": float(rescale), "vector": vector, "leakage": leakage,
    }


def op_energy_pj(op_result: OpResult, machine: Machine, table: TechTable) -> float:
    """Energy of one op (``ops.csv`` ``energy_pj``), from ``op_result.counts``.

    The op's leakage is the machine's static power over the op's own cycles (``counts.cycles``, its
    ``total_cycles``). When ops do not overlap (closed-form timing) the ops' cycles add up to the
    step's and the per-op energies add up to the step's total; with overlapping ops use
    :func:`ops_energy_pj`, which shares the step's leakage by cycles.
    """
    return math.fsum(energy_breakdown_pj(op_result.counts, machine, table).values())


def ops_energy_pj(step: StepResult, machine: Machine, table: TechTable) -> list[float]:
    """Energy of every op of ``step``, pJ, in order; they add up to the step's total.

    Dynamic energy from each op's counts; the step's leakage (over ``step.counts.cycles``) is shared
    among the ops in proportion to their cycles.
    """
    out = []
    total_cycles = sum(r.counts.cycles for r in step.ops)
    step_leakage = leakage_power_mw(machine, table) * step.counts.cycles / machine.clock_hz * _PJ_PER_MW_S
    for r in step.ops:
        parts = energy_breakdown_pj(r.counts, machine, table)
        share = r.counts.cycles / total_cycles if total_cycles else 0.0
        parts["leakage"] = step_leakage * share
        out.append(math.fsum(parts.values()))
    return out


# ------------------------------------------------------------------------------------------------
# area


def pe_area_um2(machine: Machine, table: TechTable, model: str | None = None) -> dict[str, Any]:
    """The area of one PE, µm², under ``model`` (``separate`` or ``shared``; default the machine's
    ``array.pe_area``), with what each mode contributes.

    Returns ``{"model", "widest_mode", "per_mode_um2": {mode: µm²}, "total_um2"}``; ``widest_mode``
    is the datapath a shared PE is built around (``None`` for ``separate``).
    """
    model = model or machine.spec.array.pe_area
    if model not in ("separate", "shared"):
        raise ValueError(f"unknown PE area model {model!r}; allowed: separate, shared")
    modes = machine.spec.array.modes
    widest = machine.widest_mode if model == "shared" else None
    per_mode = {
        mode: rate * _mode_pj(table, "area.pe" if widest in (None, mode) else "area.pe_shared", mode)
        for mode, rate in modes.items()
    }
    return {"model": model, "widest_mode": widest, "per_mode_um2": per_mode, "total_um2": math.fsum(per_mode.values())}


def area_mm2(machine: Machine, table: TechTable) -> dict[str, float]:
    """Area of the machine's units, mm²: ``pe_array``, ``sram``, ``rescale``, ``vector``, ``total``."""
    pe_um2 = pe_area_um2(machine, table)["total_um2"]
    sram_kib = sum(getattr(machine.spec.sram, f"{b}_kib") for b in BUFFERS)
    parts = {
        "pe_array": machine.rows * machine.cols * pe_um2 / _UM2_PER_MM2,
        "sram": sram_kib * table.value("area.sram_kib") / _UM2_PER_MM2,
        "rescale": machine.spec.rescale.lanes * table.value("area.rescale_lane") / _UM2_PER_MM2,
        "vector": machine.spec.vector.lanes * table.value("area.vector_lane") / _UM2_PER_MM2,
    }
    parts["total"] = math.fsum(parts.values())
    return parts


def average_power_mw(counts: ActionCounts, machine: Machine, table: TechTable) -> float:
    """Average power of ``counts`` on ``machine``, mW: their energy (leakage included) over their
    time, ``counts.cycles`` at the machine's clock (for a run: the counts of every step)."""
    if counts.cycles <= 0:
        raise ValueError("average power needs a run of at least one cycle")
    seconds = counts.cycles / machine.clock_hz
    return math.fsum(energy_breakdown_pj(counts, machine, table).values()) / (seconds * _PJ_PER_MW_S)


def area_measure(table: TechTable, file: str = "") -> Callable[[HardwareSpec], float]:
    """``spec -> total area, mm²`` on ``table``: the measure :func:`accelsim.hw.iso.iso_resize` matches
    for an iso-area baseline."""
    return lambda spec: area_mm2(Machine(spec, file), table)["total"]


def power_measure(traces: Sequence[Any], table: TechTable, file: str = "") -> Callable[[HardwareSpec], float]:
    """``spec -> average power, mW`` of ``traces`` (each a :class:`~accelsim.trace.Trace` run
    ``trace.steps`` times, the event model) on that machine with ``table``: the measure
    :func:`accelsim.hw.iso.iso_resize` matches for an iso-power baseline."""
    from accelsim.sim.engine import simulate_step  # the event model, only when power is measured

    def measure(spec: HardwareSpec) -> float:
        machine = Machine(spec, file)
        total = ActionCounts()
        for trace in traces:
            total.add(simulate_step(trace, machine).counts.scaled(trace.steps))
        return average_power_mw(total, machine, table)

    return measure


# ------------------------------------------------------------------------------------------------
# summary.json


def energy_summary(step_counts_total: ActionCounts, machine: Machine, table: TechTable) -> dict[str, Any]:
    """The energy fields of one ``RUN`` of ``summary.json``.

    ``step_counts_total``: the counts of the whole run (every step; ``cycles`` the run's length).
    Returns ``{"energy_pj": float, "energy_breakdown_pj": {component: pJ}, "area_mm2": float}``.
    """
    breakdown = energy_breakdown_pj(step_counts_total, machine, table)
    return {
        "energy_pj": math.fsum(breakdown.values()),
        "energy_breakdown_pj": breakdown,
        "area_mm2": area_mm2(machine, table)["total"],
    }
