"""Block-scaled work of a trace: what a block dot product and a block quantization count.

The formats, the counting rules and their sources are in :mod:`accelsim.hw.blockmac`; this module
reads them off the ops of a trace. A GEMM names its operands' formats (``nvfp4``) but not their
block shape or scale format: those are on the rescale ops that quantized the operands, which the
GEMM lists among its dependencies. :func:`gemm_blocks` takes them from there (the shortest block
along the reduction axis, the costliest scale format, if the operands disagree) and falls back to
the format table's block and scale when a trace has no such dependency (a hand-written trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from accelsim.hw.blockmac import (
    RANDOM_BITS_PER_ELEMENT,
    SCALE_FORMATS,
    TENSOR_SCALE_BITS,
    block_length,
    default_scale_format,
    has_tensor_scale,
    is_block_dot_product,
    partial_sum_format,
)
from accelsim.numerics.formats import bits_of, element_bits, get_format, is_block
from accelsim.sim.result import ActionCounts
from accelsim.trace import GemmOp, Op, RescaleOp


@dataclass(frozen=True)
class BlockGemm:
    """How a block dot product runs: ``block_k`` elements of the reduction per block partial sum,
    the block scales' ``scale_format``, the fixed-point ``partial_sum_format`` a block is summed
    in, and whether both operands carry a per-tensor scale (NVFP4)."""

    block_k: int
    scale_format: str
    partial_sum_format: str
    tensor_scale: bool

    def partial_sums(self, op: GemmOp) -> int:
        """Block partial sums of ``op``: one per output element per block along K."""
        return op.m * op.n * op.count * -(-op.k // self.block_k)


def _scale_rank(fmt: str) -> int:
    return SCALE_FORMATS.index(fmt) if fmt in SCALE_FORMATS else len(SCALE_FORMATS)


def gemm_blocks(ops: Sequence[Op], index: int) -> BlockGemm | None:
    """The block dot product op ``index`` (a GEMM) runs, or ``None`` if it is not one (an operand
    that is not block-scaled)."""
    op = ops[index]
    assert isinstance(op, GemmOp)
    if not is_block_dot_product(op.a_format, op.b_format):
        return None
    blocks: list[int] = []
    scales: list[str] = []
    for fmt in (op.a_format, op.b_format):
        quantizers = [ops[d] for d in op.deps if isinstance(ops[d], RescaleOp) and ops[d].out_format == fmt]
        found = [(block_length(q.block)[0], q.scale_format) for q in quantizers if q.block and q.scale_format]
        if found:
            blocks += [b for b, _ in found]
            scales += [s for _, s in found]
        else:
            blocks.append(get_format(fmt).block or 1)
            scales.append(default_scale_format(fmt))
    block_k = min(blocks)
    return BlockGemm(
        block_k=block_k, scale_format=max(scales, key=_scale_rank),
        partial_sum_format=partial_sum_format(op.a_format, op.b_format, block_k),
        tensor_scale=has_tensor_scale(op.a_format) and has_tensor_scale(op.b_format),
    )


def gemm_block_counts(op: GemmOp, info: BlockGemm | None, counts: ActionCounts) -> None:
    """Add a GEMM's accumulator work to ``counts``: one accumulate per MAC in the GEMM's
    accumulator format, or, for a block dot product, one per MAC in its fixed-point block adder,
    then per block partial sum a block-scale multiply and an accumulate, and per output element a
    tensor-scale multiply when both operands carry tensor scales."""
    if info is None:
        counts.accumulations[op.acc_format] += op.macs
        return
    partial = info.partial_sums(op)
    counts.accumulations[info.partial_sum_format] += op.macs
    counts.accumulations[op.acc_format] += partial
    counts.block_partial_sums[info.scale_format] += partial
    if info.tensor_scale:
        counts.tensor_scale_products += op.m * op.n * op.count


def operand_tensor_scale_bits(fmt: str) -> int:
    """Bits of the per-tensor scale an operand of this format carries (NVFP4: 32, else 0)."""
    return TENSOR_SCALE_BITS if is_block(fmt) and has_tensor_scale(fmt) else 0


def gemm_tensor_scale_bits(op: GemmOp) -> int:
    """DRAM bits of the per-tensor scales a GEMM reads: 32 per operand that carries one (read once
    per op; the engine's operand refetches reload the elements and block scales, not this)."""
    return operand_tensor_scale_bits(op.a_format) + operand_tensor_scale_bits(op.b_format)


def rescale_block_counts(op: RescaleOp, counts: ActionCounts) -> None:
    """Add a block quantization's scale and random-bit work to ``counts``: one block scale per
    block per output copy (blocks counted as ⌈elements / block elements⌉: the tensor's shape is
    not in the op, so edge blocks are not padded), and, under stochastic rounding,
    :data:`~accelsim.hw.blockmac.RANDOM_BITS_PER_ELEMENT` random bits per element per copy."""
    if is_block(op.out_format):
        scale = op.scale_format or default_scale_format(op.out_format)
        per_block = block_length(op.block)[1] if op.block else (get_format(op.out_format).block or 1)
        counts.block_scales[scale] += -(-op.elements // per_block) * op.copies
    if op.rounding == "stochastic":
        counts.random_bits += op.elements * op.copies * RANDOM_BITS_PER_ELEMENT


def rescale_tensor_scale_bits(op: RescaleOp) -> int:
    """DRAM bits of the per-tensor scale a rescale op writes with each output copy (NVFP4: 32)."""
    return operand_tensor_scale_bits(op.out_format) * op.copies


def scale_share(fmt: str) -> float:
    """The share of a format's storage bits that are block scales (MXFP4: 0.25 / 4.25; 0 for
    formats without block scales)."""
    return (bits_of(fmt) - element_bits(fmt)) / bits_of(fmt) if is_block(fmt) else 0.0
