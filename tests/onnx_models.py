"""Small ONNX models built with ``onnx.helper`` (no framework), as ``torch.onnx.export`` writes them:
a residual CNN block with batch norm, an MLP of Gemms, a transformer block (heads split by
Reshape/Transpose, GELU in its erf form) and a depthwise-separable block. Weights are seeded."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Graph:
    """Nodes and initializers collected in order; :meth:`model` makes the ModelProto."""

    def __init__(self, seed: int = 0):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def init(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, name: str, shape: tuple[int, ...], scale: float | None = None) -> str:
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
        scale = scale if scale is not None else 1 / math.sqrt(fan_in)
        return self.init(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op: str, inputs: list[str], name: str | None = None, outputs: int = 1, **attrs) -> str | list[str]:
        self.count += 1
        name = name or f"{op.lower()}_{self.count}"
        outs = [f"{name}_out{i}" if i else f"{name}_out" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def model(self, x_shape: list, out: str, out_shape: list, opset: int = OPSET) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)
        graph = helper.make_graph(self.nodes, "g", [x], [y], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def bn(g: Graph, x: str, c: int, name: str) -> str:
    rng = g.rng
    return g.node("BatchNormalization", [
        x, g.init(f"{name}.scale", (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)),
        g.init(f"{name}.bias", (0.1 * rng.standard_normal(c)).astype(np.float32)),
        g.init(f"{name}.mean", (0.1 * rng.standard_normal(c)).astype(np.float32)),
        g.init(f"{name}.var", (1 + 0.2 * rng.random(c)).astype(np.float32)),
    ], name=name, epsilon=1e-5)


def resnet_block(batch: int | str = "N", classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """The DESIGN.md graph example: conv-bn-relu, conv-bn, residual add, relu, pool, linear."""
    g = Graph(seed)
    h = g.node("Conv", ["x", g.weight("stem.w", (16, 1, 3, 3)), g.weight("stem.b", (16,), 0.1)], name="stem",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = bn(g, h, 16, "bn0")
    a0 = g.node("Relu", [h], name="a0")
    h = g.node("Conv", [a0, g.weight("conv1.w", (16, 16, 3, 3))], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b1 = bn(g, h, 16, "b1")
    h = g.node("Add", [b1, a0], name="res")
    h = g.node("Relu", [h], name="a1")
    h = g.node("GlobalAveragePool", [h], name="pool")
    h = g.node("Flatten", [h], name="flat", axis=1)
    h = g.node("Gemm", [h, g.weight("fc.w", (classes, 16)), g.weight("fc.b", (classes,), 0.1)], name="fc", transB=1)
    return g.model([batch, 1, 8, 8], h, [batch, classes])


RESNET_BLOCK_YAML = """\
version: 1
name: block
model:
  input: [1, 8, 8]
  layers:
    - {name: stem, type: conv2d, out: 16, kernel: 3, padding: 1}
    - {type: batchnorm}
    - {name: a0, type: relu}
    - {type: conv2d, out: 16, kernel: 3, padding: 1}
    - {name: b1, type: batchnorm}
    - {type: add, inputs: [b1, a0]}
    - {type: relu}
    - {type: avgpool, kernel: 8}
    - {type: flatten}
    - {type: linear, out: 10}
