"""The number formats accelsim knows, in one table.

Every format that can appear on an operand, an accumulator or a stored tensor is listed in
:data:`FORMATS` with its bit width and its parameters. Everything else in accelsim (the trace, the
hardware modes, the memory traffic, the quantizers) looks formats up here by name.

Representable values (``s`` is the per-tensor scale, a positive real unless stated):

========== ===== =================================================================================
name       bits  values
========== ===== =================================================================================
int4          4  ``s*q``, q integer in [-8, 7]; symmetric quantizers use [-7, 7]
uint4         4  ``s*q``, q integer in [0, 15] (activations after ReLU / PACT)
fp4r4         4  radix-4 FP4, 1 sign + 3 exponent bits, no mantissa: code 0 is zero, codes
                 c = 1..7 are ``±s*4**(c-7)`` (7 magnitudes spanning 4**6); ``s`` a power of two
fp8e4m3       8  IEEE-like, 4 exponent bits (bias 7), 3 mantissa bits, max 448 (HFP8 forward)
fp8e5m2       8  IEEE-like, 5 exponent bits (bias 15), 2 mantissa bits, max 57344 (HFP8 backward)
fp16         16  IEEE 754 half precision (numpy float16)
fp32         32  IEEE 754 single precision (numpy float32)
int16        16  integer accumulator of the INT4 datapaths
int32        32  integer accumulator of the INT4 datapaths (products of 4-bit integer-grid operands
                 are exact integers, so a wide integer register sums them exactly)
========== ===== =================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FormatKind = Literal["int", "uint", "log", "float"]


@dataclass(frozen=True)
class Format:
    """One number format.

    ``qmin``/``qmax`` are the integer code range for the integer formats; for the radix-4 log format
    ``levels`` is the number of non-zero magnitudes and ``radix`` their ratio; for floats
    ``exponent_bits``/``mantissa_bits``/``bias``/``max_value`` follow the IEEE-like layout.
    """

    name: str
    bits: int
    kind: FormatKind
    description: str
    qmin: int | None = None
    qmax: int | None = None
    radix: int | None = None
    levels: int | None = None
    exponent_bits: int | None = None
    mantissa_bits: int | None = None
    bias: int | None = None
    max_value: float | None = None


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("int4", 4, "int", "signed 4-bit integer with a per-tensor scale", qmin=-8, qmax=7),
        Format("uint4", 4, "uint", "unsigned 4-bit integer with a per-tensor scale", qmin=0, qmax=15),
        Format(
            "fp4r4", 4, "log",
            "radix-4 FP4 (1 sign, 3 exponent, 0 mantissa bits) with a power-of-two scale",
            radix=4, levels=7,
        ),
        Format(
            "fp8e4m3", 8, "float", "HFP8 forward format (1-4-3)",
            exponent_bits=4, mantissa_bits=3, bias=7, max_value=448.0,
        ),
        Format(
            "fp8e5m2", 8, "float", "HFP8 backward format (1-5-2)",
            exponent_bits=5, mantissa_bits=2, bias=15, max_value=57344.0,
        ),
        Format(
            "fp16", 16, "float", "IEEE half precision",
            exponent_bits=5, mantissa_bits=10, bias=15, max_value=65504.0,
        ),
        Format(
            "fp32", 32, "float", "IEEE single precision",
            exponent_bits=8, mantissa_bits=23, bias=127, max_value=3.4028234663852886e38,
        ),
        Format("int16", 16, "int", "16-bit integer accumulator", qmin=-(2**15), qmax=2**15 - 1),
        Format("int32", 32, "int", "32-bit integer accumulator", qmin=-(2**31), qmax=2**31 - 1),
    )
}

FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
#: Formats only an accumulator may have (never an operand, a stored tensor or a hardware mode).
ACCUMULATOR_ONLY: frozenset[str] = frozenset({"int16", "int32"})
#: Formats of operands and stored tensors.
OPERAND_FORMATS: tuple[str, ...] = tuple(n for n in FORMAT_NAMES if n not in ACCUMULATOR_ONLY)


def get_format(name: str) -> Format:
    """Look a format up by name; ``KeyError`` names the known formats."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown number format {name!r}; known: {', '.join(FORMAT_NAMES)}") from None


def bits_of(name: str) -> int:
    """Bit width of a format by name."""
    return get_format(name).bits


#: Multiplier datapaths that serve more than one format: the INT4 datapath handles signed and
#: unsigned 4-bit integers; the HFP8 datapath handles both 8-bit float formats (as IBM's does).
DATAPATHS: dict[str, tuple[str, ...]] = {"int4": ("int4", "uint4"), "fp8": ("fp8e4m3", "fp8e5m2")}
_DATAPATH_OF = {fmt: path for path, fmts in DATAPATHS.items() for fmt in fmts}
#: Names a hardware mode may use on each side: a datapath or a format name.
MODE_OPERANDS: tuple[str, ...] = tuple(dict.fromkeys((*OPERAND_FORMATS, *DATAPATHS)))


def datapath_of(name: str) -> str:
    """The multiplier datapath an operand of this format (or datapath name) uses.

    ``int4`` and ``uint4`` share the INT4 datapath, ``fp8e4m3`` and ``fp8e5m2`` the FP8 one; every
    other format is its own datapath. So a mode ``int4xint4`` serves ``uint4`` operands too and a
    mode ``fp8xfp8`` serves every pair of 8-bit floats.
    """
    return _DATAPATH_OF.get(name, name)


def mode_key(a_format: str, b_format: str) -> frozenset[str]:
    """The unordered pair of datapaths that a product of these two formats needs."""
    return frozenset((datapath_of(a_format), datapath_of(b_format)))


def parse_mode(mode: str) -> tuple[str, str]:
    """Split a hardware mode name such as ``fp4r4xint4`` or ``fp8xfp8`` into its two operand names.

    Each side is a format name or a datapath name (:data:`DATAPATHS`). Raises ``ValueError``
    otherwise.
    """
    for a in sorted(MODE_OPERANDS, key=len, reverse=True):
        if mode.startswith(a + "x") and mode[len(a) + 1:] in MODE_OPERANDS:
            return a, mode[len(a) + 1:]
    raise ValueError(
        f"mode {mode!r} is not '<operand>x<operand>' with operands from: {', '.join(MODE_OPERANDS)}"
    )
