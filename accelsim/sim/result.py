"""What a timing model returns: per-op timings and the action counts the energy model needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from accelsim.trace import Op

BUFFERS = ("ifmap", "filter", "ofmap")


@dataclass
class ActionCounts:
    """Everything the energy model prices, for one step (or summed over steps).

    ``macs`` by array mode name; ``accumulations`` the same MACs by accumulator format;
    SRAM bits by buffer (``ifmap``, ``filter``, ``ofmap``); DRAM bits; ``rescale_elements`` the
    element passes through the rescale unit (a reduction pass plus one per output copy);
    ``vector_elements`` element operations of the vector unit by format; ``cycles`` the step's
    length (for leakage).
    """

    macs: Counter = field(default_factory=Counter)
    accumulations: Counter = field(default_factory=Counter)
    sram_read_bits: Counter = field(default_factory=Counter)
    sram_write_bits: Counter = field(default_factory=Counter)
    dram_read_bits: int = 0
    dram_write_bits: int = 0
    rescale_elements: int = 0
    vector_elements: Counter = field(default_factory=Counter)
    cycles: int = 0

    def add(self, other: "ActionCounts") -> None:
        for name in ("macs", "accumulations", "sram_read_bits", "sram_write_bits", "vector_elements"):
            getattr(self, name).update(getattr(other, name))
        self.dram_read_bits += other.dram_read_bits
        self.dram_write_bits += other.dram_write_bits
        self.rescale_elements += other.rescale_elements
        self.cycles += other.cycles

    def scaled(self, factor: int) -> "ActionCounts":
        """These counts repeated ``factor`` times (a step run ``factor`` times)."""
        return ActionCounts(
            macs=Counter({k: v * factor for k, v in self.macs.items()}),
            accumulations=Counter({k: v * factor for k, v in self.accumulations.items()}),
            sram_read_bits=Counter({k: v * factor for k, v in self.sram_read_bits.items()}),
            sram_write_bits=Counter({k: v * factor for k, v in self.sram_write_bits.items()}),
            dram_read_bits=self.dram_read_bits * factor,
            dram_write_bits=self.dram_write_bits * factor,
            rescale_elements=self.rescale_elements * factor,
            vector_elements=Counter({k: v * factor for k, v in self.vector_elements.items()}),
            cycles=self.cycles * factor,
        )

    def as_dict(self) -> dict:
        """Plain, key-sorted data (for JSON)."""
        return {
            "macs": dict(sorted(self.macs.items())),
            "accumulations": dict(sorted(self.accumulations.items())),
            "sram_read_bits": dict(sorted(self.sram_read_bits.items())),
            "sram_write_bits": dict(sorted(self.sram_write_bits.items())),
            "dram_read_bits": self.dram_read_bits,
            "dram_write_bits": self.dram_write_bits,
            "rescale_elements": self.rescale_elements,
            "vector_elements": dict(sorted(self.vector_elements.items())),
            "cycles": self.cycles,
        }


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
    counts: ActionCounts = field(default_factory=ActionCounts, compare=False, repr=False)


@dataclass(frozen=True)
class StepResult:
    """Timing of one step of a trace on one machine, plus action counts."""

    machine: str
    ops: tuple[OpResult, ...]
    cycles: int
    model: str
    counts: ActionCounts = field(default_factory=ActionCounts)

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