data: {batch_size: 4}
"""


def mlp(batch: int | str = "N", sizes: tuple[int, ...] = (64, 32, 10), seed: int = 1) -> onnx.ModelProto:
    """Gemm (transB 0, bias as C), Relu, Gemm (transB 1, bias as an Add after it)."""
    g = Graph(seed)
    h = g.node("Gemm", ["x", g.weight("fc1.w", (sizes[0], sizes[1]), 1 / math.sqrt(sizes[0])),
                        g.weight("fc1.b", (sizes[1],), 0.1)], name="fc1")
    h = g.node("Relu", [h], name="relu1")
    h = g.node("Gemm", [h, g.weight("fc2.w", (sizes[2], sizes[1]))], name="fc2", transB=1)
    h = g.node("Add", [h, g.weight("fc2.b", (sizes[2],), 0.1)], name="fc2_bias")
    return g.model([batch, sizes[0]], h, [batch, sizes[2]])


def _erf_gelu(g: Graph, x: str, name: str) -> str:
    """GELU as torch.onnx.export writes nn.GELU(): x/√2, Erf, +1, ·x, ·0.5."""
    h = g.node("Div", [x, g.init(f"{name}.sqrt2", np.array(math.sqrt(2), np.float32))], name=f"{name}.div")
    h = g.node("Erf", [h], name=f"{name}.erf")
    h = g.node("Add", [h, g.init(f"{name}.one", np.array(1.0, np.float32))], name=f"{name}.add")
    h = g.node("Mul", [x, h], name=f"{name}.mul")
    return g.node("Mul", [h, g.init(f"{name}.half", np.array(0.5, np.float32))], name=f"{name}.mul2")


def transformer_block(batch: int | str = "N", tokens: int = 8, d: int = 16, heads: int = 2, hidden: int = 32,
                      gelu: str = "erf", scale: str = "div", seed: int = 2) -> onnx.ModelProto:
    """Pre-norm encoder block: LN, Q/K/V (MatMul + bias Add), heads split by Reshape and Transpose
    (Kᵀ by one Transpose to (0, 2, 3, 1)), Q·Kᵀ / √dh, Softmax, ·V, heads merged, output projection,
    residual; LN, MLP with GELU (``gelu``: "erf" pattern, or "op" / "tanh" for the Gelu op), residual.
    ``scale="qk"`` scales Q and Kᵀ by dh^-¼ each before their product (as PyTorch exports
    ``scaled_dot_product_attention``) instead of dividing the scores by √dh."""
    g = Graph(seed)
    dh = d // heads

    def ln(x: str, name: str) -> str:
        return g.node("LayerNormalization", [
            x, g.init(f"{name}.w", (1 + 0.1 * g.rng.standard_normal(d)).astype(np.float32)),
            g.init(f"{name}.b", (0.1 * g.rng.standard_normal(d)).astype(np.float32)),
        ], name=name, axis=-1, epsilon=1e-5)

    def linear(x: str, n_in: int, n_out: int, name: str) -> str:
        h = g.node("MatMul", [x, g.weight(f"{name}.w", (n_in, n_out), 1 / math.sqrt(n_in))], name=name)
        return g.node("Add", [h, g.weight(f"{name}.b", (n_out,), 0.1)], name=f"{name}.bias")

    split = g.init("split_shape", np.array([0, tokens, heads, dh], np.int64))
    merge = g.init("merge_shape", np.array([0, tokens, d], np.int64))
    h1 = ln("x", "ln1")
    q = g.node("Transpose", [g.node("Reshape", [linear(h1, d, d, "q"), split], name="q.split")], name="q.heads", perm=[0, 2, 1, 3])
    k = g.node("Transpose", [g.node("Reshape", [linear(h1, d, d, "k"), split], name="k.split")], name="k.heads", perm=[0, 2, 3, 1])
    v = g.node("Transpose", [g.node("Reshape", [linear(h1, d, d, "v"), split], name="v.split")], name="v.heads", perm=[0, 2, 1, 3])
    if scale == "qk":
        root = g.init("root_scale", np.array(dh ** -0.25, np.float32))
        q, k = g.node("Mul", [q, root], name="q.scale"), g.node("Mul", [k, root], name="k.scale")
    s = g.node("MatMul", [q, k], name="scores")
    if scale == "div":
        s = g.node("Div", [s, g.init("sqrt_dh", np.array(math.sqrt(dh), np.float32))], name="scale")
    p = g.node("Softmax", [s], name="probs", axis=-1)
    c = g.node("MatMul", [p, v], name="context")
    c = g.node("Reshape", [g.node("Transpose", [c], name="merge.t", perm=[0, 2, 1, 3]), merge], name="merge")
    o = linear(c, d, d, "out")
    r1 = g.node("Add", [o, "x"], name="res1")
    h2 = ln(r1, "ln2")
    f = linear(h2, d, hidden, "fc1")
    if gelu == "erf":
        f = _erf_gelu(g, f, "gelu")
    else:
        f = g.node("Gelu", [f], name="gelu", approximate="none" if gelu == "op" else "tanh")
    f = linear(f, hidden, d, "fc2")
    out = g.node("Add", [f, r1], name="res2")
    return g.model([batch, tokens, d], out, [batch, tokens, d], opset=20 if gelu != "erf" else OPSET)


TRANSFORMER_YAML = """\
version: 1
name: block
model:
  input: [8, 16]
  layers:
    - {name: ln1, type: layernorm}
    - {name: att, type: attention, heads: 2, inputs: [ln1]}
    - {name: res1, type: add, inputs: [att, input]}
    - {type: layernorm}
    - {type: linear, out: 32}
    - {type: gelu}
    - {name: fc2, type: linear, out: 16}
    - {type: add, inputs: [fc2, res1]}
data: {batch_size: 4}
"""


def depthwise_block(batch: int | str = "N", c: int = 8, out: int = 16, seed: int = 3) -> onnx.ModelProto:
    """MobileNet's separable block: depthwise 3×3 (stride 2) + BN + ReLU6 (Clip), pointwise 1×1 + BN."""
    g = Graph(seed)
    h = g.node("Conv", ["x", g.weight("dw.w", (c, 1, 3, 3))], name="dw", group=c, kernel_shape=[3, 3],
               pads=[1, 1, 1, 1], strides=[2, 2])
    h = bn(g, h, c, "dw.bn")
    h = g.node("Clip", [h, g.init("zero", np.array(0.0, np.float32)), g.init("six", np.array(6.0, np.float32))], name="relu6")
    h = g.node("Conv", [h, g.weight("pw.w", (out, c, 1, 1))], name="pw", kernel_shape=[1, 1])
    h = bn(g, h, out, "pw.bn")
    return g.model([batch, c, 16, 16], h, [batch, out, 8, 8])


def branch_block(batch: int | str = "N", seed: int = 4) -> onnx.ModelProto:
    """Two branches joined by Concat (a 1×1 conv, and a 3×3 max pool with padding), an average pool
    counting its padding, Squeeze to a vector (PyTorch's ``x.squeeze(-1).squeeze(-1)``), Gemm."""
    g = Graph(seed)
    a = g.node("Conv", ["x", g.weight("a.w", (6, 4, 1, 1)), g.weight("a.b", (6,), 0.1)], name="a", kernel_shape=[1, 1])
    b = g.node("MaxPool", ["x"], name="b", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    h = g.node("Concat", [a, b], name="cat", axis=1)
    h = g.node("AveragePool", [h], name="avg", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    h = g.node("GlobalMaxPool", [h], name="gmax")
    h = g.node("Squeeze", [h, g.init("axes", np.array([2, 3], np.int64))], name="squeeze")
    h = g.node("Gemm", [h, g.weight("fc.w", (10, 5))], name="fc")
    return g.model([batch, 4, 8, 8], h, [batch, 5])
