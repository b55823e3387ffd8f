"""How the hardware runs block-scaled (microscaling) operands: the facts the simulators count by
and the technology tables price by.

A **block dot product** is a GEMM whose two operands are both block-scaled formats (MXFP4, NVFP4,
MXFP8, int4b, ...). Its PEs work the way the OCP MX specification defines the dot product of two
blocks (``X_A·X_B·Σ a_i·b_i``) and the way MX and NVFP4 datapaths are built (Darvish Rouhani et
al., ISCA 2023; the OCP MX v1.0 spec; KU Leuven's precision-scalable MX datapaths, arXiv
2511.06313): inside a block the element products are aligned to a fixed-point grid and summed in a
narrow integer adder tree; once per block the partial sum is multiplied by the two block scales
and added to the wide (FP32) accumulator; NVFP4's per-tensor FP32 scales are applied once per
output element. So per GEMM, with ``B`` the block length along the reduction axis:

======================================= ================================== ======================
action                                  count                              priced by
======================================= ================================== ======================
element product (and its alignment)     MACs                               ``mac.<mode>``
intra-block add (fixed point)           MACs, by :func:`partial_sum_format`  ``accumulate.int16`` /
                                                                           ``accumulate.int32``
block-scale multiply                    m·n·⌈k / B⌉·count                  ``scale_multiply.<scale>``
inter-block add (the accumulator)       m·n·⌈k / B⌉·count                  ``accumulate.<acc format>``
tensor-scale multiply (NVFP4)           m·n·count                          ``tensor_scale_multiply``
======================================= ================================== ======================

A product of a block-scaled operand and a plain one (``mxfp4xbf16``: the MXFP4-backward recipe's
attention products) is not a block dot product: the block operand is expanded to the other
operand's format where it enters the array and multiplied there, accumulated per MAC as usual.

Quantizing into a block format (a rescale op) computes one scale per block
(``block_scale.<scale>``) and, under stochastic rounding, draws :data:`RANDOM_BITS_PER_ELEMENT`
random bits per element (``random_bit``). Pure functions of format names, no state.
"""

from __future__ import annotations

import math

from accelsim.numerics.formats import DATAPATHS, FORMATS, get_format, is_block

#: Random bits drawn per stochastically rounded element: NVIDIA's PTX ``cvt.rs`` conversions to
#: FP4/FP6/FP8 take one 32-bit ``rbits`` operand for four results (8 bits per element).
RANDOM_BITS_PER_ELEMENT = 8
#: Bits of a per-tensor scale (NVFP4: one FP32 per tensor).
TENSOR_SCALE_BITS = 32
#: Block-scale formats the tables price (``scale_multiply.<f>``, ``block_scale.<f>``): the OCP
#: E8M0 scale, NVFP4's E4M3 scale, and the FP16 scale int4b may use (``int4b_scale``).
SCALE_FORMATS: tuple[str, ...] = ("e8m0", "fp8e4m3", "fp16")


def formats_of(operand: str) -> tuple[str, ...]:
    """The formats a mode operand (a format, or a datapath such as ``mxfp8``) stands for."""
    return DATAPATHS.get(operand, (operand,))


def is_block_operand(operand: str) -> bool:
    """Whether a mode operand (format or datapath name) is block-scaled."""
    return all(is_block(f) for f in formats_of(operand))


def is_block_dot_product(a: str, b: str) -> bool:
    """Whether a product of these two operands (formats or datapaths) is a block dot product."""
    return is_block_operand(a) and is_block_operand(b)


def default_scale_format(fmt: str) -> str:
    """The block-scale format of a block format as the format table defines it (int4b's scale is a
    policy option; the trace's rescale ops say which one a run used)."""
    return get_format(fmt).scale_format or ""


def has_tensor_scale(fmt: str) -> bool:
    return bool(get_format(fmt).tensor_scale)


def _element_grid(element: str) -> tuple[float, float]:
    """(smallest non-zero magnitude, largest magnitude) of an element format."""
    f = FORMATS[element]
    if f.kind == "int":
        return 1.0, float(max(abs(f.qmin or 0), abs(f.qmax or 0)))
    assert f.mantissa_bits is not None and f.bias is not None and f.max_value is not None
    return 2.0 ** (1 - f.bias - f.mantissa_bits), f.max_value


def partial_sum_bits(a_format: str, b_format: str, block_k: int) -> int:
    """Bits (sign included) of the exact fixed-point sum of ``block_k`` products of two block
    formats' elements: the products lie on the grid of the product of the two smallest magnitudes,
    up to the product of the two largest. E2M1 × E2M1 (0.25 … 36): 144 grid steps per product,
    ``block_k = 16`` → 12 bits + sign = 13."""
    (lo_a, hi_a), (lo_b, hi_b) = (_element_grid(FORMATS[f].element or f) for f in (a_format, b_format))
    steps = hi_a * hi_b / (lo_a * lo_b) * block_k
    return math.ceil(math.log2(steps + 1)) + 1


def partial_sum_format(a_format: str, b_format: str, block_k: int) -> str:
    """The integer adder a block dot product sums one block's products in: ``int16`` when the exact
    sum fits 16 bits (E2M1 and INT4 elements in blocks of 16 or 32), else ``int32``. FP8 elements
    (MXFP8) need more than 32 bits to be exact; hardware aligns them to the block's largest product
    and truncates (NVIDIA's Hopper FP8 tensor cores keep about 14 bits: DeepSeek-V3 technical
    report, arXiv 2412.19437, §3.3.2), so the 32-bit adder is an upper bound there."""
    return "int16" if partial_sum_bits(a_format, b_format, block_k) <= 16 else "int32"


def block_length(block: str) -> tuple[int, int]:
    """(elements along the reduction axis, elements per block) of a trace block shape: ``"16"`` is
    (16, 16), ``"16x16"`` (16, 256)."""
    parts = [int(p) for p in block.split("x")]
    return parts[0], math.prod(parts)
