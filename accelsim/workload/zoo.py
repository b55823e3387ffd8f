"""Model zoo: standard networks as shape-resolved :class:`~accelsim.workload.graph.Network` graphs.

Analytic workloads (``model: {zoo: resnet50, ...}`` in a workload file) are built here; the trace
builder turns them into one training step of GEMM, rescale and vector ops. Nothing is trained.

Conventions shared by every builder:

* **Layers are listed in forward execution order** (a topological order of the graph). A layer
  reads the previous layer's output unless its ``inputs`` names its producer(s) explicitly; every
  layer that reads anything other than the immediately preceding layer sets ``inputs`` (shortcut
  convolutions, the first layer after a shortcut, the two operands of a residual ``add``, the K/V
  projections and the two operands of each attention ``matmul``).
* **Shapes are per sample** (``(C, H, W)`` images, ``(tokens, features)`` sequences,
  ``(features,)`` vectors); the batch size lives on the :class:`Network`.
* **Every operation the trace builder must cost is its own layer**: ``batchnorm``, ``relu`` /
  ``relu6``, ``maxpool``, ``avgpool`` (global average pooling is an ``avgpool`` whose kernel is the
  whole feature map), ``flatten``, ``add`` (residual), ``layernorm``, ``softmax``, ``gelu``.
  Dropout is omitted (it is the identity in the cost model); biases are not separate layers (they
  ride on the vector unit with their producer, and :meth:`Network.weight_count` excludes them).
* **Names follow the reference implementation's module names** (torchvision for the CNNs,
  Hugging Face ``BertModel`` for BERT) so a layer can be matched to a checkpoint tensor, e.g.
  ``layer1.0.conv1``, ``layer1.0.downsample.0`` (shortcut conv), ``layer1.0.downsample.1`` (its BN),
  ``features.3.conv.1.0`` (a MobileNetV2 depthwise conv), ``classifier.6``, ``fc``. Functional ops
  that have no module get readable synthetic names: ``layer1.0.relu1`` … (each application of a
  shared ReLU module numbered in order), ``layer1.0.add``, ``features.3.add``,
  ``encoder.layer.0.attention.self.scores``.
* ``Network.name`` is the zoo name, ``Network.classes`` the number of classes and ``Network.meta``
  holds ``{"zoo": name, ...}`` plus the builder's parameters.
* MAC counts quoted below are **forward multiply-accumulates per sample** counted over
  convolutions, linear layers and attention products only (what :meth:`Network.forward_macs`
  returns for ``batch_size=1``). torchvision's model cards call the same quantity "GFLOPS".

Errors: shapes that do not fit raise :class:`~accelsim.workload.graph.GraphError` naming the layer
(e.g. ``pool2: maxpool window 2x2 does not fit the 1x1 input``); bad parameters raise
``GraphError`` naming the parameter — a value that is not a positive integer, or one beyond its
bound (:data:`PARAM_BOUNDS`; a graph of more than :data:`~accelsim.spec.models.MAX_LAYERS` layers
is refused before a layer is built); :func:`build_zoo_model` raises ``KeyError`` for an unknown
model name, listing the known names and suggesting the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accelsim.spec.models import MAX_DIM, MAX_LAYERS
from accelsim.workload.graph import (
    NETWORK_INPUT,
    GraphError,
    Layer,
    Network,
    attention_layers,
    conv2d_layer,
    elementwise_layer,
    embedding_layer,
    flatten_layer,
    linear_layer,
    pool_layer,
    select_layer,
    softmax_layer,
)

__all__ = [
    "ZOO",
    "mobilenet_small",
    "resnet",
    "transformer",
    "ZooEntry",
    "bert_base",
    "build_zoo_model",
    "cnn",
    "mlp",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "vgg16",
    "zoo_names",
]


# --- validation helpers --------------------------------------------------------------------------


#: Largest value of each builder parameter (a tensor side otherwise: MAX_DIM). Beyond these a
#: network is not a model anyone trains, and its numbers stop meaning anything.
PARAM_BOUNDS: dict[str, int] = {
    "seq_len": 1 << 16, "hidden": 1 << 16, "heads": 1 << 12, "intermediate": 1 << 18,
    "layers": (MAX_LAYERS - 4) // 17, "classes": MAX_DIM, "batch_size": 1 << 20,
}


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**12 else f"a {len(str(abs(value)))}-digit number"
    return text if len(text) <= 60 else text[:57] + "..."


def _positive_int(where: str, value: object, limit: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GraphError(where, f"must be a positive integer, got {_short(value)}")
    limit = PARAM_BOUNDS.get(where, MAX_DIM) if limit is None else limit
    if value > limit:
        raise GraphError(where, f"must be at most {limit:,}, got {_short(value)}")
    return int(value)


def _int_tuple(where: str, value: object, *, rank: int | None = None, allow_empty: bool = False) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise GraphError(where, f"must be a list of positive integers, got {_short(value)}")
    if len(value) > MAX_LAYERS:
        raise GraphError(where, f"must have at most {MAX_LAYERS:,} entries, got {len(value):,}")
    items = tuple(value)
    if not items and not allow_empty:
        raise GraphError(where, "must not be empty")
    if rank is not None and len(items) != rank:
        raise GraphError(where, f"must have {rank} entries, got {list(items)}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise GraphError(where, f"must be a list of positive integers, got {_short(list(items))}")
        if item > MAX_DIM:
            raise GraphError(where, f"entries must be at most {MAX_DIM:,}, got {_short(item)}")
    return tuple(int(item) for item in items)


def _image_shape(value: object) -> tuple[int, int, int]:
    shape = _int_tuple("input_shape", value)
    if len(shape) != 3:
        raise GraphError("input_shape", f"must be (channels, height, width), got {list(shape)}")
    return shape  # type: ignore[return-value]


# --- graph builder -------------------------------------------------------------------------------


class _Graph:
    """Appends layers in execution order, tracking each output shape and the current tip."""

    def __init__(self, input_shape: tuple[int, ...]):
        self.input_shape = input_shape
        self.layers: list[Layer] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.tip: str | None = None  # None: the network input

    @property
    def shape(self) -> tuple[int, ...]:
        return self.input_shape if self.tip is None else self.shapes[self.tip]

    def _source(self, src: str | None) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """In-shape and ``inputs`` for a layer reading ``src`` (default: the current tip)."""
        if src is None or src == self.tip:
            return self.shape, ()
        return self.shapes[src], (src,)

    def append(self, layer: Layer) -> str:
        if layer.name in self.shapes:
            raise GraphError(layer.name, "duplicate layer name")  # a zoo bug, never user input
        self.layers.append(layer)
        self.shapes[layer.name] = layer.out_shape
        self.tip = layer.name
        return layer.name

    def conv(self, name: str, out: int, kernel: int, stride: int = 1, padding: int = 0,
             groups: int = 1, src: str | None = None) -> str:
        shape, inputs = self._source(src)
        return self.append(conv2d_layer(name, shape, out, kernel, stride, padding, groups, inputs=inputs))

    def linear(self, name: str, out: int, src: str | None = None) -> str:
        shape, inputs = self._source(src)
        return self.append(linear_layer(name, shape, out, inputs=inputs))

    def pool(self, name: str, kind: str, kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
             padding: int = 0) -> str:
        return self.append(pool_layer(name, kind, self.shape, kernel, stride, padding))

    def global_avgpool(self, name: str = "avgpool") -> str:
        _, h, w = self.shape
        return self.pool(name, "avgpool", (h, w))

    def vector(self, name: str, kind: str, src: str | None = None) -> str:
        shape, inputs = self._source(src)
        return self.append(elementwise_layer(name, kind, shape, inputs=inputs))

    def add(self, name: str, a: str, b: str) -> str:
        if self.shapes[a] != self.shapes[b]:
            raise GraphError(name, f"residual operands {a} {list(self.shapes[a])} and {b} "
                                   f"{list(self.shapes[b])} differ in shape")
        return self.append(elementwise_layer(name, "add", self.shapes[a], inputs=(a, b)))

    def flatten(self, name: str = "flatten") -> str:
        return self.append(flatten_layer(name, self.shape))

    def extend(self, layers: list[Layer]) -> str:
        for layer in layers:
            self.append(layer)
        return self.tip

    def inputs_for(self, src: str | None) -> tuple[str, ...]:
        """Explicit ``inputs`` naming ``src`` (the network input when ``None``)."""
        return (NETWORK_INPUT,) if src is None else (src,)

    def network(self, name: str, batch_size: int, classes: int, **meta: object) -> Network:
        return Network(
            name=name, input_shape=self.input_shape, layers=tuple(self.layers), batch_size=batch_size,
            classes=classes, meta={"zoo": name, **meta},
        )


def _common(classes: object, batch_size: object) -> tuple[int, int]:
    return _positive_int("classes", classes), _positive_int("batch_size", batch_size)


# --- small networks for the digits data set ------------------------------------------------------


def mlp(input_shape: Sequence[int] = (64,), classes: int = 10, batch_size: int = 64,
        hidden: Sequence[int] = (128,)) -> Network:
    """Multi-layer perceptron: ``[flatten] → (fc_i → relu_i)* → fc_out``.

    Layers ``fc1, relu1, …, fcN`` (``fcN`` maps to ``classes``); a ``flatten`` comes first when
    ``input_shape`` has more than one axis. ``hidden=()`` gives a single linear classifier; an int
    means one hidden layer.
    Default (8×8 digits, 64 → 128 → 10): 64·128 + 128·10 = 9,472 MACs and weights per sample.
    """
    shape = _int_tuple("input_shape", input_shape)
    widths = _int_tuple("hidden", (hidden,) if isinstance(hidden, int) else hidden, allow_empty=True)
    if 2 * len(widths) + 2 > MAX_LAYERS:
        raise GraphError("hidden", f"{len(widths):,} hidden layers make more than {MAX_LAYERS:,} layers")
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    if len(shape) > 1:
        g.flatten()
    for i, width in enumerate(widths, start=1):
        g.linear(f"fc{i}", width)
        g.vector(f"relu{i}", "relu")
    g.linear(f"fc{len(widths) + 1}", classes)
    return g.network("mlp", batch_size, classes, hidden=list(widths))


def cnn(input_shape: Sequence[int] = (1, 8, 8), classes: int = 10, batch_size: int = 64,
        channels: Sequence[int] = (16, 32)) -> Network:
    """Small CNN for 8×8 digits: per entry of ``channels`` a block ``conv_i (3×3, pad 1) → relu_i →
    pool_i (maxpool 2)``, then ``flatten → fc`` to ``classes``.

    Default on (1, 8, 8): conv1 16×8×8 (9,216 MACs), pool1 16×4×4, conv2 32×4×4 (73,728 MACs),
    pool2 32×2×2, flatten 128, fc 128→10 (1,280 MACs): 84,224 MACs and 6,032 weights per sample.
    An input too small for the pools raises ``GraphError`` naming the first layer that does not fit.
    """
    shape = _image_shape(input_shape)
    chans = _int_tuple("channels", (channels,) if isinstance(channels, int) else channels)
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    for i, out in enumerate(chans, start=1):
        g.conv(f"conv{i}", out, 3, padding=1)
        g.vector(f"relu{i}", "relu")
        g.pool(f"pool{i}", "maxpool", 2)
    g.flatten()
    g.linear("fc", classes)
    return g.network("cnn", batch_size, classes, channels=list(chans))


# --- ResNet (torchvision) ------------------------------------------------------------------------


def _resnet_stem(g: _Graph) -> str:
    g.conv("conv1", 64, 7, stride=2, padding=3)
    g.vector("bn1", "batchnorm")
    g.vector("relu", "relu")
    return g.pool("maxpool", "maxpool", 3, 2, 1)


def _basic_block(g: _Graph, prefix: str, x: str, planes: int, stride: int) -> str:
    in_channels = g.shapes[x][0]
    g.conv(f"{prefix}.conv1", planes, 3, stride, 1, src=x)
    g.vector(f"{prefix}.bn1", "batchnorm")
    g.vector(f"{prefix}.relu1", "relu")
    g.conv(f"{prefix}.conv2", planes, 3, 1, 1)
    main = g.vector(f"{prefix}.bn2", "batchnorm")
    shortcut = x
    if stride != 1 or in_channels != planes:
        g.conv(f"{prefix}.downsample.0", planes, 1, stride, src=x)
        shortcut = g.vector(f"{prefix}.downsample.1", "batchnorm")
    g.add(f"{prefix}.add", main, shortcut)
    return g.vector(f"{prefix}.relu2", "relu")


def _bottleneck(g: _Graph, prefix: str, x: str, planes: int, stride: int) -> str:
    expansion = 4
    in_channels = g.shapes[x][0]
    g.conv(f"{prefix}.conv1", planes, 1, src=x)
    g.vector(f"{prefix}.bn1", "batchnorm")
    g.vector(f"{prefix}.relu1", "relu")
    g.conv(f"{prefix}.conv2", planes, 3, stride, 1)  # v1.5: the stride sits on the 3x3 conv
    g.vector(f"{prefix}.bn2", "batchnorm")
    g.vector(f"{prefix}.relu2", "relu")
    g.conv(f"{prefix}.conv3", planes * expansion, 1)
    main = g.vector(f"{prefix}.bn3", "batchnorm")
    shortcut = x
    if stride != 1 or in_channels != planes * expansion:
        g.conv(f"{prefix}.downsample.0", planes * expansion, 1, stride, src=x)
        shortcut = g.vector(f"{prefix}.downsample.1", "batchnorm")
    g.add(f"{prefix}.add", main, shortcut)
    return g.vector(f"{prefix}.relu3", "relu")


def _resnet(name: str, block: Callable[..., str], depths: tuple[int, int, int, int],
            input_shape: Sequence[int], classes: int, batch_size: int) -> Network:
    shape = _image_shape(input_shape)
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    x = _resnet_stem(g)
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for i in range(depth):
            stride = 2 if stage > 1 and i == 0 else 1
            x = block(g, f"layer{stage}.{i}", x, planes, stride)
    g.global_avgpool()
    g.flatten()
    g.linear("fc", classes)
    return g.network(name, batch_size, classes)


def resnet18(input_shape: Sequence[int] = (3, 224, 224), classes: int = 1000, batch_size: int = 32) -> Network:
    """ResNet-18 exactly as ``torchvision.models.resnet18`` (BasicBlock ×[2, 2, 2, 2]).

    Published (torchvision model card): 1.81 GFLOPS (= GMACs) and 11,689,512 parameters at
    224×224. This graph: 1,814,073,344 forward MACs per sample, 11,678,912 weights (the parameters
    minus 9,600 BN affine parameters and the 1,000 fc biases).
    """
    return _resnet("resnet18", _basic_block, (2, 2, 2, 2), input_shape, classes, batch_size)


def resnet50(input_shape: Sequence[int] = (3, 224, 224), classes: int = 1000, batch_size: int = 32) -> Network:
    """ResNet-50 v1.5 exactly as ``torchvision.models.resnet50`` (Bottleneck ×[3, 4, 6, 3], stride
    on the 3×3 conv).

    Published (torchvision model card): 4.09 GFLOPS (= GMACs) and 25,557,032 parameters at
    224×224. This graph: 4,089,184,256 forward MACs per sample, 25,502,912 weights (the parameters
    minus 53,120 BN affine parameters and the 1,000 fc biases).
    """
    return _resnet("resnet50", _bottleneck, (3, 4, 6, 3), input_shape, classes, batch_size)


# --- small trainable networks: CIFAR-style ResNet, inverted residuals, transformer ---------------


def resnet(input_shape: Sequence[int] = (3, 32, 32), classes: int = 10, batch_size: int = 128,
           depth: int = 20, width: int = 16) -> Network:
    """CIFAR-style ResNet (He et al. 2016, section 4.2): ``depth = 6n + 2`` — a 3×3 stem of
    ``width`` channels, three stages of ``n`` basic blocks with ``width``, ``2·width``,
    ``4·width`` channels (the first block of stages 2 and 3 halves the map; its shortcut is a
    strided 1×1 convolution and batch norm), global average pooling and a linear classifier.
    ``depth=20, width=16`` is ResNet-20 (270,896 weights, 40.8 MMACs per 32×32 sample); it also fits
    8×8 digits (maps 8 → 4 → 2). Names as :func:`resnet18`'s blocks: ``layer{s}.{i}.conv1`` …"""
    shape = _image_shape(input_shape)
    depth = _positive_int("depth", depth)
    width = _positive_int("width", width)
    classes, batch_size = _common(classes, batch_size)
    if depth < 8 or (depth - 2) % 6:
        raise GraphError("depth", f"a CIFAR-style ResNet has depth 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}")
    n = (depth - 2) // 6
    g = _Graph(shape)
    g.conv("conv1", width, 3, padding=1)
    g.vector("bn1", "batchnorm")
    x = g.vector("relu", "relu")
    for stage, planes in enumerate((width, 2 * width, 4 * width), start=1):
        for i in range(n):
            x = _basic_block(g, f"layer{stage}.{i}", x, planes, 2 if stage > 1 and i == 0 else 1)
    g.global_avgpool()
    g.flatten()
    g.linear("fc", classes)
    return g.network("resnet", batch_size, classes, depth=depth, width=width)


