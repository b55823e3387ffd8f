"""Resolved layer graphs: what the trace builder, the model zoo and the topology import share.

A :class:`Network` is an ordered list of :class:`Layer` objects whose per-sample input and output
shapes are already known. Shapes are per sample (no batch axis): ``(features,)`` for vectors,
``(tokens, features)`` for sequences, ``(channels, height, width)`` for images. The batch size is
a property of the network, so one graph serves any batch.

GEMM lowering (DESIGN.md, as SCALE-Sim and im2col do it) is :meth:`Layer.gemm_dims`: forward
``Y[m×n] = X[m×k] · W[k×n]``, repeated ``count`` times (groups of a grouped convolution, heads of
an attention product).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: The name under which ``inputs`` refer to the network input.
NETWORK_INPUT = "input"
#: Layers that run on the systolic array and own a weight tensor.
WEIGHT_LAYERS = frozenset({"linear", "conv2d", "gemm"})
#: Layers that run on the array with two activation operands (attention products).
ACT_PRODUCT_LAYERS = frozenset({"matmul"})
#: Layers that run on the vector unit.
VECTOR_LAYERS = frozenset(
    {"relu", "relu6", "gelu", "maxpool", "avgpool", "batchnorm", "layernorm", "softmax", "add", "flatten",
     "concat", "embedding", "select"}
)
LAYER_TYPES = WEIGHT_LAYERS | ACT_PRODUCT_LAYERS | VECTOR_LAYERS


class GraphError(ValueError):
    """A layer whose shape or parameters do not fit; ``where`` names the layer or field."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class Layer:
    """One resolved layer.

    ``inputs`` names the layers whose outputs feed this one; empty means "the previous layer" (or
    the network input for the first layer; the name ``input`` also means the network input).
    ``m, n, k, count`` are used by ``gemm`` (a raw product whose ``m`` does not scale with the
    batch) and ``matmul`` (an activation × activation product repeated ``count`` times per
    sample: its heads).

    Per type: ``matmul`` multiplies its two inputs head by head — an input of shape
    ``(tokens, features)`` is split into ``count`` heads of ``features/count``, one of shape
    ``(heads, rows, cols)`` is taken as it is — with the second operand transposed when
    ``transpose_b`` (attention scores ``Q·Kᵀ``); an output of rank 2 merges the heads again.
    ``softmax`` works on the last axis of ``scale · x``, with positions after the query's own
    masked when ``causal``. ``concat`` joins along ``axis`` of the per-sample shape. ``embedding``
    maps token ids to vectors of a ``vocab × features`` table (plus a learned positional table
    when ``positions``); ``select`` keeps token ``index`` of a ``(tokens, features)`` input.
    """

    name: str
    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    m: int = 0
    n: int = 0
    k: int = 0
    count: int = 1
    inputs: tuple[str, ...] = ()
    transpose_b: bool = False
    causal: bool = False
    scale: float = 1.0
    axis: int = 0
    vocab: int = 0
    positions: bool = False
    index: int = 0

    def __post_init__(self) -> None:
        if self.type not in LAYER_TYPES:
            raise GraphError(self.name, f"unknown layer type {self.type!r}")

    @property
    def is_gemm(self) -> bool:
        """True for layers that run on the systolic array."""
        return self.type in WEIGHT_LAYERS or self.type in ACT_PRODUCT_LAYERS

    @property
    def has_weights(self) -> bool:
        return self.type in WEIGHT_LAYERS

    @property
    def is_pointwise_conv(self) -> bool:
        """A 1×1 convolution (the paper keeps these in FP8 for ResNet-50/101)."""
        return self.type == "conv2d" and self.kernel == (1, 1)

    def gemm_dims(self, batch: int) -> tuple[int, int, int, int]:
        """Forward GEMM ``(m, n, k, count)`` for a batch of ``batch`` samples."""
        if self.type == "linear":
            rows = batch * math.prod(self.in_shape[:-1])
            return rows, self.out_shape[-1], self.in_shape[-1], 1
        if self.type == "conv2d":
            c_in = self.in_shape[0]
            c_out, h_out, w_out = self.out_shape
            kh, kw = self.kernel
            g = self.groups
            return batch * h_out * w_out, c_out // g, (c_in // g) * kh * kw, g
        if self.type == "gemm":
            return self.m, self.n, self.k, self.count
        if self.type == "matmul":
            return self.m, self.n, self.k, self.count * batch
        raise GraphError(self.name, f"{self.type} is not a matrix product")

    def weight_elements(self) -> int:
        """Number of weights (biases excluded; they ride on the vector unit); an embedding's tables."""
        if self.type == "embedding":
            return self.vocab * self.out_shape[-1] + (math.prod(self.out_shape) if self.positions else 0)
        if not self.has_weights:
            return 0
        m, n, k, count = self.gemm_dims(1)
        return n * k * count

    def macs(self, batch: int) -> int:
        """Forward multiply-accumulates for a batch."""
        if not self.is_gemm:
            return 0
        m, n, k, count = self.gemm_dims(batch)
        return m * n * k * count

    def out_elements(self, batch: int) -> int:
        return batch * math.prod(self.out_shape)

    def in_elements(self, batch: int) -> int:
        return batch * math.prod(self.in_shape)


