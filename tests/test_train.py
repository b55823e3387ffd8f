"""Training: the recorded step equals the built step, a short run clears a pinned accuracy floor,
results are cached and deterministic, and every dataset source loads or fails with a clear error."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys

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


def test_digits_accuracy_over_seeds():
    """Five epochs of mlp-digits over three seeds: the 4-bit recipe (its hidden layer with INT4
    weights and activations and radix-4 FP4 gradients under TPR and GradScale) and fp32 clear
    floors with their means; the two means are close. Measured: int4 94.2 ± 0.7 %, fp32 94.7 ±
    0.0 % (the floors are 6 standard errors away)."""
    setup = api.prepare(WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml", sets=["training.epochs=5"])
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    int4 = [train(setup.network, data, setup.policy, setup.workload.training, seed=s) for s in range(3)]
    fp32 = [train(setup.network, data, PRESETS["fp32"], setup.workload.training, seed=s) for s in range(3)]
    assert all(len(r.history) == 5 and r.steps == 5 * 23 for r in int4)
    mean4 = float(np.mean([r.accuracy for r in int4]))
    mean32 = float(np.mean([r.accuracy for r in fp32]))
    assert mean4 >= 0.90 and mean32 >= 0.92
    assert abs(mean4 - mean32) <= 0.03
    # the 4-bit layer's gradients are quantized (fidelity < 1) but still point the right way
    for r in int4:
        assert 0.8 < r.grad_fidelity["linear1"]["bwd_weight"] < 1.0
        assert 0.8 < r.grad_fidelity["linear1"]["bwd_data"] < 1.0


def test_training_is_deterministic_and_cached(tmp_path):
    net = mlp((1, 8, 8), classes=4, batch_size=16)
    data, spec = _blobs(), TrainingSpec(epochs=2)
    a, status_a = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    b, status_b = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    assert (status_a, status_b) == ("trained", "cached")
    assert a.accuracy == b.accuracy and a.history == b.history and a.seed == b.seed == 3
    assert _comparable(a.recorded_ops) == _comparable(b.recorded_ops)
    np.testing.assert_array_equal(a.grad_sample, b.grad_sample)
    fresh = train(net, data, PRESETS["int4"], spec, 3)
    assert fresh.history == a.history
    # an edited entry fails its checksum: retrained, not trusted
    (entry,) = tmp_path.glob("*.json")
    text = entry.read_text()
    entry.write_text(text.replace(repr(a.accuracy)[:6], "7.5"))
    c, status_c = train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)
    assert status_c == "damaged" and c.accuracy == a.accuracy
    entry.write_text("{not json")
    assert train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)[1] == "damaged"
    (tmp_path / entry.with_suffix(".npz").name).write_bytes(b"junk")
    assert train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)[1] == "damaged"
    assert train_cached(net, data, PRESETS["int4"], spec, 3, tmp_path)[1] == "cached"
    # another seed is another entry
    assert train_cached(net, data, PRESETS["int4"], spec, 4, tmp_path)[1] == "trained"


def test_run_reports_accuracy_over_seeds_for_both_precisions(tmp_path, cli):
    out = tmp_path / "r"
    args = ("run", WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml", "--set", "training.epochs=2",
            "--set", "training.seeds=2", "--out", out)
    code, stdout, err = cli(*args)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    for label in ("policy", "baseline"):
        run = summary["runs"][label]
        assert run["seeds"] == [0, 1] and len(run["accuracy_per_seed"]) == 2
        assert run["accuracy"] == pytest.approx(np.mean(run["accuracy_per_seed"]))
        assert run["accuracy_std"] == pytest.approx(np.std(run["accuracy_per_seed"], ddof=1))
        assert 0.5 < run["accuracy"] <= 1 and run["diverged"] == []
    p, b = summary["runs"]["policy"]["accuracy_per_seed"], summary["runs"]["baseline"]["accuracy_per_seed"]
    diffs = [x - y for x, y in zip(p, b)]
    assert summary["trained"] is True
    assert summary["accuracy_delta"] == pytest.approx(np.mean(diffs))
    assert summary["accuracy_delta_std"] == pytest.approx(np.std(diffs, ddof=1))
    assert summary["runs"]["policy"]["steps"] == 2 * 23  # 1438 training images, batch 64
    assert 0 < summary["runs"]["policy"]["four_bit_mac_fraction"] < 1
    assert summary["runs"]["baseline"]["four_bit_mac_fraction"] == 0
    # the console prints mean ± std over the seeds
    assert re.search(r"\d+\.\d ± \d+\.\d %", stdout) and "seeds)" in stdout
    lines = (out / "training.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["seed", "epoch", "policy_train_loss"] and len(lines) == 1 + 2 * 2
    assert "policy_pact_alpha.linear1" in header and [line.split(",")[0] for line in lines[1:]] == ["0", "0", "1", "1"]
    assert {"training_curves.png", "grad_histogram.png"} <= {p.name for p in (out / "plots").iterdir()}
    # the input enters both runs in fp16 (first-layer rule): no 4-bit input picture
    assert not (out / "plots" / "input_bits.png").exists()
    cosines = [line.split(",")[-2] for line in (out / "layers.csv").read_text().splitlines()[1:]]
    assert any(c not in ("", "1.0") for c in cosines)  # the 4-bit layer's gradient fidelity is reported
    config = (out / "config.resolved.yaml").read_text()
    assert "environment:" in config and "numpy:" in config and "internal_api: openblas" in config
    # the second run takes both trainings from the cache and reports the same numbers
    first = (out / "summary.json").read_bytes()
    code, stdout, err = cli(*args[:-1], tmp_path / "r2")
    assert code == 0 and "taken from the cache" in stdout
    assert (tmp_path / "r2" / "summary.json").read_bytes() == first


def test_summary_does_not_depend_on_blas_threads(tmp_path):
    """The same training in fresh processes with one and with two BLAS threads writes the same
    summary.json, byte for byte (the GEMMs never depend on the BLAS's summation order)."""
    outs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        proc = subprocess.run(
            [sys.executable, "-m", "accelsim.cli", "run", str(WORKLOADS / "cnn-digits.yaml"),
             str(HWCONFIGS / "int4-32x32.yaml"), "--set", "training.epochs=2", "--set", "training.seeds=1",
             "--out", str(out), "--retrain"],
            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        outs.append((out / "summary.json").read_bytes())
        assert f"num_threads: {threads}" in (out / "config.resolved.yaml").read_text()
    assert outs[0] == outs[1]


def test_pact_alpha_learns_on_cnn_digits():
    """The shipped cnn-digits trains PACT's clip: α moves from its initial value with the clipping
    gradient (it rises above its start: activations beyond it were clipped), and after training
    the 4-bit layer's input uses more than 8 of its 16 UINT4 codes. With PACT's default α = 10 the
    clip only decays (no activation reaches it) and 7 codes are used."""
    setup = api.prepare(WORKLOADS / "cnn-digits.yaml", HWCONFIGS / "int4-32x32.yaml", sets=["training.epochs=6"])
    data = api.load_data(setup.workload, setup.network, setup.workload_file)
    r = train(setup.network, data, setup.policy, setup.workload.training, seed=0)
    alphas = [h.pact_alpha["conv2d1"] for h in r.history]
    assert setup.policy.pact_alpha_init == 2.0
    assert max(alphas) > 2.05 and len(set(alphas)) == len(alphas)
    assert r.pact_codes_used["conv2d1"] > 8
    default = resolve_policy({"preset": "int4"})
    assert default.pact_alpha_init == 10.0 and default.pact_alpha_decay == 0.0002
    r10 = train(setup.network, data, default, TrainingSpec(epochs=2), seed=0)
    a10 = [h.pact_alpha["conv2d1"] for h in r10.history]
    assert 9.9 < a10[-1] < a10[0] < 10.0  # only the L2 pull moves it
    assert r10.pact_codes_used["conv2d1"] <= 8


def test_divergence_is_a_result_not_a_crash(tmp_path, cli):
    """A learning rate that blows the training up: both precisions are reported as diverged
    (epoch and step) in summary.json, training.csv and on the console; exit 0."""
    out = tmp_path / "d"
    code, stdout, err = cli("run", WORKLOADS / "mlp-digits.yaml", HWCONFIGS / "int4-32x32.yaml",
                            "--set", "training.optimizer.lr=100", "--set", "training.optimizer.momentum=0.99",
                            "--set", "training.epochs=2", "--set", "training.seeds=1", "--out", out)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    for label in ("policy", "baseline"):
        run = summary["runs"][label]
        assert run["accuracy"] is None and run["accuracy_per_seed"] == [None]
        (d,) = run["diverged"]
        assert d["seed"] == 0 and d["epoch"] == 1 and 1 <= d["step"] <= 23
    assert summary["accuracy_delta"] is None
    assert sum("diverged with seed 0 at epoch 1" in n for n in summary["notes"]) == 2
    assert "diverged" in stdout and stdout.count("note:") >= 2
    rows = (out / "training.csv").read_text().splitlines()
    assert "diverged at step" in rows[1]


def test_untrainable_layer_is_bad_input(tmp_path, cli):
    """A trained workload with a layer the trainer cannot train: validate and run exit 2 with one
    line naming the layer's field and what is trainable; nothing is written."""
    wl = write(tmp_path / "w.yaml", """\
version: 1
name: w
model:
  input: [4, 8]
  layers:
    - {type: linear, out: 8}
    - {type: gemm, m: 4, n: 4, k: 4}
data: {dataset: synthetic, samples: 64, classes: 4, batch_size: 16}
training: {epochs: 1}
""")
    code, out, err = cli("validate", wl)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "model.layers.1" in line and "gemm" in line and "trainable:" in line
    code, out, err = cli("run", wl, HWCONFIGS / "int4-32x32.yaml", "--out", tmp_path / "r")
    assert code == 2 and "model.layers.1" in err and not (tmp_path / "r").exists()


def test_a_policy_with_nothing_in_four_bits_says_so(tmp_path):
    """A two-layer MLP under the first/last-layer rule keeps both layers in fp16: the 4-bit share
    of MACs is 0 and the summary says the comparison measures no 4-bit arithmetic."""
    wl = write(tmp_path / "w.yaml", """\
version: 1
name: w2
model: {input: [64], layers: [{type: linear, out: 32}, {type: relu}, {type: linear, out: 10}]}
data: {batch_size: 8}
precision: int4
""")
    r = api.run(wl, HWCONFIGS / "int4-32x32.yaml", write=False)
    assert r.summary["runs"]["policy"]["four_bit_mac_fraction"] == 0.0
    assert any("no GEMM in a 4-bit mode" in n for n in r.summary["notes"])
    assert any("Two-Phase Rounding has no effect" in n for n in r.summary["notes"])


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


def test_digits_are_scikit_learns_without_importing_it():
    """The digits come from scikit-learn's bundled file, equal to load_digits(), and reading them
    leaves scikit-learn unimported (it costs seconds of start-up)."""
    code = ("import sys; from accelsim.nn.datasets import _digits; x, y = _digits(); "
            "print(x.shape, y.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(1797,", "64)", "(1797,)", "False"]
    from sklearn.datasets import load_digits

    from accelsim.nn.datasets import _digits

    x, y = _digits()
    bunch = load_digits()
    np.testing.assert_array_equal(x, (bunch.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)


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
