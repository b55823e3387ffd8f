"""ONNX import: models built with ``onnx.helper`` become accelsim networks layer by layer (types,
shapes, MACs by hand), trace exactly like the same network written in YAML or taken from the zoo,
compute what ONNX's reference evaluator computes from the same initializers, train from them, and
refuse what accelsim cannot map with one line naming the node."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import onnx_models as om
from accelsim import api
from accelsim.errors import InputError
from accelsim.nn.datasets import load_dataset
from accelsim.nn.model import build_model, initial_params_digest
from accelsim.nn.train import training_key
from accelsim.spec import load as spec_load
from accelsim.spec.models import TrainingSpec
from accelsim.workload.builder import build_step
from accelsim.workload.graph import GraphError
from accelsim.workload.model import build_network
from accelsim.workload.onnx_import import identity_view, import_onnx, reshape_view, transpose_view
from accelsim.workload.zoo import build_zoo_model

from conftest import HWCONFIGS, write

INT4 = spec_load.resolved_policy("int4", "t", "precision")


def onnx_net(tmp_path: Path, model: onnx.ModelProto, batch: int | None = 4, params: bool = False, name: str = "m"):
    path = om.save(model, tmp_path / f"{name}.onnx")
    return import_onnx(path, name=name, batch_size=batch, with_params=params)


def yaml_net(tmp_path: Path, text: str):
    path = write(tmp_path / "w.yaml", text)
    spec = api.load_workload(path)
    return build_network(spec, str(path), tmp_path)


def anonymous_trace(net, phases: str) -> list[dict]:
    """The ops of one step with each layer name replaced by the layer's position."""
    index = {layer.name: i for i, layer in enumerate(net.layers)}
    ops = []
    for op in build_step(net, INT4, phases=phases).ops:
        d = dataclasses.asdict(op)
        d["layer"] = index.get(d["layer"], d["layer"])
        ops.append(d)
    return ops


def summary(net) -> list[tuple]:
    return [(layer.type, layer.in_shape, layer.out_shape) for layer in net.layers]


# --------------------------------------------------------------------------------------------
# models, layer by layer


def test_resnet_block_maps_layer_by_layer_and_traces_like_its_yaml(tmp_path):
    """Conv+bias, BatchNormalization, residual Add, GlobalAveragePool, Flatten, Gemm(transB) map to
    the DESIGN.md graph example; MACs by hand; the trace equals the YAML block's, op for op."""
    net = onnx_net(tmp_path, om.resnet_block())
    assert [layer.name for layer in net.layers] == [
        "stem", "bn0", "a0", "conv1", "b1", "res", "a1", "pool", "pool.flatten", "fc"]
    assert summary(net) == [
        ("conv2d", (1, 8, 8), (16, 8, 8)), ("batchnorm", (16, 8, 8), (16, 8, 8)), ("relu", (16, 8, 8), (16, 8, 8)),
        ("conv2d", (16, 8, 8), (16, 8, 8)), ("batchnorm", (16, 8, 8), (16, 8, 8)), ("add", (16, 8, 8), (16, 8, 8)),
        ("relu", (16, 8, 8), (16, 8, 8)), ("avgpool", (16, 8, 8), (16, 1, 1)), ("flatten", (16, 1, 1), (16,)),
        ("linear", (16,), (10,)),
    ]
    stem, conv1, res = net.layers[0], net.layers[3], net.layers[5]
    assert (stem.kernel, stem.padding, stem.stride) == ((3, 3), (1, 1), (1, 1))
    assert res.inputs == ("b1", "a0")
    # forward MACs for a batch of 4: 4·64 positions × (16 × 9) + (16 × 144), plus 4 × 16 × 10
    assert net.forward_macs() == 4 * 64 * 16 * 9 + 4 * 64 * 16 * 144 + 4 * 16 * 10 == 627_328
    assert conv1.gemm_dims(4) == (256, 16, 144, 1)
    reference = yaml_net(tmp_path, om.RESNET_BLOCK_YAML)
    assert summary(net) == summary(reference) and net.forward_macs() == reference.forward_macs()
    for phases in ("training", "inference"):
        assert anonymous_trace(net, phases) == anonymous_trace(reference, phases)