@dataclass(frozen=True)
class Network:
    """An ordered, shape-resolved layer list plus the batch size and the task it solves."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    batch_size: int
    classes: int | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def gemm_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.is_gemm]

    def forward_macs(self) -> int:
        """Forward MACs for one batch."""
        return sum(layer.macs(self.batch_size) for layer in self.layers)

    def weight_count(self) -> int:
        return sum(layer.weight_elements() for layer in self.layers)


# --- shape rules shared by the workload spec, the zoo and the topology import -------------------


def conv_out_size(size: int, kernel: int, stride: int, padding: int, *, ceil_mode: bool = False) -> int:
    """Output size of a convolution or pooling window along one axis.

    ``floor((size + 2·padding − kernel) / stride) + 1`` (PyTorch); with ``ceil_mode`` SCALE-Sim's
    ``ceil((size + 2·padding − kernel + stride) / stride)``.
    """
    span = size + 2 * padding - kernel
    if span < 0:
        return 0
    if ceil_mode:
        return -(-(span + stride) // stride)
    return span // stride + 1


def linear_layer(name: str, in_shape: tuple[int, ...], out: int, inputs: tuple[str, ...] = ()) -> Layer:
    if len(in_shape) not in (1, 2):
        raise GraphError(
            name,
            f"linear expects a flat input (features) or (tokens, features), got shape {list(in_shape)}; "
            "add a flatten layer before it",
        )
    return Layer(name, "linear", in_shape, in_shape[:-1] + (out,), inputs=inputs)


def conv2d_layer(
    name: str,
    in_shape: tuple[int, ...],
    out: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    groups: int = 1,
    *,
    ceil_mode: bool = False,
    inputs: tuple[str, ...] = (),
) -> Layer:
    if len(in_shape) != 3:
        raise GraphError(name, f"conv2d expects an input of shape (channels, height, width), got {list(in_shape)}")
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    c, h, w = in_shape
    if c % groups or out % groups:
        raise GraphError(name, f"groups={groups} must divide both in channels ({c}) and out channels ({out})")
    ho = conv_out_size(h, kh, sh, ph, ceil_mode=ceil_mode)
    wo = conv_out_size(w, kw, sw, pw, ceil_mode=ceil_mode)
    if ho <= 0 or wo <= 0:
        raise GraphError(
            name, f"kernel {kh}x{kw} does not fit the {h}x{w} input with padding {ph}x{pw}"
        )
    return Layer(
        name, "conv2d", in_shape, (out, ho, wo), kernel=(kh, kw), stride=(sh, sw),
        padding=(ph, pw), groups=groups, inputs=inputs,
    )


def pool_layer(
    name: str,
    kind: str,
    in_shape: tuple[int, ...],
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    inputs: tuple[str, ...] = (),
) -> Layer:
    if len(in_shape) != 3:
        raise GraphError(name, f"{kind} expects an input of shape (channels, height, width), got {list(in_shape)}")
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    c, h, w = in_shape
    ho = conv_out_size(h, kh, sh, ph)
    wo = conv_out_size(w, kw, sw, pw)
    if ho <= 0 or wo <= 0:
        raise GraphError(name, f"{kind} window {kh}x{kw} does not fit the {h}x{w} input")
    return Layer(
        name, kind, in_shape, (c, ho, wo), kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
        inputs=inputs,
    )


def elementwise_layer(name: str, kind: str, in_shape: tuple[int, ...], inputs: tuple[str, ...] = ()) -> Layer:
    """Shape-preserving vector layers: activations, batchnorm, layernorm, softmax, residual add."""
    return Layer(name, kind, in_shape, in_shape, inputs=inputs)


def flatten_layer(name: str, in_shape: tuple[int, ...], inputs: tuple[str, ...] = ()) -> Layer:
    return Layer(name, "flatten", in_shape, (math.prod(in_shape),), inputs=inputs)


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


# --- graph layers: several inputs, token sequences, attention -----------------------------------


def add_layer(name: str, shapes: dict[str, tuple[int, ...]], inputs: tuple[str, ...]) -> Layer:
    """A residual ``add`` of two or more inputs of one shape."""
    if len(inputs) < 2:
        raise GraphError(name, f"add needs at least two inputs, got {list(inputs)}")
    first = shapes[inputs[0]]
    for other in inputs[1:]:
        if shapes[other] != first:
            raise GraphError(
                name, f"add of {inputs[0]!r} {list(first)} and {other!r} {list(shapes[other])}: shapes must agree",
            )
    return Layer(name, "add", first, first, inputs=inputs)


def default_concat_axis(shape: tuple[int, ...]) -> int:
    """Channels of an image, features of a vector or a sequence."""
    return 0 if len(shape) == 3 else len(shape) - 1


def concat_layer(name: str, shapes: dict[str, tuple[int, ...]], inputs: tuple[str, ...], axis: int | None) -> Layer:
    if len(inputs) < 2:
        raise GraphError(name, f"concat needs at least two inputs, got {list(inputs)}")
    first = shapes[inputs[0]]
    rank = len(first)
    ax = default_concat_axis(first) if axis is None else axis
    if not -rank <= ax < rank:
        raise GraphError(name, f"axis {axis} does not exist in the inputs' shape {list(first)}")
    ax %= rank
    total = 0
    for src in inputs:
        shape = shapes[src]
        if len(shape) != rank or any(a != b for i, (a, b) in enumerate(zip(shape, first)) if i != ax):
            raise GraphError(
                name, f"concat along axis {ax} of {inputs[0]!r} {list(first)} and {src!r} {list(shape)}: "
                "the other axes must agree",
            )
        total += shape[ax]
    out = first[:ax] + (total,) + first[ax + 1:]
    return Layer(name, "concat", first, out, inputs=inputs, axis=ax)


def embedding_layer(name: str, in_shape: tuple[int, ...], vocab: int, out: int, positions: bool,
                    inputs: tuple[str, ...] = ()) -> Layer:
    if len(in_shape) != 1:
        raise GraphError(name, f"embedding reads token ids of shape (tokens,), got {list(in_shape)}")
    return Layer(name, "embedding", in_shape, (in_shape[0], out), inputs=inputs, vocab=vocab, positions=positions)


def select_layer(name: str, in_shape: tuple[int, ...], index: int, inputs: tuple[str, ...] = ()) -> Layer:
    if len(in_shape) != 2:
        raise GraphError(name, f"select keeps one token of a (tokens, features) input, got {list(in_shape)}")
    if index >= in_shape[0]:
        raise GraphError(name, f"token {index} does not exist in {in_shape[0]} tokens")
    return Layer(name, "select", in_shape, (in_shape[1],), inputs=inputs, index=index)


def softmax_layer(name: str, in_shape: tuple[int, ...], *, scale: float = 1.0, causal: bool = False,
                  inputs: tuple[str, ...] = ()) -> Layer:
    return Layer(name, "softmax", in_shape, in_shape, inputs=inputs, scale=scale, causal=causal)


def attention_layers(name: str, in_shape: tuple[int, ...], heads: int, causal: bool,
                     inputs: tuple[str, ...]) -> list[Layer]:
    """Multi-head self-attention on ``(tokens, features)`` as primitive layers, in execution order:
    ``NAME.q``, ``NAME.k``, ``NAME.v`` (projections reading the attention's input), ``NAME.scores``
    (``Q·Kᵀ`` per head), ``NAME.softmax`` (scaled by 1/√(features/heads), causal mask),
    ``NAME.context`` (probabilities × ``V`` per head) and ``NAME.out`` (the output projection; the
    attention's own name refers to it)."""
    if len(in_shape) != 2:
        raise GraphError(name, f"attention works on (tokens, features), got {list(in_shape)}")
    tokens, features = in_shape
    if features % heads:
        raise GraphError(name, f"heads={heads} must divide the features ({features})")
    dh = features // heads
    if len(inputs) != 1:
        raise GraphError(name, f"attention reads one input, named explicitly (its three projections read it); got {list(inputs)}")
    q = linear_layer(f"{name}.q", in_shape, features, inputs=inputs)
    k = linear_layer(f"{name}.k", in_shape, features, inputs=inputs)
    v = linear_layer(f"{name}.v", in_shape, features, inputs=inputs)
    scores = Layer(
        f"{name}.scores", "matmul", in_shape, (heads, tokens, tokens), m=tokens, n=tokens, k=dh, count=heads,
        inputs=(q.name, k.name), transpose_b=True,
    )
    probs = softmax_layer(f"{name}.softmax", scores.out_shape, scale=1.0 / math.sqrt(dh), causal=causal,
                          inputs=(scores.name,))
    context = Layer(
        f"{name}.context", "matmul", probs.out_shape, in_shape, m=tokens, n=dh, k=tokens, count=heads,
        inputs=(probs.name, v.name),
    )
    out = linear_layer(f"{name}.out", in_shape, features, inputs=(context.name,))
    return [q, k, v, scores, probs, context, out]
