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
bf16         16  bfloat16: 8 exponent bits (bias 127), 7 mantissa bits (16-bit training today)
fp4e2m1       4  OCP E2M1: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}, no Inf or NaN (the FP4 element)
fp6e2m3       6  OCP E2M3: max ±7.5, no Inf or NaN
fp6e3m2       6  OCP E3M2: max ±28, no Inf or NaN
int8          8  signed 8-bit integer (MXINT8's element, with an implicit 2**-6)
e8m0          8  OCP E8M0 scale: 2**(e-127), no mantissa (0xFF is NaN); a scale, never an operand
int16        16  integer accumulator of the INT4 datapaths
int32        32  integer accumulator of the INT4 datapaths (products of 4-bit integer-grid operands
                 are exact integers, so a wide integer register sums them exactly)
========== ===== =================================================================================

Block-scaled formats (OCP Microscaling v1.0; NVIDIA NVFP4): a block of ``block`` elements along the
GEMM's reduction axis (or a square block, a policy option for weights) shares one ``scale``;
NVFP4 also has one FP32 scale per tensor. Storage per element is ``bits + scale bits / block``:

=========== ======== ===== ========= ============= ===================================================
name        element  block scale     bits/element  note
=========== ======== ===== ========= ============= ===================================================
mxfp4       fp4e2m1     32 e8m0               4.25 OCP MXFP4
mxfp6e2m3   fp6e2m3     32 e8m0               6.25 OCP MXFP6 (E2M3)
mxfp6e3m2   fp6e3m2     32 e8m0               6.25 OCP MXFP6 (E3M2)
mxfp8e4m3   fp8e4m3     32 e8m0               8.25 OCP MXFP8 (E4M3)
mxfp8e5m2   fp8e5m2     32 e8m0               8.25 OCP MXFP8 (E5M2)
mxint8      int8        32 e8m0               8.25 OCP MXINT8: element k·2**-6, −2 … 1.984375
nvfp4       fp4e2m1     16 fp8e4m3             4.5 NVIDIA NVFP4, plus one FP32 scale per tensor
int4b       int4        32 e8m0               4.25 uniform INT4 (−7 … 7) with block scales (block and
                                                   scale format are policy options)
=========== ======== ===== ========= ============= ===================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FormatKind = Literal["int", "uint", "log", "float", "scale", "block"]


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
    #: block-scaled formats: the element format, the block size and the scale format; NVFP4 adds
    #: one FP32 scale per tensor
    element: str | None = None
    block: int | None = None
    scale_format: str | None = None
    tensor_scale: bool = False

    @property
    def storage_bits(self) -> float:
        """Bits per element in memory: the element plus its share of the block scale."""
        if self.kind == "block":
            return self.bits + FORMATS[self.scale_format].bits / self.block
        return float(self.bits)


#: (name, element, block, scale format, per-tensor FP32 scale, description)
BLOCK_FORMATS = (
    ("mxfp4", "fp4e2m1", 32, "e8m0", False, "OCP MXFP4: E2M1 elements, blocks of 32, E8M0 scale"),
    ("mxfp6e2m3", "fp6e2m3", 32, "e8m0", False, "OCP MXFP6: E2M3 elements, blocks of 32, E8M0 scale"),
    ("mxfp6e3m2", "fp6e3m2", 32, "e8m0", False, "OCP MXFP6: E3M2 elements, blocks of 32, E8M0 scale"),
    ("mxfp8e4m3", "fp8e4m3", 32, "e8m0", False, "OCP MXFP8: E4M3 elements, blocks of 32, E8M0 scale"),
    ("mxfp8e5m2", "fp8e5m2", 32, "e8m0", False, "OCP MXFP8: E5M2 elements, blocks of 32, E8M0 scale"),
    ("mxint8", "int8", 32, "e8m0", False, "OCP MXINT8: 8-bit integers times 2**-6, blocks of 32, E8M0 scale"),
    ("nvfp4", "fp4e2m1", 16, "fp8e4m3", True, "NVIDIA NVFP4: E2M1 elements, blocks of 16, E4M3 scale, FP32 tensor scale"),
    ("int4b", "int4", 32, "e8m0", False, "uniform INT4 (-7..7) with a scale per block"),
)
FORMATS_ELEMENT_BITS = {"fp4e2m1": 4, "fp6e2m3": 6, "fp6e3m2": 6, "fp8e4m3": 8, "fp8e5m2": 8, "int8": 8, "int4": 4}

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
        Format(
            "bf16", 16, "float", "bfloat16",
            exponent_bits=8, mantissa_bits=7, bias=127, max_value=3.3895313892515355e38,
        ),
        Format("fp4e2m1", 4, "float", "OCP FP4 element E2M1", exponent_bits=2, mantissa_bits=1, bias=1, max_value=6.0),
        Format("fp6e2m3", 6, "float", "OCP FP6 element E2M3", exponent_bits=2, mantissa_bits=3, bias=1, max_value=7.5),
        Format("fp6e3m2", 6, "float", "OCP FP6 element E3M2", exponent_bits=3, mantissa_bits=2, bias=3, max_value=28.0),
        Format("int8", 8, "int", "signed 8-bit integer", qmin=-128, qmax=127),
        Format("e8m0", 8, "scale", "OCP E8M0 block scale 2**(e-127)", exponent_bits=8, mantissa_bits=0, bias=127),
        *(Format(name, FORMATS_ELEMENT_BITS[el], "block", desc, element=el, block=blk, scale_format=sc, tensor_scale=ts)
          for name, el, blk, sc, ts, desc in BLOCK_FORMATS),
        Format("int16", 16, "int", "16-bit integer accumulator", qmin=-(2**15), qmax=2**15 - 1),
        Format("int32", 32, "int", "32-bit integer accumulator", qmin=-(2**31), qmax=2**31 - 1),
    )
}

FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
#: Formats only an accumulator (or a block scale) may have: never an operand, a stored tensor or a
#: hardware mode.
ACCUMULATOR_ONLY: frozenset[str] = frozenset({"int16", "int32", "e8m0"})
#: Block-scaled formats.
BLOCK_FORMAT_NAMES: tuple[str, ...] = tuple(name for name, *_ in BLOCK_FORMATS)
#: Formats of operands and stored tensors.
OPERAND_FORMATS: tuple[str, ...] = tuple(n for n in FORMAT_NAMES if n not in ACCUMULATOR_ONLY)


def get_format(name: str) -> Format:
    """Look a format up by name; ``KeyError`` names the known formats."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown number format {name!r}; known: {', '.join(FORMAT_NAMES)}") from None


def bits_of(name: str) -> float:
    """Bits per element of a format in memory (block-scaled formats: with their share of the block
    scale, e.g. 4.25 for MXFP4, 4.5 for NVFP4)."""
    return get_format(name).storage_bits


def element_bits(name: str) -> int:
    """Width of one element of a format (4 for MXFP4 and NVFP4; what a datapath multiplies)."""
    return get_format(name).bits


def is_block(name: str) -> bool:
    return get_format(name).kind == "block"


def needs_rescale(name: str) -> bool:
    """Formats a tensor is requantized into on the rescale unit (with a scale chosen from the
    tensor): the 4-bit per-tensor formats and every block-scaled format. Plain float formats
    (FP8, FP16, BF16) are rounded where they are written."""
    f = get_format(name)
    return f.kind == "block" or (f.bits == 4 and f.kind in ("int", "uint", "log"))


def tensor_scale_bits(name: str) -> int:
    """Bits of the per-tensor scale a tensor of this format carries (32 for NVFP4, else 0)."""
    return 32 if get_format(name).tensor_scale else 0


#: Multiplier datapaths that serve more than one format: the INT4 datapath handles signed and
#: unsigned 4-bit integers; the HFP8 datapath handles both 8-bit float formats (as IBM's does);
#: the MXFP8 datapath both MXFP8 element formats (E4M3 forward, E5M2 gradients, and their mix).
DATAPATHS: dict[str, tuple[str, ...]] = {
    "int4": ("int4", "uint4"), "fp8": ("fp8e4m3", "fp8e5m2"), "mxfp8": ("mxfp8e4m3", "mxfp8e5m2"),
}
_DATAPATH_OF = {fmt: path for path, fmts in DATAPATHS.items() for fmt in fmts}
#: Names a hardware mode may use on each side: a datapath or a format name.
MODE_OPERANDS: tuple[str, ...] = tuple(dict.fromkeys((*OPERAND_FORMATS, *DATAPATHS)))


def datapath_of(name: str) -> str:
    """The multiplier datapath an operand of this format (or datapath name) uses.

    ``int4`` and ``uint4`` share the INT4 datapath, ``fp8e4m3`` and ``fp8e5m2`` the FP8 one,
    ``mxfp8e4m3`` and ``mxfp8e5m2`` the MXFP8 one; every other format is its own datapath. So a mode
    ``int4xint4`` serves ``uint4`` operands too, a mode ``fp8xfp8`` every pair of 8-bit floats and a
    mode ``mxfp8xmxfp8`` every pair of MXFP8 operands.
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
