"""The trace: the contract between the work producers (trainer, zoo, topology import) and the
work consumers (simulator, energy model).

A :class:`Trace` is the ordered list of ops of **one step** plus how many times that step runs.
Ops are plain frozen dataclasses; every operand names its number format, so memory traffic can be
counted in bits. ``deps`` lists the indices of earlier ops whose results an op reads (the replay
engine starts an op once they are done).

On disk a trace is JSON lines: a header line ``{"trace": 1, ...}`` then one op per line, each
with its ``kind``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union

from accelsim.atomic import write_output
from accelsim.errors import InputError, Problem
from accelsim.numerics.formats import FORMATS, OPERAND_FORMATS

TRACE_VERSION = 1
PHASES = ("fwd", "bwd_data", "bwd_weight", "update")
REDUCTIONS = ("max", "stats", "none", "block", "tensor_block")
#: Reductions that need a pass over the whole tensor before the requantizing pass.
TENSOR_REDUCTIONS = frozenset({"max", "stats", "tensor_block"})
Phase = Literal["fwd", "bwd_data", "bwd_weight", "update"]

#: Vector ops: (tensor reads, tensor writes, cycles per element per lane). Reads and writes are
#: counted in elements of the op's format; an op such as ``sgd_update`` touches several tensors.
VECTOR_OPS: dict[str, tuple[int, int, int]] = {
    "relu": (1, 1, 1),
    "relu_bwd": (2, 1, 1),
    "relu6": (1, 1, 1),
    "relu6_bwd": (2, 1, 1),
    "gelu": (1, 1, 4),
    "gelu_bwd": (2, 1, 4),
    "maxpool": (1, 1, 1),
    "maxpool_bwd": (2, 1, 1),
    "avgpool": (1, 1, 1),
    "avgpool_bwd": (1, 1, 1),
    "bn": (1, 1, 4),
    "bn_bwd": (2, 1, 6),
    "layernorm": (1, 1, 4),
    "layernorm_bwd": (2, 1, 6),
    "softmax": (1, 1, 4),
    "softmax_bwd": (2, 1, 2),
    "add": (2, 1, 1),
    "grad_add": (2, 1, 1),
    "softmax_xent": (1, 1, 4),
    "sgd_update": (3, 2, 3),
    "concat": (1, 1, 1),
    "select": (1, 1, 1),
    "select_bwd": (1, 1, 1),
    "embedding": (1, 1, 1),
    "embedding_pos": (2, 1, 1),
    "embedding_bwd": (2, 1, 1),
    # a 16-point random Hadamard transform: sign flips and 4 butterfly stages, an add or subtract
    # per element per stage (64 per 16 elements)
    "hadamard": (1, 1, 4),
}


@dataclass(frozen=True)
class GemmOp:
    """A matrix product ``[m×k]·[k×n]`` run ``count`` times on the systolic array.

    A convolution lowered by im2col repeats input pixels in ``A`` (forward, weight gradient) or
    sums overlapping windows into its output (activation gradient); ``a_elements`` and
    ``out_elements`` then give the tensor's real size (what crosses memory). 0 means dense:
    ``m·k·count`` and ``m·n·count``.
    """

    layer: str
    phase: Phase
    m: int
    n: int
    k: int
    a_format: str
    b_format: str
    acc_format: str
    out_format: str
    count: int = 1
    a_elements: int = 0
    out_elements: int = 0
    deps: tuple[int, ...] = ()
    kind: Literal["gemm"] = field(default="gemm", init=False)

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count

    @property
    def a_tensor_elements(self) -> int:
        """Elements of operand A as a tensor (unique values)."""
        return self.a_elements or self.m * self.k * self.count

    @property
    def b_tensor_elements(self) -> int:
        return self.k * self.n * self.count

    @property
    def elements(self) -> int:
        """Elements of the result as a tensor."""
        return self.out_elements or self.m * self.n * self.count


@dataclass(frozen=True)
class RescaleOp:
    """Requantization of a tensor into a 4-bit or block-scaled format on the rescale unit.

    ``reduction`` is the statistic computed first: per tensor ``max`` (max scaling, GradScale) or
    ``stats`` (SAWB's mean square and mean absolute value), ``none`` (PACT's learned clip);
    ``block`` (each block's amax and scale, in the same pass as the rounding) or ``tensor_block``
    (NVFP4: the tensor's amax first, then the blocks). ``copies`` is 2 under Two-Phase Rounding.

    Block-scaled outputs say how: ``block`` is the block shape (``32`` along the reduction axis of
    the GEMM that reads the tensor, ``16x16`` square), ``scale_format`` the block scale's format,
    ``rounding`` ``nearest`` or ``stochastic`` (random bits drawn per element). The op's ``phase``
    is that of the GEMM that reads the result: a tensor read by two GEMMs along different axes
    (1-D blocks) is requantized for each.
    """

    layer: str
    phase: Phase
    elements: int
    in_format: str
    out_format: str
    reduction: Literal["max", "stats", "none", "block", "tensor_block"]
    copies: int = 1
    tensor: str = "activation"
    deps: tuple[int, ...] = ()
    block: str = ""
    scale_format: str = ""
    rounding: Literal["nearest", "stochastic"] = "nearest"
    kind: Literal["rescale"] = field(default="rescale", init=False)


@dataclass(frozen=True)
class VectorOp:
    """An elementwise or reduction op on the vector unit (see :data:`VECTOR_OPS`).

    The op's main input and its output are in ``format``; ``aux_format``, when set, is the width of
    the other tensors it reads (an activation mask kept as a 4-bit stash, for instance).
    """

    layer: str
    phase: Phase
    elements: int
    op: str
    format: str
    deps: tuple[int, ...] = ()
    aux_format: str = ""
    kind: Literal["vector"] = field(default="vector", init=False)


def rescale_passes(op: "RescaleOp") -> int:
    """Passes over the tensor: one for a whole-tensor reduction and one per output copy (a block's
    amax and scale are computed in the requantizing pass)."""
    return op.copies + (1 if op.reduction in TENSOR_REDUCTIONS else 0)


Op = Union[GemmOp, RescaleOp, VectorOp]
OP_TYPES: dict[str, type] = {"gemm": GemmOp, "rescale": RescaleOp, "vector": VectorOp}


@dataclass(frozen=True)
class Trace:
    """The ops of one step, repeated ``steps`` times."""

    workload: str
    ops: tuple[Op, ...]
    steps: int = 1
    batch_size: int = 1
    phases: str = "training"
    precision: str = ""

    def __len__(self) -> int:
        return len(self.ops)

    def gemms(self) -> list[GemmOp]:
        return [op for op in self.ops if isinstance(op, GemmOp)]

    def macs(self) -> int:
        """MACs of one step."""
        return sum(op.macs for op in self.gemms())

    def header(self) -> dict[str, Any]:
        return {
            "trace": TRACE_VERSION, "workload": self.workload, "steps": self.steps,
            "batch_size": self.batch_size, "phases": self.phases, "precision": self.precision,
        }


def op_to_dict(op: Op) -> dict[str, Any]:
    data = asdict(op)
    data["deps"] = list(op.deps)
    kind = data.pop("kind")
    return {"kind": kind, **data}


def write_trace(trace: Trace, path: Path) -> str:
    """Write a trace as JSON lines to a user-named path: a regular file (or a symlink's target) is
    replaced atomically, a FIFO or a character device is streamed to, anything else is refused
    (:func:`accelsim.atomic.write_output`). Returns ``"created"``, ``"replaced"`` or ``"streamed"``."""
    return write_output(path, dumps_trace(trace).encode("utf-8"))


def dumps_trace(trace: Trace) -> str:
    lines = [json.dumps(trace.header(), separators=(",", ":"))]
    lines.extend(json.dumps(op_to_dict(op), separators=(",", ":")) for op in trace.ops)
    return "\n".join(lines) + "\n"


def read_trace(path: Path) -> Trace:
    """Read a JSON-lines trace, validating every op; all problems are reported at once."""
    from accelsim.spec.yamlio import read_text

    text = read_text(path, what="trace file", max_bytes=1 << 30)
    return loads_trace(text, str(path))


def loads_trace(text: str, name: str) -> Trace:
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise InputError.single(name, "", "empty trace file")
    header = _json_line(name, *lines[0])
    if not isinstance(header, dict) or header.get("trace") != TRACE_VERSION:
        raise InputError.single(name, "line 1", f"expected a header line {{\"trace\": {TRACE_VERSION}, ...}}")
    problems: list[Problem] = []
    ops: list[Op] = []
    for lineno, line in lines[1:]:
        try:
            ops.append(_op_from_dict(_json_line(name, lineno, line), len(ops), name, lineno))
        except InputError as exc:
            problems.extend(exc.problems)
        if len(problems) >= 20:
            break
    if problems:
        raise InputError(problems)
    steps = header.get("steps", 1)
    batch = header.get("batch_size", 1)
    if not isinstance(steps, int) or steps < 1 or not isinstance(batch, int) or batch < 1:
        raise InputError.single(name, "line 1", "steps and batch_size must be positive integers")
    return Trace(
        workload=str(header.get("workload", Path(name).stem)), ops=tuple(ops), steps=steps,
        batch_size=batch, phases=str(header.get("phases", "training")),
        precision=str(header.get("precision", "")),
    )


def _json_line(name: str, lineno: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError.single(name, f"line {lineno}", f"not valid JSON: {exc.msg}") from None


def _op_from_dict(data: Any, index: int, name: str, lineno: int) -> Op:
    where = f"line {lineno}"
    if not isinstance(data, dict):
        raise InputError.single(name, where, "expected a JSON object per op")
    kind = data.get("kind")
    cls = OP_TYPES.get(kind)
    if cls is None:
        raise InputError.single(name, f"{where}.kind", f"unknown op kind {kind!r} (allowed: gemm, rescale, vector)")
    names = {f.name for f in fields(cls) if f.init}
    unknown = set(data) - names - {"kind"}
    if unknown:
        raise InputError.single(name, f"{where}.{sorted(unknown)[0]}", f"unknown field for a {kind} op (allowed: {', '.join(sorted(names))})")
    args = {k: v for k, v in data.items() if k != "kind"}
    args["deps"] = tuple(args.get("deps", ()))
    try:
        op = cls(**args)
    except TypeError as exc:
        raise InputError.single(name, where, f"bad {kind} op: {exc}") from None
    problems = validate_op(op, index)
    if problems:
        raise InputError([Problem(name, f"{where}.{f}", m) for f, m in problems])
    return op


def validate_op(op: Op, index: int) -> list[tuple[str, str]]:
    """Field-level checks of one op: positive sizes, known formats and phases, deps that point back."""
    problems: list[tuple[str, str]] = []
    if op.phase not in PHASES:
        problems.append(("phase", f"unknown phase {op.phase!r} (allowed: {', '.join(PHASES)})"))
    if not isinstance(op.layer, str) or not op.layer:
        problems.append(("layer", "must be a non-empty string"))
    if isinstance(op, GemmOp):
        for attr in ("a_elements", "out_elements"):
            value = getattr(op, attr)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 1 << 48:
                problems.append((attr, f"must be a non-negative integer, got {value!r}"))
    ints = {"gemm": ("m", "n", "k", "count"), "rescale": ("elements", "copies"), "vector": ("elements",)}[op.kind]
    for attr in ints:
        value = getattr(op, attr)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 1 << 48:
            problems.append((attr, f"must be a positive integer, got {value!r}"))
    fmts = {"gemm": ("a_format", "b_format", "out_format"), "rescale": ("in_format", "out_format"), "vector": ("format",)}[op.kind]
    for attr in fmts:
        if getattr(op, attr) not in OPERAND_FORMATS:
            problems.append((attr, f"unknown format {getattr(op, attr)!r} (allowed: {', '.join(OPERAND_FORMATS)})"))
    if isinstance(op, VectorOp) and op.aux_format and op.aux_format not in OPERAND_FORMATS:
        problems.append(("aux_format", f"unknown format {op.aux_format!r} (allowed: {', '.join(OPERAND_FORMATS)})"))
    if isinstance(op, GemmOp) and op.acc_format not in FORMATS:
        problems.append(("acc_format", f"unknown accumulator format {op.acc_format!r} (allowed: {', '.join(FORMATS)})"))
    if isinstance(op, RescaleOp) and op.reduction not in REDUCTIONS:
        problems.append(("reduction", f"unknown reduction {op.reduction!r} (allowed: {', '.join(REDUCTIONS)})"))
    if isinstance(op, VectorOp) and op.op not in VECTOR_OPS:
        problems.append(("op", f"unknown vector op {op.op!r} (allowed: {', '.join(VECTOR_OPS)})"))
    for dep in op.deps:
        if not isinstance(dep, int) or not 0 <= dep < index:
            problems.append(("deps", f"dependency {dep!r} is not the index of an earlier op"))
            break
    return problems
