"""Graph workloads end to end: YAML graphs and their errors, the token datasets, the trainer's
recorded step equal to the builder's for a residual CNN and a transformer in every precision, and
the shipped graph examples training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelsim import api
from accelsim.errors import InputError
from accelsim.nn.datasets import load_dataset, sequence_task
from accelsim.nn.train import train
from accelsim.numerics.policy import PRESETS, resolve_policy
from accelsim.spec.models import DataSpec, TrainingSpec
from accelsim.workload.builder import build_step

from conftest import HWCONFIGS, WORKLOADS, write

GRAPH = """\
version: 1
name: g
model:
  input: [1, 8, 8]
  layers:
    - {name: stem, type: conv2d, out: 8, kernel: 3, padding: 1}
    - {name: a, type: relu}
    - {type: conv2d, out: 8, kernel: 3, padding: 1}
    - {name: b, type: batchnorm}
    - {type: add, inputs: [b, a]}
    - {type: relu}
    - {type: avgpool, kernel: 8}
    - {type: flatten}
    - {type: linear, out: 10}
data: {batch_size: 4}
"""


@pytest.mark.parametrize("edit,field,message", [
    (("inputs: [b, a]", "inputs: [b, stem2]"), "model.layers.4.inputs",
     "add layer 'add0' reads 'stem2', which is not an earlier layer or 'input'"),
    (("inputs: [b, a]", "inputs: [b, zz]"), "model.layers.4.inputs", "the latest are: stem, a, conv2d1, b"),
    (("{name: stem, type: conv2d, out: 8, kernel: 3, padding: 1}", "{name: stem, type: conv2d, out: 8, kernel: 3, padding: 1, inputs: [a]}"),
     "model.layers.0.inputs", "reads 'a', which is not an earlier layer"),   # a cycle
    (("{type: conv2d, out: 8, kernel: 3, padding: 1}", "{type: conv2d, out: 4, kernel: 3, padding: 1}"),
     "model.layers.4", "add of 'b' [4, 8, 8] and 'a' [8, 8, 8]: shapes must agree"),
    (("{type: add, inputs: [b, a]}", "{type: concat, inputs: [b, a], axis: 1}"),
     "model.layers.4", "add layer"),
    (("{name: a, type: relu}", "{name: input, type: relu}"), "model.layers.1.name", "is the network input"),
])
def test_graph_errors_name_layers_and_shapes(tmp_path, cli, edit, field, message):
    text = GRAPH.replace(*edit)
    if "concat" in edit[1]:   # concatenated along height: the classifier's input no longer fits
        text = text.replace("{type: avgpool, kernel: 8}", "{type: avgpool, kernel: 16}")
        field, message = "model.layers.6", "avgpool window 16x16 does not fit the 16x8 input"
    path = write(tmp_path / "g.yaml", text)
    code, out, err = cli("validate", path)
    assert code == 2
    assert err.count("\n") == 1 and f"g.yaml: {field}: " in err and message in err, err


def test_attention_heads_must_divide_the_features(tmp_path, cli):
    path = write(tmp_path / "t.yaml", """\
version: 1
name: t
model:
  input: [6]
  layers:
    - {type: embedding, vocab: 5, out: 10}
    - {type: attention, heads: 4}
    - {type: linear, out: 5}
data: {batch_size: 2}
""")
    code, _, err = cli("validate", path)
    assert code == 2 and "model.layers.1: attention layer 'attention0': heads=4 must divide the features (10)" in err


def test_graph_yaml_resolves_names_and_shapes(tmp_path):
    net = api.prepare(write(tmp_path / "g.yaml", GRAPH), HWCONFIGS / "int4-32x32.yaml").network
    names = [layer.name for layer in net.layers]
    assert names == ["stem", "a", "conv2d1", "b", "add0", "relu1", "avgpool0", "flatten0", "linear0"]
    add = net.layers[4]
    assert add.inputs == ("b", "a") and add.out_shape == (8, 8, 8)
    assert net.layers[6].out_shape == (8, 1, 1)   # global average pooling


# --- token datasets ---------------------------------------------------------------------------


def test_sequence_tasks_by_hand():
    x = np.array([[3, 1, 2, 0], [1, 1, 0, 2]])
    np.testing.assert_array_equal(sequence_task("sort", x, 4), [[0, 1, 2, 3], [0, 1, 1, 2]])
    np.testing.assert_array_equal(sequence_task("reverse", x, 4), [[0, 2, 1, 3], [2, 0, 1, 1]])
    np.testing.assert_array_equal(sequence_task("copy", x, 4), x)
    # add, base 10, digits least significant first: 37 + 85 = 122 -> 22 (mod 100): [2, 2]
    # 99 + 99 = 198 -> 98: [8, 9]; the first half is not scored
    add = np.array([[7, 3, 5, 8], [9, 9, 9, 9]])
    np.testing.assert_array_equal(sequence_task("add", add, 10), [[-1, -1, 2, 2], [-1, -1, 8, 9]])


def test_sequence_dataset_is_seeded_and_split(tmp_path):
    spec = DataSpec(dataset="sequence", task="sort", vocab=8, samples=100, batch_size=4, seed=3)
    a = load_dataset(spec, (6,), tmp_path, "w.yaml")
    b = load_dataset(spec, (6,), tmp_path, "w.yaml")
    assert (a.n_train, a.n_test, a.classes, a.metric) == (80, 20, 8, "token_accuracy")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, np.sort(a.x_train, axis=1))
    assert a.x_train.dtype == np.int64 and a.x_train.max() < 8
    with pytest.raises(InputError, match=r"data.length: task 'add' needs an even length"):
        load_dataset(DataSpec(dataset="sequence", task="add", vocab=10, samples=10), (5,), tmp_path, "w.yaml")
    with pytest.raises(InputError, match=r"data.length: 4 tokens per sample, but the model input is \[6\]"):
        load_dataset(DataSpec(dataset="sequence", task="copy", vocab=4, length=4), (6,), tmp_path, "w.yaml")


def test_text_dataset_windows(tmp_path):
    text = "abcab" * 40 + "zz"
    write(tmp_path / "t.txt", text)
    ds = load_dataset(DataSpec(dataset="text", path="t.txt", batch_size=4, test_fraction=0.25), (8,), tmp_path, "w.yaml")
    assert ds.classes == 4 and ds.metric == "next_char_accuracy"   # a, b, c, z
    np.testing.assert_array_equal(ds.y_train[:, :-1], ds.x_train[:, 1:])   # the next character
    assert ds.x_train.shape[1] == 8 and len(ds.x_train) == (int(len(text) * 0.75) - 1) // 8
    write(tmp_path / "short.txt", "abc")
    with pytest.raises(InputError, match=r"short.txt: text of 3 characters .* is too short"):
        load_dataset(DataSpec(dataset="text", path="short.txt"), (8,), tmp_path, "w.yaml")


def test_token_data_must_meet_an_embedding_and_a_per_token_classifier(tmp_path):
    wl = """\
