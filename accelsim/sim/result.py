"""What a timing model returns: per-op timings and the action counts the energy model needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from accelsim.trace import Op

BUFFERS = ("ifmap", "filter", "ofmap")


@dataclass
class ActionCounts:
    """Everything the energy model prices, for one step (or summed over steps).

    ``macs`` by array mode name; ``accumulations`` accumulator adds by accumulator format (one per
    MAC; in a block dot product one per MAC in its fixed-point block adder and one per block
    partial sum in the GEMM's accumulator: :mod:`accelsim.hw.blockmac`); SRAM bits by buffer
    (``ifmap``, ``filter``, ``ofmap``); DRAM bits; ``rescale_elements`` the element passes through
    the rescale unit (a reduction pass plus one per output copy); ``vector_elements`` element
    operations of the vector unit by format; ``cycles`` the step's length (for leakage).

    Block-scaled work: ``block_partial_sums`` the block-scale multiplies of block dot products, by
    scale format; ``tensor_scale_products`` the per-tensor-scale multiplies (NVFP4: one per output
    element); ``block_scales`` block scales computed by the rescale unit, by scale format;
    ``random_bits`` random bits drawn for stochastic rounding; ``butterflies`` the add/subtracts of
    Hadamard transforms on the vector unit, by format (instead of ``vector_elements``);
    ``dram_scale_bits`` the part of the DRAM bits that are block and tensor scales (priced with the
    rest of the DRAM bits; counted to report the scale-bit overhead).
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
    block_partial_sums: Counter = field(default_factory=Counter)
    tensor_scale_products: int = 0
    block_scales: Counter = field(default_factory=Counter)
    random_bits: int = 0
    butterflies: Counter = field(default_factory=Counter)
    dram_scale_bits: int = 0

    def add(self, other: "ActionCounts") -> None:
        for name in COUNTERS:
            getattr(self, name).update(getattr(other, name))
        for name in SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def scaled(self, factor: int) -> "ActionCounts":
        """These counts repeated ``factor`` times (a step run ``factor`` times)."""
        return ActionCounts(
            **{name: Counter({k: v * factor for k, v in getattr(self, name).items()}) for name in COUNTERS},
            **{name: getattr(self, name) * factor for name in SCALARS},
        )

    def copy(self) -> "ActionCounts":
        return self.scaled(1)

    def as_dict(self) -> dict:
        """Plain, key-sorted data (for JSON)."""
        return {
            name: dict(sorted(getattr(self, name).items())) if name in COUNTERS else getattr(self, name)
            for name in FIELDS
        }


#: The fields of :class:`ActionCounts`, in order: those counted by key, and the plain numbers.
FIELDS = (
    "macs", "accumulations", "sram_read_bits", "sram_write_bits", "dram_read_bits", "dram_write_bits",
    "rescale_elements", "vector_elements", "cycles", "block_partial_sums", "tensor_scale_products",
    "block_scales", "random_bits", "butterflies", "dram_scale_bits",
)
COUNTERS = ("macs", "accumulations", "sram_read_bits", "sram_write_bits", "vector_elements",
            "block_partial_sums", "block_scales", "butterflies")
SCALARS = tuple(f for f in FIELDS if f not in COUNTERS)


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