def test_mlp_of_gemms_is_the_zoo_mlp(tmp_path):
    """Gemm with transB 0 and its bias as C, Gemm with transB 1 and its bias as a following Add
    (folded): the zoo's mlp 64 → 32 → 10, layer for layer (names included)."""
    net = onnx_net(tmp_path, om.mlp(), batch=8)
    zoo = build_zoo_model("mlp", input_shape=(64,), classes=10, batch_size=8, hidden=(32,))
    assert net.layers == zoo.layers and net.input_shape == zoo.input_shape and net.classes == 10
    assert net.forward_macs() == 8 * (64 * 32 + 32 * 10) == 18_944
    assert anonymous_trace(net, "training") == anonymous_trace(zoo, "training")


def test_transformer_block_heads_and_attention(tmp_path):
    """LayerNormalization, Q/K/V MatMul + bias, heads split by Reshape+Transpose (Kᵀ by a single
    Transpose), Q·Kᵀ/√dh, Softmax, ·V, heads merged, GELU in its erf form: the primitives of
    accelsim's attention layer, the same trace as the YAML block with ``attention {heads: 2}``."""
    net = onnx_net(tmp_path, om.transformer_block())
    types = [layer.type for layer in net.layers]
    assert types == ["layernorm", "linear", "linear", "linear", "matmul", "softmax", "matmul", "linear", "add",
                     "layernorm", "linear", "gelu", "linear", "add"]
    by = {layer.name: layer for layer in net.layers}
    scores, probs, context = by["scores"], by["probs"], by["context"]
    assert (scores.m, scores.n, scores.k, scores.count, scores.transpose_b) == (8, 8, 8, 2, True)
    assert scores.inputs == ("q", "k") and scores.out_shape == (2, 8, 8)
    assert probs.scale == pytest.approx(1 / math.sqrt(8)) and probs.out_shape == (2, 8, 8)
    assert (context.m, context.n, context.k, context.count, context.transpose_b) == (8, 8, 8, 2, False)
    assert context.inputs == ("probs", "v") and context.out_shape == (8, 16)  # heads merged for `out`
    assert by["gelu.erf"].type == "gelu" and by["res1"].inputs == ("out", "input")
    # 4 samples: six projections of 8 tokens (4 of 16×16, 16×32, 32×16) and two products per head
    b, t, d, h, dh, f = 4, 8, 16, 2, 8, 32
    assert net.forward_macs() == b * t * (4 * d * d + 2 * d * f) + 2 * b * h * t * t * dh == 73_728
    reference = yaml_net(tmp_path, om.TRANSFORMER_YAML)
    assert summary(net) == summary(reference)
    for phases in ("training", "inference"):
        assert anonymous_trace(net, phases) == anonymous_trace(reference, phases)


def test_depthwise_separable_block(tmp_path):
    """Conv with group = channels (stride 2, pad 1), Clip 0..6 as relu6, a 1×1 conv."""
    net = onnx_net(tmp_path, om.depthwise_block())
    dw, _, relu6, pw, _ = net.layers
    assert (dw.type, dw.groups, dw.stride, dw.out_shape) == ("conv2d", 8, (2, 2), (8, 8, 8))
    assert dw.gemm_dims(4) == (4 * 64, 1, 9, 8) and dw.macs(4) == 4 * 64 * 9 * 8
    assert relu6.type == "relu6" and pw.is_pointwise_conv and pw.macs(4) == 4 * 64 * 16 * 8
    assert net.forward_macs() == 4 * 64 * 9 * 8 + 4 * 64 * 16 * 8 == 51_200