version: 1
name: t
model:
  input: [8]
  layers:
    - {type: embedding, vocab: 8, out: 16}
    - {type: linear, out: 8}
data: {dataset: sequence, task: sort, vocab: 8, samples: 64, batch_size: 16}
training: {epochs: 1}
"""
    setup = api.prepare(write(tmp_path / "ok.yaml", wl), HWCONFIGS / "int4-32x32.yaml")
    assert api.load_data(setup.workload, setup.network, setup.workload_file).metric == "token_accuracy"
    bad = write(tmp_path / "v.yaml", wl.replace("vocab: 8, samples", "vocab: 12, samples").replace("out: 8}", "out: 12}"))
    setup = api.prepare(bad, HWCONFIGS / "int4-32x32.yaml")
    with pytest.raises(InputError, match="embedding 'embedding0' has vocab 8 but dataset 'sequence-sort' has 12"):
        api.load_data(setup.workload, setup.network, setup.workload_file)


# --- trace equivalence on graphs ------------------------------------------------------------------


def _comparable(ops):
    out = []
    for op in ops:
        op = dataclasses.replace(op, deps=())
        if op.kind == "gemm":
            op = dataclasses.replace(op, a_elements=0, out_elements=0)
        if op.kind == "vector":
            op = dataclasses.replace(op, aux_format="")
        out.append(op)
    return out


@pytest.mark.parametrize("precision", ["int4", "fp16", "hfp8"])
@pytest.mark.parametrize("workload,sets", [
    ("resnet-digits", []),
    ("transformer-sort", ["data.samples=80"]),
])
def test_recorded_step_equals_built_step_on_graphs(workload, sets, precision):
    """The trainer's first step — a residual CNN with a strided shortcut, a transformer with
    attention, layer norms and residuals — executes exactly the builder's ops, in its order, with
    its shapes and formats (first/last layers in 4 bits too, so the network input is mapped)."""
    setup = api.prepare(WORKLOADS / f"{workload}.yaml", HWCONFIGS / "int4-32x32.yaml", sets=sets)
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    data = dataclasses.replace(data, x_train=data.x_train[:64], y_train=data.y_train[:64],
                               x_test=data.x_test[:16], y_test=data.y_test[:16])
    policy = PRESETS["fp16"] if precision == "fp16" else resolve_policy(
        {"preset": precision, "first_layer": None, "last_layer": None})
    result = train(setup.network, data, policy, TrainingSpec(epochs=1), seed=0)
    built = build_step(setup.network, policy)
    assert _comparable(result.recorded_ops) == _comparable(built.ops)
    kinds = {op.kind for op in built.ops}
    assert kinds == {"gemm", "vector"} | ({"rescale"} if precision == "int4" else set())
    if workload == "transformer-sort":
        assert sum(op.layer.endswith(".scores") and op.kind == "gemm" for op in built.ops) == 2 * 3


def test_shipped_graph_examples_learn():
    """Two epochs of each shipped graph example in its 4-bit policy clear a floor far above chance."""
    for workload, floor in (("resnet-digits", 0.80), ("transformer-sort", 0.40)):
        setup = api.prepare(WORKLOADS / f"{workload}.yaml", HWCONFIGS / "int4-32x32.yaml", sets=["training.epochs=2"])
        data = api.load_data(setup.workload, setup.network, setup.workload_file)
        r = train(setup.network, data, setup.policy, setup.workload.training, seed=0)
        assert r.diverged is None and r.accuracy > floor, (workload, r.accuracy)
        if workload == "transformer-sort":
            assert r.metric == "token_accuracy" and 0 <= r.history[-1].test_metrics["sequence_accuracy"] <= r.accuracy
