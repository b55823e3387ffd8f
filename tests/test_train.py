"""Training: the recorded step equals the built step, a short run clears a pinned accuracy floor,
results are cached and deterministic, and every dataset source loads or fails with a clear error."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest

from accelsim import api
from accelsim.errors import InputError
from accelsim.nn.datasets import Dataset, load_dataset, read_idx, stratified_split
from accelsim.nn.train import quantize_image, train, train_cached
from accelsim.numerics.policy import PRESETS, resolve_policy
from accelsim.spec.models import DataSpec, TrainingSpec
from accelsim.workload.builder import build_step
from accelsim.workload.zoo import cnn, mlp

from conftest import HWCONFIGS, WORKLOADS, write


def _blobs(shape=(1, 8, 8), classes=4, n=96, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, int(np.prod(shape))), dtype=np.float32)
    y = np.arange(n) % classes
    x = np.clip(protos[y] + rng.normal(0, 0.1, (n, protos.shape[1])), 0, 1).astype(np.float32)
    x = x.reshape(n, *shape)
    return Dataset("blobs", x[:64], y[:64], x[64:], y[64:], classes)


def _comparable(ops):
    """Ops without the fields a recording cannot know (dependencies, im2col tensor sizes, the
    width of a re-read mask)."""
    out = []
    for op in ops:
        op = dataclasses.replace(op, deps=())
        if op.kind == "gemm":
            op = dataclasses.replace(op, a_elements=0, out_elements=0)
        if op.kind == "vector":
            op = dataclasses.replace(op, aux_format="")
        out.append(op)
    return out


@pytest.mark.parametrize("policy", ["int4", "fp16", "hfp8", "int4-linear-grad"])
@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_recorded_step_equals_built_step(model, policy):
    """The ops one training step executes are the trace builder's ops: same kinds, layers, phases,
    shapes and formats, in the same order (4-bit first layer too, so the input is mapped)."""
    net = cnn((1, 8, 8), classes=4, batch_size=16) if model == "cnn" else mlp((1, 8, 8), classes=4, batch_size=16)
    pol = resolve_policy({"preset": policy, "first_layer": None}) if policy != "fp16" else PRESETS["fp16"]
    result = train(net, _blobs(), pol, TrainingSpec(epochs=1), seed=0)
    built = build_step(net, pol)
    assert _comparable(result.recorded_ops) == _comparable(built.ops)
    assert len(result.recorded_ops) >= 11


def test_short_digits_run_clears_floor():
    """Five epochs of mlp-digits with INT4 weights, activations and input and radix-4 FP4 gradients
    (TPR, GradScale) reach a pinned test accuracy; fp32 on the same seed is close."""
    setup = api.prepare(WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml", sets=["training.epochs=5"])
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    int4 = train(setup.network, data, setup.policy, setup.workload.training, seed=0)
    fp32 = train(setup.network, data, PRESETS["fp32"], setup.workload.training, seed=0)
    assert len(int4.history) == 5 and int4.steps == 5 * 23
    assert int4.accuracy >= 0.90
    assert fp32.accuracy >= 0.93
    assert abs(int4.accuracy - fp32.accuracy) <= 0.05
    # the 4-bit layer's gradients are quantized (fidelity < 1) but still point the right way
    first = int4.grad_fidelity["linear0"]
    assert 0.8 < first["bwd_weight"] < 1.0


def test_training_is_deterministic_and_cached(tmp_path):
    net = mlp((1, 8, 8), classes=4, batch_size=16)
    data, spec = _blobs(), TrainingSpec(epochs=2)
    a, hit_a = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    b, hit_b = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    assert (hit_a, hit_b) == (False, True)
    assert a.accuracy == b.accuracy and [vars(h) for h in a.history] == [vars(h) for h in b.history]
    assert _comparable(a.recorded_ops) == _comparable(b.recorded_ops)
    np.testing.assert_array_equal(a.grad_sample, b.grad_sample)
    fresh = train(net, data, PRESETS["int4"], spec, 3)
    assert [vars(h) for h in fresh.history] == [vars(h) for h in a.history]
    # a damaged entry is retrained, not trusted
    for path in tmp_path.glob("*.json"):
        path.write_text("{not json")
    c, hit_c = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    assert hit_c is False and c.accuracy == a.accuracy
    # another seed is another entry
    _, hit_d = train_cached(net, data, PRESETS["int4"], spec, 4, tmp_path)
    assert hit_d is False


def test_run_reports_accuracy_for_both_precisions(tmp_path, cli):
    out = tmp_path / "r"
    args = ("run", WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml", "--set", "training.epochs=2", "--out", out)
    code, stdout, err = cli(*args)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    p, b = summary["runs"]["policy"]["accuracy"], summary["runs"]["baseline"]["accuracy"]
    assert summary["trained"] is True and 0.5 < p <= 1 and 0.5 < b <= 1
    assert summary["accuracy_delta"] == pytest.approx(p - b)
    assert summary["runs"]["policy"]["steps"] == 2 * 23  # 1438 training images, batch 64
    lines = (out / "training.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,policy_train_loss") and len(lines) == 3
    assert {"training_curves.png", "grad_histogram.png", "input_bits.png"} <= {p.name for p in (out / "plots").iterdir()}
    cosines = [line.split(",")[-2] for line in (out / "layers.csv").read_text().splitlines()[1:]]
    assert any(c not in ("", "1.0") for c in cosines)  # the 4-bit layer's gradient fidelity is reported
    # the second run takes both trainings from the cache and reports the same numbers
    first = (out / "summary.json").read_bytes()
    code, stdout, err = cli(*args[:-1], tmp_path / "r2")
    assert code == 0 and "taken from the cache" in stdout
    assert (tmp_path / "r2" / "summary.json").read_bytes() == first


def test_input_image_bits():
    image = np.array([[0.0, 0.3, 1.0]], dtype=np.float32)
    # 0.3 * 15 = 4.5 rounds half to even to 4: the 4/15 shade (as 0.3 -> -3.5 -> -4 on -8..7)
    np.testing.assert_allclose(quantize_image(image, 4), [[0.0, 4 / 15, 1.0]])
    np.testing.assert_allclose(quantize_image(image, 2), [[0.0, 1 / 3, 1.0]])


# --- datasets ----------------------------------------------------------------------------------


def test_digits_split_is_stratified_and_deterministic():
    spec = DataSpec(dataset="digits", batch_size=64, test_fraction=0.2, seed=0)
    a = load_dataset(spec, (64,), WORKLOADS, "w.yaml")
    b = load_dataset(spec, (64,), WORKLOADS, "w.yaml")
    # per class round(0.2 * n_c) images go to test: 359 of 1,797
    assert (a.n_train, a.n_test, a.classes) == (1438, 359, 10)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert set(np.bincount(a.y_test)) <= {35, 36, 37}
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    train_idx, test_idx = stratified_split(np.repeat(np.arange(3), 10), 0.2, seed=1)
    assert len(test_idx) == 6 and not set(train_idx) & set(test_idx)


def test_npz_forms_and_errors(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (40, 2, 2)).astype(np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    ds = load_dataset(DataSpec(dataset="npz", path="xy.npz", batch_size=8), (4,), tmp_path, "w.yaml")
    assert ds.n_train + ds.n_test == 40 and ds.x_train.shape[1:] == (4,) and ds.x_train.max() <= 1.0
    np.savez(tmp_path / "split.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    ds = load_dataset(DataSpec(dataset="npz", path="split.npz", batch_size=8), (2, 2), tmp_path, "w.yaml")
    assert (ds.n_train, ds.n_test) == (30, 10)
    with pytest.raises(InputError, match=r"w.yaml: data.path: npz file .*nope.npz not found"):
        load_dataset(DataSpec(dataset="npz", path="nope.npz"), (4,), tmp_path, "w.yaml")
    write(tmp_path / "bad.npz", "not a zip file")
    with pytest.raises(InputError, match=r"bad.npz: not a readable .npz file"):
        load_dataset(DataSpec(dataset="npz", path="bad.npz"), (4,), tmp_path, "w.yaml")
    np.savez(tmp_path / "keys.npz", a=x)
    with pytest.raises(InputError, match=r"expected arrays x, y or x_train, y_train, x_test, y_test; found \['a'\]"):
        load_dataset(DataSpec(dataset="npz", path="keys.npz"), (4,), tmp_path, "w.yaml")
    with pytest.raises(InputError, match=r"model.input: model input \[5\] has 5 values per sample but dataset 'npz' has 4"):
        load_dataset(DataSpec(dataset="npz", path="xy.npz"), (5,), tmp_path, "w.yaml")


def _idx(data: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    return header + data.astype(np.uint8).tobytes()


def test_mnist_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 4, 4)), "train-labels-idx1-ubyte": np.arange(20) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 4, 4)), "t10k-labels-idx1-ubyte": np.arange(10) % 10,
    }
    for name, array in files.items():
        data = _idx(np.asarray(array))
        if name.startswith("t10k-images"):
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    ds = load_dataset(DataSpec(dataset="mnist-idx", path=".", batch_size=4), (1, 4, 4), tmp_path, "w.yaml")
    assert (ds.n_train, ds.n_test, ds.classes, ds.x_train.shape[1:]) == (20, 10, 10, (1, 4, 4))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte: IDX header says 5 bytes of data for shape \(5,\), file has 1"):
        load_dataset(DataSpec(dataset="mnist-idx", path=".", batch_size=4), (1, 4, 4), tmp_path, "w.yaml")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


def test_cnn_digits_run_timing_is_pinned():
    """The shipped cnn-digits example: 20 epochs of 1,438 images at batch 64 are 440 full steps and
    20 steps of 30; cycles of both runs pinned (the timing does not depend on the trained values)."""
    setup = api.prepare(WORKLOADS / "cnn-digits.yaml", HWCONFIGS / "int4-32x32.yaml")
    plan = api.step_plan(setup.workload, setup.network, *api.dataset_sizes(setup.workload, setup.network, setup.workload_file))
    assert plan.batches == ((64, 440), (30, 20))
    policy = api.time_run("policy", setup, plan, setup.policy, setup.machine, setup.table)
    baseline = api.time_run("baseline", setup, plan, setup.baseline_policy, setup.baseline_machine, setup.baseline_table)
    assert (policy.cycles, baseline.cycles) == (28_502_720, 32_535_580)
