"""What a timing model returns: per-op timings and the action counts the energy model needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from accelsim.trace import Op


@dataclass(frozen=True)
class OpResult:
    """Timing of one op of a step.

    ``compute_cycles`` is the unit's busy time for the op with fill and drain included and memory
    stalls excluded (for a GEMM, SCALE-Sim's compute cycles of the same case);
    ``stall_cycles = total_cycles − compute_cycles`` is time lost waiting for memory.
    ``utilization`` is the op's useful work over its unit's peak (``peak_per_cycle``: MACs per cycle
    of the array in the op's mode, or elements per cycle of the rescale or vector unit) during
    ``total_cycles``.
    """

    index: int
    op: Op
    unit: str
    mode: str
    macs: int
    ideal_cycles: int
    fill_drain_cycles: int
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    utilization: float
    peak_per_cycle: int
    dram_read_bits: int
    dram_write_bits: int
    start_cycle: int = 0


@dataclass(frozen=True)
class StepResult:
    """Timing of one step of a trace on one machine, plus action counts."""

    machine: str
    ops: tuple[OpResult, ...]
    cycles: int
    model: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ideal_cycles(self) -> int:
        return sum(r.ideal_cycles for r in self.ops)

    @property
    def fill_drain_cycles(self) -> int:
        return sum(r.fill_drain_cycles for r in self.ops)

    @property
    def stall_cycles(self) -> int:
        return sum(r.stall_cycles for r in self.ops)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.ops)

    @property
    def dram_bits(self) -> int:
        return sum(r.dram_read_bits + r.dram_write_bits for r in self.ops)