def test_branches_concat_and_pools(tmp_path):
    """Concat of a 1×1 conv and a padded max pool, an average pool counting its padding, a global
    max pool and Squeeze to a vector (a flatten layer), then Gemm."""
    net = onnx_net(tmp_path, om.branch_block())
    assert summary(net) == [
        ("conv2d", (4, 8, 8), (6, 8, 8)), ("maxpool", (4, 8, 8), (4, 8, 8)), ("concat", (6, 8, 8), (10, 8, 8)),
        ("avgpool", (10, 8, 8), (10, 4, 4)), ("maxpool", (10, 4, 4), (10, 1, 1)), ("flatten", (10, 1, 1), (10,)),
        ("linear", (10,), (5,)),
    ]
    b, cat, avg = net.layers[1], net.layers[2], net.layers[3]
    assert b.inputs == ("input",) and cat.inputs == ("a", "b") and cat.axis == 0
    assert (b.kernel, b.stride, b.padding) == ((3, 3), (1, 1), (1, 1))
    assert (avg.kernel, avg.stride, avg.padding) == ((3, 3), (2, 2), (1, 1))
    assert net.forward_macs() == 4 * (64 * 6 * 4 + 10 * 5)


def test_views_follow_reshapes_and_transposes():
    """A head split and merge is the identity; a transpose is its own inverse; a reshape that cuts
    an axis unevenly has no view."""
    base = identity_view("x", (8, 16))
    split = transpose_view(reshape_view(base, (8, 2, 8), "r"), (1, 0, 2), "t")
    assert split.shape == (2, 8, 8) and split.key() != base.key()
    merged = reshape_view(transpose_view(split, (1, 0, 2), "t"), (8, 16), "r")
    assert merged.key() == base.key()
    assert transpose_view(transpose_view(split, (0, 2, 1), ""), (0, 2, 1), "").key() == split.key()
    assert reshape_view(base, (128,), "").contiguous and not split.contiguous
    # (16, 8) = xᵀ read as (4, 32): four rows of xᵀ each, a view; (6, 4)ᵀ = (4, 6) read as (3, 8) is none
    assert reshape_view(transpose_view(base, (1, 0), ""), (4, 32), "").shape == (4, 32)
    assert reshape_view(transpose_view(identity_view("x", (6, 4)), (1, 0), ""), (3, 8), "") is None


# --------------------------------------------------------------------------------------------
# numerics: the file's initializers, as ONNX computes with them


@pytest.mark.parametrize("make, shape, tol", [
    (om.resnet_block, (4, 1, 8, 8), 1e-5),
    (om.mlp, (4, 64), 1e-5),
    (lambda: om.transformer_block(gelu="tanh"), (4, 8, 16), 1e-5),
    (om.transformer_block, (4, 8, 16), 1e-3),  # GELU's erf form; accelsim's gelu is the tanh approximation
    (lambda: om.transformer_block(gelu="op", scale="qk"), (4, 8, 16), 1e-3),
    (om.depthwise_block, (4, 8, 16, 16), 1e-5),
    (om.branch_block, (4, 4, 8, 8), 1e-5),
], ids=["resnet-block", "mlp", "transformer-tanh-gelu", "transformer-erf-gelu", "transformer-sdpa", "depthwise", "branches"])
def test_model_computes_what_onnx_computes(tmp_path, make, shape, tol):
    """The trainable model built from the imported network (its weights from the file, batch-norm
    running statistics included) gives ONNX's reference evaluator's output (eval mode), whatever
    the seed of the initialisation it replaces."""
    model = make()
    net = onnx_net(tmp_path, model, params=True)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    for seed in (0, 1):
        ours = build_model(net, np.random.default_rng(seed)).forward(x, training=False)
        np.testing.assert_allclose(ours, expected, atol=tol, rtol=0)


TRAINED_YAML = """\
version: 1
name: mlp-onnx
model: {onnx: mlp.onnx}
data: {dataset: synthetic, samples: 48, classes: 3, batch_size: 8}
training: {epochs: 1, optimizer: {lr: 0.05}}
precision: int4
"""