def mobilenet_small(input_shape: Sequence[int] = (3, 32, 32), classes: int = 10, batch_size: int = 128,
                    width: int = 16, expansion: int = 4) -> Network:
    """A small MobileNetV2-style network of inverted residual blocks (Sandler et al. 2018): a 3×3
    stem of ``width`` channels, then blocks ``(channels, stride)`` of ``(w, 1), (2w, 2), (2w, 1),
    (4w, 2), (4w, 1)`` — each a 1×1 expansion by ``expansion`` (BN, ReLU6), a 3×3 depthwise
    convolution (BN, ReLU6) and a 1×1 linear projection (BN), with a residual ``add`` where the
    stride is 1 and the channels agree — then a 1×1 convolution to ``8·width`` (BN, ReLU6), global
    average pooling and a linear classifier. Fits 8×8 digits and 32×32 images. Names as
    :func:`mobilenet_v2`'s: ``features.{i}.conv.0.0`` …"""
    shape = _image_shape(input_shape)
    width = _positive_int("width", width)
    expansion = _positive_int("expansion", expansion)
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    x = _conv_bn_relu6(g, "features.0", width, 3)
    blocks = ((width, 1), (2 * width, 2), (2 * width, 1), (4 * width, 2), (4 * width, 1))
    for i, (out, stride) in enumerate(blocks, start=1):
        x = _inverted_residual(g, f"features.{i}", x, out, stride, expansion)
    _conv_bn_relu6(g, f"features.{len(blocks) + 1}", 8 * width, 1)
    g.global_avgpool()
    g.flatten()
    g.linear("classifier", classes)
    return g.network("mobilenet_small", batch_size, classes, width=width, expansion=expansion)


