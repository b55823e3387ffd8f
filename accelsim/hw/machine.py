"""The hardware model objects, built from a validated :class:`~accelsim.spec.models.HardwareSpec`.

A :class:`Machine` answers the questions the simulators ask: which array mode runs a product of two
formats and at how many MACs per PE per cycle, how many bits per cycle DRAM moves, how large each
buffer is. Unsupported operand pairs raise :class:`~accelsim.errors.UnsupportedOpError` naming the
op and the modes the machine has.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.errors import UnsupportedOpError
from accelsim.numerics.formats import DATAPATHS, element_bits, mode_key, parse_mode
from accelsim.spec.models import HardwareSpec

KIB_BITS = 8 * 1024


def operand_bits(name: str) -> int:
    """Element bits of a mode operand: a format, or a datapath serving several (its widest
    format). Block scales are not multiplied by the array, so MXFP4 and NVFP4 are 4-bit operands."""
    if name in DATAPATHS:
        return max(element_bits(f) for f in DATAPATHS[name])
    return element_bits(name)


def widest_mode(mode_names: list[str] | tuple[str, ...]) -> str:
    """The mode whose datapath a shared multi-precision PE is built around (``array.pe_area:
    shared``): the one with the widest operand; among equals, the one whose other operand is
    wider; among those, the first listed."""
    def width(name: str) -> tuple[int, int]:
        a, b = (operand_bits(x) for x in parse_mode(name))
        return max(a, b), min(a, b)

    best = max(width(n) for n in mode_names)
    return next(n for n in mode_names if width(n) == best)


@dataclass(frozen=True)
class Mode:
    """One PE mode: the operand pair it multiplies, its MACs per PE per cycle and the GEMM dimension
    those MACs work along (``simd``: ``reduction``, ``output_cols`` or ``output_rows``; see
    :mod:`accelsim.sim.fold`)."""

    name: str
    macs_per_pe_per_cycle: int
    simd: str = "reduction"


@dataclass(frozen=True)
class Machine:
    spec: HardwareSpec
    file: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def rows(self) -> int:
        return self.spec.array.rows

    @property
    def cols(self) -> int:
        return self.spec.array.cols

    @property
    def dataflow(self) -> str:
        return self.spec.array.dataflow

    @property
    def clock_hz(self) -> float:
        return self.spec.clock_ghz * 1e9

    @property
    def dram_bits_per_cycle(self) -> float:
        """DRAM bandwidth in bits per clock cycle."""
        return self.spec.dram.bandwidth_gbps / self.spec.clock_ghz

    def sram_bits(self, buffer: str) -> int:
        return int(getattr(self.spec.sram, f"{buffer}_kib") * KIB_BITS)

    def modes(self) -> dict[frozenset[str], Mode]:
        out: dict[frozenset[str], Mode] = {}
        simd = self.spec.array.simd
        for name, rate in self.spec.array.modes.items():
            a, b = parse_mode(name)
            out[mode_key(a, b)] = Mode(name, rate, simd.get(name, "reduction"))
        return out

    def mode_for(self, a_format: str, b_format: str, op_label: str = "") -> Mode:
        """The mode that multiplies ``a_format`` by ``b_format`` (order and int4/uint4 sign ignored)."""
        mode = self.modes().get(mode_key(a_format, b_format))
        if mode is None:
            have = ", ".join(self.spec.array.modes) or "none"
            where = f"op {op_label}: " if op_label else ""
            raise UnsupportedOpError.single(
                self.file or self.name, "array.modes",
                f"{where}hardware {self.name!r} has no mode for {a_format} x {b_format} "
                f"(its modes: {have})",
            )
        return mode

    @property
    def widest_mode(self) -> str:
        """The mode a shared PE is priced around (see :func:`widest_mode`)."""
        return widest_mode(tuple(self.spec.array.modes))

    def peak_macs_per_cycle(self, mode: Mode) -> int:
        return self.rows * self.cols * mode.macs_per_pe_per_cycle