def test_trains_from_the_initializers(tmp_path):
    """A workload naming an ONNX file with data trains it: the first training-mode forward's logits
    are relu(x·W1 + b1)·W2ᵀ + b2 of the file's arrays (NumPy), the cache key covers the arrays, and
    the run reports an accuracy."""
    model = om.mlp(sizes=(4, 8, 3))
    om.save(model, tmp_path / "mlp.onnx")
    wpath = write(tmp_path / "w.yaml", TRAINED_YAML)
    spec = api.load_workload(wpath)
    net = build_network(spec, str(wpath), tmp_path)
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    params = net.meta["initial_params"]
    np.testing.assert_array_equal(params["fc1"]["weight"], arrays["fc1.w"].T)  # Gemm B (in, out) -> (out, in)
    np.testing.assert_array_equal(params["fc2"]["weight"], arrays["fc2.w"])    # transB: already (out, in)
    np.testing.assert_array_equal(params["fc2"]["bias"], arrays["fc2.b"])      # the folded Add
    data = load_dataset(spec.data, net.input_shape, tmp_path, str(wpath))
    x = data.x_train[:8].astype(np.float32)
    logits = build_model(net, np.random.default_rng(0)).forward(x, training=True)
    hidden = np.maximum(x.astype(np.float64) @ arrays["fc1.w"] + arrays["fc1.b"], 0)
    np.testing.assert_allclose(logits, hidden @ arrays["fc2.w"].T.astype(np.float64) + arrays["fc2.b"], atol=1e-5)
    # the cache key: the same file gives the same key; another initial value another key
    training = TrainingSpec(epochs=1)
    key = training_key(net, data, INT4, training, 0)
    assert training_key(build_network(spec, str(wpath), tmp_path), data, INT4, training, 0) == key
    changed = {k: dict(v) for k, v in params.items()}
    changed["fc1"]["bias"] = params["fc1"]["bias"] + np.float32(1e-3)
    other = dataclasses.replace(net, meta={**net.meta, "initial_params": changed})
    assert initial_params_digest(other) != initial_params_digest(net)
    assert training_key(other, data, INT4, training, 0) != key
    plain = dataclasses.replace(net, meta={})
    assert initial_params_digest(plain) is None and training_key(plain, data, INT4, training, 0) != key
    result = api.run(wpath, HWCONFIGS / "int4-32x32.yaml", write=False, cache_dir=None, jobs=1)
    assert result.summary["runs"]["policy"]["steps"] == 5  # ceil(38 / 8) training samples
    assert 0 <= result.summary["runs"]["policy"]["accuracy"] <= 1


def test_initial_params_must_fit(tmp_path):
    net = onnx_net(tmp_path, om.mlp(sizes=(4, 8, 3)), params=True)
    bad = {**net.meta["initial_params"], "fc2": {"weight": np.zeros((3, 9), np.float32)}}
    with pytest.raises(GraphError, match=r"fc2: initial weight has shape \[3, 9\], the layer's \[3, 8\]"):
        build_model(dataclasses.replace(net, meta={"initial_params": bad}), np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# the command line and the batch size


def test_run_validate_trace_an_onnx_path(tmp_path, cli):
    """``accelsim run net.onnx hw.yaml`` times a training step (``--set phases=inference`` the
    forward pass); the batch is the graph's fixed one unless ``data.batch_size`` is set."""
    om.save(om.resnet_block(batch=8), tmp_path / "net.onnx")
    spec = api.load_workload(tmp_path / "net.onnx")
    assert (spec.name, spec.phases, spec.data.batch_size) == ("net", "training", 8)
    assert api.load_workload(tmp_path / "net.onnx", ["data.batch_size=2"]).data.batch_size == 2
    code, out, err = cli("validate", tmp_path / "net.onnx")
    assert (code, err) == (0, "") and out == f"ok  {tmp_path / 'net.onnx'} (ONNX model)\n"
    code, out, err = cli("run", tmp_path / "net.onnx", HWCONFIGS / "int4-32x32.yaml", "--out", tmp_path / "r",
                         "--plots", "none", "--set", "phases=inference")
    assert code == 0, err
    resolved = (tmp_path / "r" / "config.resolved.yaml").read_text()
    assert "phases: inference" in resolved and "batch_size: 8" in resolved
    code, _, err = cli("trace", tmp_path / "net.onnx", "-o", tmp_path / "t.jsonl")
    assert code == 0, err
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert '"batch_size":8' in lines[0] and any('"phase":"bwd_weight"' in line for line in lines)
    # a symbolic batch: data.batch_size, else 1
    om.save(om.resnet_block(), tmp_path / "sym.onnx")
    assert api.load_workload(tmp_path / "sym.onnx").data.batch_size == 1
    write(tmp_path / "w.yaml", "version: 1\nname: w\nmodel: {onnx: sym.onnx}\ndata: {batch_size: 16}\n")
    spec = api.load_workload(tmp_path / "w.yaml")
    assert build_network(spec, str(tmp_path / "w.yaml"), tmp_path).batch_size == 16


# --------------------------------------------------------------------------------------------
# what accelsim refuses, by node


def _graph(nodes, inits=(), x=("x", [1, 4, 8, 8]), out=("y", [1, 4, 8, 8]), opset=17, domains=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(x[0], TensorProto.FLOAT, x[1])],
        [helper.make_tensor_value_info(out[0], TensorProto.FLOAT, out[1])],
        [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in inits],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] + [
        helper.make_opsetid(d, 1) for d in domains])