def transformer(seq_len: int = 16, vocab: int = 16, batch_size: int = 32, layers: int = 2, d_model: int = 64,
                heads: int = 4, causal: bool = False, ffn: int = 4) -> Network:
    """A transformer (Vaswani et al. 2017) with pre-layer-norm blocks (GPT-2's order) classifying
    every token: token and learned positional ``embedding`` (``vocab × d_model``), then ``layers``
    blocks ``block{i}``: ``ln1 → attn`` (``heads``-head self-attention, ``causal`` for a decoder)
    ``→ add1`` (residual), ``ln2 → ffn.0`` (``d_model → ffn·d_model``) ``→ gelu → ffn.2`` ``→ add2``;
    a final ``ln`` and ``head`` (``d_model → vocab`` per token). Input: ``(seq_len,)`` token ids;
    output ``(seq_len, vocab)``."""
    seq_len = _positive_int("seq_len", seq_len)
    vocab = _positive_int("vocab", vocab)
    n_layers = _positive_int("layers", layers)
    d_model = _positive_int("d_model", d_model)
    heads = _positive_int("heads", heads)
    ffn = _positive_int("ffn", ffn)
    if not isinstance(causal, bool):
        raise GraphError("causal", f"must be true or false, got {causal!r}")
    _, batch_size = _common(vocab, batch_size)
    if d_model % heads:
        raise GraphError("heads", f"heads={heads} must divide d_model={d_model}")
    g = _Graph((seq_len,))
    x = g.append(embedding_layer("embedding", (seq_len,), vocab, d_model, True))
    for i in range(n_layers):
        p = f"block{i}"
        g.vector(f"{p}.ln1", "layernorm", src=x)
        attn = g.extend(attention_layers(f"{p}.attn", (seq_len, d_model), heads, causal, inputs=(f"{p}.ln1",)))
        res = g.add(f"{p}.add1", attn, x)
        g.vector(f"{p}.ln2", "layernorm", src=res)
        g.linear(f"{p}.ffn.0", ffn * d_model)
        g.vector(f"{p}.gelu", "gelu")
        out = g.linear(f"{p}.ffn.2", d_model)
        x = g.add(f"{p}.add2", out, res)
    g.vector("ln", "layernorm", src=x)
    g.linear("head", vocab)
    return g.network("transformer", batch_size, vocab, seq_len=seq_len, layers=n_layers, d_model=d_model,
                     heads=heads, causal=causal, ffn=ffn)


