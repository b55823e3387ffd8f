"""Which tensors stay on chip: elementwise epilogues fused onto the op that produces their input.

An accelerator does not send a GEMM's output to DRAM only to read it back for a ReLU and a
requantization: the output tiles stream through the vector and rescale units on their way out.
The rule, applied to the trace as recorded (no reordering):

* op *j* is **fused** onto op *i = j − 1* when *j* is an elementwise vector op or a rescale of
  an activation or gradient, *i* is among its dependencies, and it reads exactly the elements *i*
  produced. *j* then reads that input from the output stream of *i* (no DRAM read); its other
  inputs (an activation mask, the other operand of an add) still come from DRAM;
* the output of *i* is **not written** to DRAM when a fused *j* consumes it and no other op reads
  it (no other op lists *i* among its dependencies).

Reductions that need a whole tensor first (batch normalization, softmax, SAWB weight statistics)
are not fused; their inputs cross DRAM. A rescale's ``max`` statistic is gathered in the same pass
(GradScale checks this step's max against the scale kept from the previous step), so gradient and
activation rescales fuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.trace import Op, RescaleOp, Trace, VectorOp

#: Vector ops that work element by element and can ride on their producer's output.
ELEMENTWISE = frozenset(
    {"relu", "relu6", "gelu", "relu_bwd", "relu6_bwd", "gelu_bwd", "add", "grad_add", "avgpool_bwd",
     "hadamard"}  # a 16-point Hadamard transform mixes 16 neighbouring elements only
)


@dataclass(frozen=True)
class Residency:
    """Per op: whether its main input arrives on chip, and whether its output stays on chip."""

    input_on_chip: tuple[bool, ...]
    output_on_chip: tuple[bool, ...]


def _fusable(op: Op, producer: Op, index: int) -> bool:
    if index - 1 not in op.deps:
        return False
    if isinstance(op, VectorOp):
        if op.op not in ELEMENTWISE:
            return False
    elif isinstance(op, RescaleOp):
        if op.tensor not in ("activation", "gradient") or op.reduction == "stats":
            return False
    else:
        return False
    return op.elements == producer.elements  # a GEMM's elements are its output's


def plan_residency(trace: Trace | tuple[Op, ...]) -> Residency:
    """Apply the fusion rule to every op of a step."""
    ops = trace.ops if isinstance(trace, Trace) else trace
    readers: dict[int, int] = {}
    for op in ops:
        for dep in op.deps:
            readers[dep] = readers.get(dep, 0) + 1
    fused_in = [False] * len(ops)
    for j in range(1, len(ops)):
        fused_in[j] = _fusable(ops[j], ops[j - 1], j)
    out_on_chip = [
        j + 1 < len(ops) and fused_in[j + 1] and readers.get(j, 0) == 1 for j in range(len(ops))
    ]
    return Residency(tuple(fused_in), tuple(out_on_chip))