W4 = ("w", np.ones((4, 4, 3, 3), np.float32))
REFUSED = [
    ("unsupported-op", _graph([helper.make_node("Sigmoid", ["x"], ["y"], name="gate")]),
     "node 0 'gate' (Sigmoid): accelsim cannot map Sigmoid (supported: Conv, Gemm, MatMul, Relu"),
    ("unnamed-node", _graph([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Tanh", ["h"], ["y"])]),
     "node 1 'tanh1' (Tanh): accelsim cannot map Tanh"),
    ("clip-bounds", _graph([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="c")],
                           [("lo", np.float32(-1)), ("hi", np.float32(1))]),
     "node 0 'c' (Clip): Clip to [-1.0, 1.0] is not supported (only [0, 6] as ReLU6"),
    ("dilation", _graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[2, 2, 2, 2], dilations=[2, 2])], [W4]),
     "node 0 'c' (Conv): dilations [2, 2] are not supported (only 1)"),
    ("asymmetric-pads", _graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 0, 2, 2])], [W4]),
     "pads [0, 0, 2, 2] are not symmetric"),
    ("transpose-before-conv", _graph([helper.make_node("Transpose", ["x"], ["t"], name="swap", perm=[0, 1, 3, 2]),
                                      helper.make_node("Relu", ["t"], ["r"], name="r"),
                                      helper.make_node("Conv", ["r", "w"], ["y"], name="c", pads=[1, 1, 1, 1])], [W4]),
     "node 2 'c' (Conv): Conv reads a tensor of shape [4, 8, 8] laid out by node 0 'swap' (Transpose), a layout accelsim does not compute"),
    ("batch-transpose", _graph([helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[1, 0, 2, 3])], out=("y", [4, 1, 8, 8])),
     "node 0 't' (Transpose): perm [1, 0, 2, 3] moves the batch axis"),
    ("softmax-axis", _graph([helper.make_node("Softmax", ["x"], ["y"], name="s", axis=1)]),
     "node 0 's' (Softmax): axis 1 of a rank-4 tensor: accelsim's softmax works on the last axis"),
    ("add-broadcast", _graph([helper.make_node("GlobalAveragePool", ["x"], ["p"], name="p"),
                              helper.make_node("Add", ["x", "p"], ["y"], name="a")]),
     "node 1 'a' (Add): broadcasting [4, 8, 8] + [4, 1, 1] is not supported"),
    ("add-constant", _graph([helper.make_node("Add", ["x", "c"], ["y"], name="a")], [("c", np.float32(1))]),
     "node 0 'a' (Add): adding a constant is supported only as the bias of the Gemm/MatMul/Conv right before it"),
    ("stray-scale", _graph([helper.make_node("Mul", ["x", "c"], ["m"], name="m"), helper.make_node("Relu", ["m"], ["y"], name="r")],
                           [("c", np.float32(2))]),
     "node 1 'r' (Relu): Relu reads the output of node 0 'm' (Mul), a Mul/Div by a constant"),
    ("custom-domain", _graph([helper.make_node("FusedConv", ["x"], ["y"], name="f", domain="com.microsoft")],
                             domains=["com.microsoft"]),
     "node 0 'f' (FusedConv): operator com.microsoft::FusedConv is not in the default ONNX domain"),
    ("constant-first-operand", _graph([helper.make_node("MatMul", ["c", "x"], ["y"], name="mm")], [("c", np.ones((8, 8), np.float32))]),
     "node 0 'mm' (MatMul): a constant first operand is not supported"),
    ("reshape-batch", _graph([helper.make_node("Reshape", ["x", "s"], ["y"], name="r")], [("s", np.array([4, 64], np.int64))],
                             out=("y", [4, 64])),
     "node 0 'r' (Reshape): [1, 4, 8, 8] → [4, 64] changes the batch axis"),
    ("avgpool-exclude-pad", _graph([helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]),
     "count_include_pad=0 with padding is not supported"),
]