# --- MobileNetV2 (torchvision) -------------------------------------------------------------------

#: torchvision's inverted-residual setting: expansion t, output channels c, repeats n, stride s.
_MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(g: _Graph, prefix: str, out: int, kernel: int, stride: int = 1, groups: int = 1) -> str:
    """torchvision ``Conv2dNormActivation``: ``{prefix}.0`` conv, ``.1`` BN, ``.2`` ReLU6."""
    g.conv(f"{prefix}.0", out, kernel, stride, (kernel - 1) // 2, groups)
    g.vector(f"{prefix}.1", "batchnorm")
    return g.vector(f"{prefix}.2", "relu6")


def _inverted_residual(g: _Graph, prefix: str, x: str, out: int, stride: int, expansion: int) -> str:
    """MobileNetV2's block: ``conv.0`` 1×1 expansion (BN, ReLU6; absent when ``expansion`` is 1),
    the 3×3 depthwise ``conv.1`` (BN, ReLU6), the 1×1 projection and its BN, a residual ``add`` when
    the stride is 1 and the channels agree."""
    inp = g.shapes[x][0]
    hidden = int(round(inp * expansion))
    j = 0
    if expansion != 1:
        _conv_bn_relu6(g, f"{prefix}.conv.{j}", hidden, 1)
        j += 1
    _conv_bn_relu6(g, f"{prefix}.conv.{j}", hidden, 3, stride, groups=hidden)
    g.conv(f"{prefix}.conv.{j + 1}", out, 1)
    y = g.vector(f"{prefix}.conv.{j + 2}", "batchnorm")
    if stride == 1 and inp == out:
        y = g.add(f"{prefix}.add", y, x)
    return y


def mobilenet_v2(input_shape: Sequence[int] = (3, 224, 224), classes: int = 1000, batch_size: int = 32) -> Network:
    """MobileNetV2 (width 1.0) exactly as ``torchvision.models.mobilenet_v2``.

    Depthwise convolutions are ``conv2d`` layers with ``groups = channels``; activations are
    ``relu6``; the projection (pw-linear) conv has no activation; a residual ``add`` joins blocks
    with stride 1 and equal channels. Published: 300M multiply-adds (Sandler et al., 2018, Table 3;
    torchvision model card 0.30 GFLOPS) and 3,504,872 parameters at 224×224. This graph:
    300,774,272 forward MACs per sample, 3,469,760 weights (the parameters minus 34,112 BN affine
    parameters and the 1,000 classifier biases).
    """
    shape = _image_shape(input_shape)
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    x = _conv_bn_relu6(g, "features.0", 32, 3, stride=2)
    index = 1
    for t, c, n, s in _MOBILENET_V2_SETTING:
        for i in range(n):
            x = _inverted_residual(g, f"features.{index}", x, c, s if i == 0 else 1, t)
            index += 1
    _conv_bn_relu6(g, f"features.{index}", 1280, 1)
    g.global_avgpool()
    g.flatten()
    g.linear("classifier.1", classes)  # classifier.0 is Dropout
    return g.network("mobilenet_v2", batch_size, classes, width_mult=1.0)


# --- VGG-16 (torchvision, no batchnorm) ----------------------------------------------------------

_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(input_shape: Sequence[int] = (3, 224, 224), classes: int = 1000, batch_size: int = 32) -> Network:
    """VGG-16 (configuration D, no batchnorm) as ``torchvision.models.vgg16``.

    13 conv3×3 (pad 1) + ReLU, 5 maxpools, then the classifier ``classifier.0`` 25088→4096,
    ReLU, ``classifier.3`` 4096→4096, ReLU, ``classifier.6`` 4096→classes (dropouts omitted).
    torchvision's ``AdaptiveAvgPool2d((7, 7))`` is the identity at 224×224 and is left out; for
    other inputs an ``avgpool`` layer reducing the final map to 7×7 is inserted when both sides
    are multiples of 7, otherwise the classifier reads the flattened map as it is (deviation:
    torchvision would average/replicate into 7×7 bins, e.g. 1×1 → 7×7 at 32×32, changing the
    first classifier layer's width). Published (torchvision model card): 15.47 GFLOPS (= GMACs)
    and 138,357,544 parameters at 224×224. This graph: 15,470,264,320 forward MACs per sample,
    138,344,128 weights (the parameters minus 13,416 biases).
    """
    shape = _image_shape(input_shape)
    classes, batch_size = _common(classes, batch_size)
    g = _Graph(shape)
    index = 0
    for item in _VGG16_CFG:
        if item == "M":
            g.pool(f"features.{index}", "maxpool", 2, 2)
            index += 1
        else:
            g.conv(f"features.{index}", int(item), 3, padding=1)
            g.vector(f"features.{index + 1}", "relu")
            index += 2
    _, h, w = g.shape
    if (h, w) != (7, 7) and h % 7 == 0 and w % 7 == 0:
        g.pool("avgpool", "avgpool", (h // 7, w // 7))
    g.flatten()
    g.linear("classifier.0", 4096)
    g.vector("classifier.1", "relu")
    g.linear("classifier.3", 4096)
    g.vector("classifier.4", "relu")
    g.linear("classifier.6", classes)
    return g.network("vgg16", batch_size, classes)


# --- BERT-base encoder ---------------------------------------------------------------------------


def bert_base(seq_len: int = 128, classes: int = 2, batch_size: int = 8, hidden: int = 768, layers: int = 12,
              heads: int = 12, intermediate: int = 3072, vocab: int = 30522) -> Network:
    """BERT-base encoder + sequence-classification head, as GEMMs (Hugging Face ``BertModel``
    module names).

    The network input is ``(seq_len,)`` token ids. ``embeddings`` gathers word vectors
    (``vocab × hidden``) and adds learned positions (token-type embeddings are omitted: one segment),
    then ``embeddings.LayerNorm``. Per encoder layer ``encoder.layer.{i}``:
    ``attention.self.query/key/value`` (hidden→hidden, all reading the layer input),
    ``attention.self.scores`` (``matmul`` Q·Kᵀ, m=n=seq, k=hidden/heads, ×heads),
    ``attention.self.softmax`` (scaled by 1/√(hidden/heads); no padding mask: every token is
    real), ``attention.self.context`` (``matmul`` P·V, m=seq, n=hidden/heads, k=seq, ×heads),
    ``attention.output.dense``, ``attention.output.add``, ``attention.output.LayerNorm``,
    ``intermediate.dense`` (hidden→intermediate), ``intermediate.gelu``, ``output.dense``
    (intermediate→hidden), ``output.add``, ``output.LayerNorm``. Dropouts are omitted.

    Head: ``pooler.select`` keeps token 0 ([CLS]), ``pooler.dense`` (hidden→hidden),
    ``pooler.activation`` and ``classifier`` (hidden→classes). The pooler's tanh is modelled as a
    ``gelu`` layer (same vector-unit cost class; there is no ``tanh`` layer type).

    MACs per sample: per encoder layer ``4·s·h² + 2·s·h·i + 2·s²·h`` (Q, K, V, output projection;
    the two FFN GEMMs; the two attention products), plus ``h² + h·classes`` for the head. At
    s=128, h=768, i=3072: 931,135,488 per layer, 11,174,217,216 in all (≈ 11.2 GMAC, i.e.
    ≈ 22.3 GFLOP per 128-token sequence at 2 FLOP per MAC). Weights: 85,526,016 in the GEMM
    layers (12 × 7,077,888 + 589,824 + 1,536) and 23,539,200 in the embedding tables
    (30,522 × 768 words + 128 × 768 positions); the published 110M parameters add the 512-position
    and token-type tables, biases and LayerNorm parameters.
    """
    seq_len = _positive_int("seq_len", seq_len)
    hidden = _positive_int("hidden", hidden)
    n_layers = _positive_int("layers", layers)
    heads = _positive_int("heads", heads)
    intermediate = _positive_int("intermediate", intermediate)
    vocab = _positive_int("vocab", vocab)
    classes, batch_size = _common(classes, batch_size)
    if hidden % heads:
        raise GraphError("heads", f"heads={heads} must divide hidden={hidden}")
    head_dim = hidden // heads
    g = _Graph((seq_len,))
    g.append(embedding_layer("embeddings", (seq_len,), vocab, hidden, True))
    x = g.vector("embeddings.LayerNorm", "layernorm")
    for i in range(n_layers):
        p = f"encoder.layer.{i}"
        q = g.linear(f"{p}.attention.self.query", hidden, src=x)
        k = g.linear(f"{p}.attention.self.key", hidden, src=x)
        v = g.linear(f"{p}.attention.self.value", hidden, src=x)
        scores = g.append(Layer(
            f"{p}.attention.self.scores", "matmul", g.shapes[q], (heads, seq_len, seq_len),
            m=seq_len, n=seq_len, k=head_dim, count=heads, inputs=(q, k), transpose_b=True,
        ))
        probs = g.append(softmax_layer(f"{p}.attention.self.softmax", g.shapes[scores], scale=head_dim ** -0.5))
        g.append(Layer(
            f"{p}.attention.self.context", "matmul", g.shapes[probs], (seq_len, hidden),
            m=seq_len, n=head_dim, k=seq_len, count=heads, inputs=(probs, v),
        ))
        attn = g.linear(f"{p}.attention.output.dense", hidden)
        g.add(f"{p}.attention.output.add", attn, x)
        ln1 = g.vector(f"{p}.attention.output.LayerNorm", "layernorm")
        g.linear(f"{p}.intermediate.dense", intermediate)
        g.vector(f"{p}.intermediate.gelu", "gelu")
        ffn = g.linear(f"{p}.output.dense", hidden)
        g.add(f"{p}.output.add", ffn, ln1)
        x = g.vector(f"{p}.output.LayerNorm", "layernorm")
    g.append(select_layer("pooler.select", g.shapes[x], 0))
    g.linear("pooler.dense", hidden)
    g.vector("pooler.activation", "gelu")  # tanh in BERT
    g.linear("classifier", classes)
    return g.network(
        "bert_base", batch_size, classes, seq_len=seq_len, hidden=hidden, layers=n_layers, heads=heads,
        intermediate=intermediate, vocab=vocab,
    )


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: its builder, defaults and the extra keyword parameters the builder takes."""

    name: str
    builder: Callable[..., Network]
    description: str
    default_input: tuple[int, ...]
    default_classes: int
    params: tuple[str, ...] = ()


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("mlp", mlp, "MLP 64→128→10 for 8×8 digits (9,472 MACs/sample)", (64,), 10, ("hidden",)),
        ZooEntry("cnn", cnn, "2-conv CNN for 8×8 digits (84,224 MACs/sample)", (1, 8, 8), 10, ("channels",)),
        ZooEntry("resnet18", resnet18, "ResNet-18, torchvision (1.81 GMAC/sample at 224×224)", (3, 224, 224), 1000),
        ZooEntry("resnet50", resnet50, "ResNet-50 v1.5, torchvision (4.09 GMAC/sample at 224×224)", (3, 224, 224),
                 1000),
        ZooEntry("mobilenet_v2", mobilenet_v2, "MobileNetV2 1.0, torchvision (0.30 GMAC/sample at 224×224)",
                 (3, 224, 224), 1000),
        ZooEntry("vgg16", vgg16, "VGG-16 without BN, torchvision (15.47 GMAC/sample at 224×224)", (3, 224, 224),
                 1000),
        ZooEntry("bert_base", bert_base, "BERT-base encoder + classifier head on token ids "
                 "(11.2 GMAC/sample at 128 tokens); input is (seq_len,)", (128,), 2,
                 ("seq_len", "hidden", "layers", "heads", "intermediate", "vocab")),
        ZooEntry("resnet", resnet, "CIFAR-style ResNet, depth 6n+2 (ResNet-20: 40.8 MMAC/sample at 32×32); "
                 "fits 8×8 digits", (3, 32, 32), 10, ("depth", "width")),
        ZooEntry("mobilenet_small", mobilenet_small, "small MobileNetV2-style net of inverted residual blocks",
                 (3, 32, 32), 10, ("width", "expansion")),
        ZooEntry("transformer", transformer, "transformer encoder/decoder classifying every token; "
                 "input is (seq_len,) token ids", (16,), 16,
                 ("seq_len", "vocab", "layers", "d_model", "heads", "causal", "ffn")),
    )
}


def zoo_names() -> list[str]:
    """The known zoo model names, sorted."""
    return sorted(ZOO)


def _normalize(name: str) -> str:
    """Case, ``-``, ``_`` and spaces do not matter: ``ResNet-18`` and ``mobilenet-v2`` are found."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _lookup(name: str) -> ZooEntry:
    if not isinstance(name, str):
        raise KeyError(f"zoo model name must be a string, got {name!r}; known models: {', '.join(zoo_names())}")
    key = _normalize(name)
    for entry in ZOO.values():
        if _normalize(entry.name) == key:
            return entry
    close = difflib.get_close_matches(name.strip().lower(), zoo_names(), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise KeyError(f"unknown zoo model {name!r}{hint}; known models: {', '.join(zoo_names())}")


def build_zoo_model(name: str, *, input_shape: Sequence[int] | None = None, classes: int | None = None,
                    batch_size: int, **params: object) -> Network:
    """Build zoo model ``name`` (case, ``-`` and ``_`` are ignored: ``ResNet-18`` is ``resnet18``).

    ``input_shape`` and ``classes`` default to the entry's ``default_input`` and
    ``default_classes``; ``params`` are the entry's extra builder parameters (``ZooEntry.params``).
    For ``bert_base`` and ``transformer`` the input is the token count: ``input_shape=(seq_len,)``,
    or omit it and pass ``seq_len=``; giving both with different values is an error. A
    transformer classifies every token over its vocabulary: ``classes`` is its ``vocab``.

    Raises ``KeyError`` (known names and the closest match) for an unknown model, and
    ``GraphError`` for an unknown parameter (naming it and the allowed ones) or a bad value.
    """
    entry = _lookup(name)
    unknown = [key for key in params if key not in entry.params]
    if unknown:
        allowed = ", ".join(entry.params) if entry.params else "none"
        raise GraphError(
            unknown[0],
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for zoo model "
            f"{entry.name!r}; allowed parameters: {allowed} (plus input_shape, classes, batch_size)",
        )
    if entry.name in ("bert_base", "transformer"):   # token models: the input is (seq_len,)
        if input_shape is not None:
            shape = _int_tuple("input_shape", input_shape)
            if len(shape) != 1:
                raise GraphError("input_shape", f"{entry.name} takes input_shape (seq_len,), got {list(shape)}")
            if "seq_len" in params and params["seq_len"] != shape[0]:
                raise GraphError("seq_len", f"seq_len={params['seq_len']!r} contradicts input_shape {list(shape)}")
            params = {**params, "seq_len": shape[0]}
        if entry.name == "transformer":   # every token is classified over the vocabulary
            if classes is not None and "vocab" in params and params["vocab"] != classes:
                raise GraphError("vocab", f"vocab={params['vocab']!r} contradicts classes={classes!r}")
            if classes is not None:
                params = {**params, "vocab": classes}
            return entry.builder(batch_size=batch_size, **params)
        classes = entry.default_classes if classes is None else classes
        return entry.builder(classes=classes, batch_size=batch_size, **params)
    classes = entry.default_classes if classes is None else classes
    shape = entry.default_input if input_shape is None else input_shape
    return entry.builder(input_shape=shape, classes=classes, batch_size=batch_size, **params)