@pytest.mark.parametrize("model, expect", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refusals_name_the_node(tmp_path, cli, model, expect):
    """Exit 2, one line: the file, the node (index, name, op type) and why or what is supported."""
    om.save(model, tmp_path / "m.onnx")
    code, out, err = cli("validate", tmp_path / "m.onnx")
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"accelsim: error: {tmp_path / 'm.onnx'}: ") and expect in err, err


def test_two_outputs(tmp_path):
    model = om.mlp()
    model.graph.output.append(helper.make_tensor_value_info("relu1_out", TensorProto.FLOAT, ["N", 32]))
    path = om.save(model, tmp_path / "two.onnx")
    with pytest.raises(InputError, match=r"graph.output: the graph has 2 outputs \('fc2_bias_out', 'relu1_out'\); accelsim networks have one"):
        import_onnx(path, name="two")


def test_constants_computed_from_initializers(tmp_path):
    """A weight given through constant nodes (a Transpose after 3,000 Identity nodes: no constant
    folding at export) is computed while importing, without recursion, in accelsim's layout."""
    nodes, prev = [], "w0"
    for i in range(3000):
        nodes.append(helper.make_node("Identity", [prev], [f"w{i + 1}"], name=f"id{i}"))
        prev = f"w{i + 1}"
    nodes += [helper.make_node("Transpose", [prev], ["wt"], name="t", perm=[1, 0]),
              helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm")]
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = _graph(nodes, [("w0", w)], x=("x", [2, 4]), out=("y", [2, 3]))
    net = onnx_net(tmp_path, model, batch=None, params=True)
    assert summary(net) == [("linear", (4,), (3,))] and net.batch_size == 2
    np.testing.assert_array_equal(net.meta["initial_params"]["mm"]["weight"], w)  # (wᵀ)ᵀ: (out, in)


def test_onnx_model_spec(tmp_path, cli):
    """``model: {onnx: PATH}`` is strict like every spec model; an unknown key next to ``onnx`` is
    reported against the ONNX model's fields, not a layer list's."""
    write(tmp_path / "a.yaml", "version: 1\nname: w\nmodel: {onnx: net.onnx, input: [4]}\n")
    write(tmp_path / "b.yaml", "version: 1\nname: w\nmodel: {onnx: 3}\n")
    code, out, err = cli("validate", tmp_path / "a.yaml", tmp_path / "b.yaml")
    assert code == 2 and err.splitlines() == [
        f"accelsim: error: {tmp_path / 'a.yaml'}: model.input: unknown key 'input' (allowed: onnx)",
        f"accelsim: error: {tmp_path / 'b.yaml'}: model.onnx: must be a valid string; got 3",
    ]


def test_an_onnx_model_is_swept_like_a_workload_file(tmp_path):
    """`accelsim sweep net.onnx hw.yaml --grid ...` takes the model as run does (a timed training
    step of the graph), and every point's figures are the ones run gives for it."""
    from accelsim import sweep

    path = om.save(om.resnet_block(batch=8), tmp_path / "block.onnx")
    plan = sweep.inline_plan(path, HWCONFIGS / "int4-32x32.yaml", ["array.rows=16,32"])
    outcome = sweep.run_sweep(plan, tmp_path / "s", jobs=1)
    assert (outcome.ok, outcome.failed) == (2, 0)
    import csv

    with open(tmp_path / "s" / "results.csv", newline="") as fh:
        rows = {r["array.rows"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"16", "32"}
    one = api.run(path, HWCONFIGS / "int4-32x32.yaml", sets=["array.rows=16"], write=False, cache_dir=None, jobs=1)
    assert float(rows["16"]["speedup"]) == pytest.approx(one.summary["speedup"], rel=1e-9)
