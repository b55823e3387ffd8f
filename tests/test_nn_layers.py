"""NumPy layers and models: gradients, reference forwards, GEMM hook contract, SGD, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accelsim.nn.layers import (
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Flatten,
    Float32Hook,
    GemmHook,
    Linear,
    MaxPool2d,
    RecordingHook,
    ReLU,
    ReLU6,
    SoftmaxCrossEntropy,
)
from accelsim.nn.model import SGD, GraphModel, build_model
from accelsim.numerics.policy import PRESETS
from accelsim.workload.builder import build_step
from accelsim.workload.graph import (
    GraphError,
    Layer,
    Network,
    conv2d_layer,
    elementwise_layer,
    flatten_layer,
    linear_layer,
    pool_layer,
)
from accelsim.workload.zoo import cnn, mlp, resnet18

F64 = np.float64


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- gradient checks (float64, central differences) ---------------------------------------------


def _sample(size: int, gen: np.random.Generator, limit: int = 40) -> np.ndarray:
    return np.arange(size) if size <= limit else gen.choice(size, limit, replace=False)


def numeric_grad(f, arr: np.ndarray, idx: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.empty(len(idx))
    for n, flat_index in enumerate(idx):
        i = np.unravel_index(flat_index, arr.shape)  # works for non-contiguous views too
        old = arr[i]
        arr[i] = old + eps
        plus = f()
        arr[i] = old - eps
        minus = f()
        arr[i] = old
        out[n] = (plus - minus) / (2 * eps)
    return out


def grad_check(layer, x: np.ndarray, *, seed: int = 1, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Check ``backward`` of ``layer`` against finite differences of ``sum(forward(x) * g)``."""
    gen = rng(seed)
    y = layer.forward(x, True)
    g = gen.standard_normal(y.shape)
    dx = layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads.items()}

    def loss() -> float:
        return float(np.sum(layer.forward(x, True) * g))

    idx = _sample(x.size, gen)
    analytic = np.asarray(dx)[np.unravel_index(idx, x.shape)]
    np.testing.assert_allclose(analytic, numeric_grad(loss, x, idx), rtol=rtol, atol=atol,
                               err_msg=f"{layer.name}: input gradient")
    for key, value in layer.params.items():
        idx = _sample(value.size, gen)
        analytic = grads[key][np.unravel_index(idx, value.shape)]
        np.testing.assert_allclose(analytic, numeric_grad(loss, value, idx), rtol=rtol, atol=atol,
                                   err_msg=f"{layer.name}.{key}")


def test_linear_gradients():
    layer = Linear(7, 5, rng=rng(), dtype=F64, name="fc")
    layer.params["bias"][:] = rng(3).standard_normal(5)
    grad_check(layer, rng(2).standard_normal((4, 7)))


def test_linear_gradients_with_tokens():
    layer = Linear(6, 3, rng=rng(), dtype=F64)
    grad_check(layer, rng(2).standard_normal((2, 5, 6)))


@pytest.mark.parametrize(
    "cin,cout,kernel,stride,padding,groups,hw",
    [
        (4, 6, 3, 2, 1, 2, (7, 6)),   # the brief's case: stride 2, padding 1, groups 2
        (3, 4, (3, 2), (1, 2), (0, 1), 1, (6, 5)),
        (2, 3, 1, 1, 0, 1, (4, 4)),   # pointwise
        (4, 4, 3, 1, 1, 4, (5, 5)),   # depthwise
        (3, 2, 2, 2, 0, 1, (4, 6)),   # non-overlapping windows (patchify)
    ],
)
def test_conv2d_gradients(cin, cout, kernel, stride, padding, groups, hw):
    layer = Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, rng=rng(), dtype=F64)
    layer.params["bias"][:] = rng(3).standard_normal(cout)
    grad_check(layer, rng(2).standard_normal((2, cin) + hw))


def test_conv2d_gradients_through_non_contiguous_input():
    layer = Conv2d(3, 4, 3, padding=1, rng=rng(), dtype=F64)
    x = np.ascontiguousarray(rng(2).standard_normal((2, 5, 5, 3))).transpose(0, 3, 1, 2)  # NCHW view of NHWC
    grad_check(layer, x)


def _away_from(values: np.ndarray, points: tuple[float, ...], margin: float = 1e-3) -> np.ndarray:
    for p in points:
        close = np.abs(values - p) < margin
        values[close] = p + 2 * margin
    return values


def test_relu_gradients():
    grad_check(ReLU(dtype=F64), _away_from(rng(2).standard_normal((3, 4, 5)), (0.0,)))


def test_relu6_gradients():
    x = _away_from(rng(2).uniform(-3, 9, (3, 20)), (0.0, 6.0))
    grad_check(ReLU6(dtype=F64), x)


def _distinct(shape: tuple[int, ...], seed: int = 2) -> np.ndarray:
    """Values with gaps ≥ 0.01 so that no pooling window has a tie."""
    gen = rng(seed)
    size = int(np.prod(shape))
    return (gen.permutation(size) * 0.01 - size * 0.005).reshape(shape).astype(F64)


@pytest.mark.parametrize("kernel,stride,padding,hw", [(2, None, 0, (6, 4)), (3, 2, 1, (7, 6)), (2, 1, 0, (5, 5)),
                                                     (2, None, 0, (5, 7))])
def test_maxpool_gradients(kernel, stride, padding, hw):
    grad_check(MaxPool2d(kernel, stride, padding, dtype=F64), _distinct((2, 3) + hw))


@pytest.mark.parametrize("kernel,stride,padding,hw",
                         [(2, None, 0, (6, 4)), (3, 2, 1, (7, 6)), ((4, 4), None, 0, (4, 4))])
def test_avgpool_gradients(kernel, stride, padding, hw):
    grad_check(AvgPool2d(kernel, stride, padding, dtype=F64), rng(2).standard_normal((2, 3) + hw))


def test_maxpool_ties_route_gradient_once():
    pool = MaxPool2d(2)
    x = np.zeros((1, 1, 2, 2), dtype=np.float32)
    pool.forward(x, True)
    dx = pool.backward(np.ones((1, 1, 1, 1), dtype=np.float32))
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0] == 1.0  # the first maximum, as PyTorch


def test_flatten_gradients():
    grad_check(Flatten(dtype=F64), rng(2).standard_normal((2, 3, 2, 2)))


@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 3, 2)])
def test_batchnorm_gradients_training_mode(shape):
    layer = BatchNorm(shape[1], dtype=F64)
    layer.params["weight"][:] = rng(4).uniform(0.5, 1.5, shape[1])
    layer.params["bias"][:] = rng(5).standard_normal(shape[1])
    grad_check(layer, rng(2).standard_normal(shape) * 2 + 1, rtol=1e-5, atol=1e-7)


def test_batchnorm_statistics():
    layer = BatchNorm(3)
    x = (rng(2).standard_normal((50, 3, 4, 4)) * np.array([1, 2, 3]).reshape(1, 3, 1, 1) + 5).astype(np.float32)
    y = layer.forward(x, True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)
    count = x.size // 3
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * count / (count - 1),
                               rtol=1e-5)
    # eval mode: running statistics, no update
    before = {k: v.copy() for k, v in layer.buffers.items()}
    y_eval = layer.forward(x, False)
    mean, var = (before[k].reshape(1, 3, 1, 1) for k in ("running_mean", "running_var"))
    expected = (x - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(y_eval, expected, rtol=1e-5, atol=1e-5)
    for k in before:
        np.testing.assert_array_equal(layer.buffers[k], before[k])


def test_softmax_cross_entropy():
    gen = rng(2)
    logits = gen.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    sce = SoftmaxCrossEntropy()
    loss, grad = sce(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)
    idx = np.arange(logits.size)
    numeric = numeric_grad(lambda: sce(logits, labels)[0], logits, idx)
    np.testing.assert_allclose(grad.reshape(-1), numeric, rtol=1e-6, atol=1e-9)
    # stable for huge logits; rejects bad labels
    loss, grad = sce(np.array([[1000.0, 0.0]]), np.array([0]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="labels"):
        sce(logits, np.array([0, 1, 2, 3, 4]))


# --- forward against slow references ----------------------------------------------------------------


def test_linear_forward_matches_loops():
    layer = Linear(5, 3, rng=rng(), dtype=F64)
    layer.params["bias"][:] = [0.5, -1.0, 2.0]
    x = rng(2).standard_normal((4, 5))
    w, b = layer.params["weight"], layer.params["bias"]
    ref = np.array([[sum(x[i, k] * w[o, k] for k in range(5)) + b[o] for o in range(3)] for i in range(4)])
    np.testing.assert_allclose(layer.forward(x, False), ref, rtol=1e-12)


def conv_reference(x, w, b, stride, padding, groups):
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c_out, ho, wo))
    per_group = c_out // groups
    for i, o, y, z in itertools.product(range(n), range(c_out), range(ho), range(wo)):
        g = o // per_group
        acc = b[o]
        for ci, r, s in itertools.product(range(cg), range(kh), range(kw)):
            acc += xp[i, g * cg + ci, y * sh + r, z * sw + s] * w[o, ci, r, s]
        out[i, o, y, z] = acc
    return out


@pytest.mark.parametrize("kernel,stride,padding,groups", [(3, 1, 1, 1), ((3, 2), (2, 1), (1, 0), 2), (1, 2, 0, 1)])
def test_conv2d_forward_matches_loops(kernel, stride, padding, groups):
    layer = Conv2d(4, 6, kernel, stride=stride, padding=padding, groups=groups, rng=rng(), dtype=F64)
    layer.params["bias"][:] = rng(3).standard_normal(6)
    x = rng(2).standard_normal((2, 4, 5, 6))
    ref = conv_reference(x, layer.params["weight"], layer.params["bias"], layer.stride, layer.padding, groups)
    np.testing.assert_allclose(layer.forward(x, False), ref, rtol=1e-10, atol=1e-12)


def test_pool_forward_matches_loops():
    x = rng(2).standard_normal((2, 3, 7, 6))
    for cls, fill, reduce in ((MaxPool2d, -np.inf, np.max), (AvgPool2d, 0.0, np.mean)):
        layer = cls(3, 2, 1, dtype=F64)
        xp = np.full((2, 3, 9, 8), fill)
        xp[:, :, 1:8, 1:7] = x
        ref = np.array([[[[reduce(xp[i, c, 2 * y:2 * y + 3, 2 * z:2 * z + 3]) for z in range(3)] for y in range(4)]
                         for c in range(3)] for i in range(2)])
        np.testing.assert_allclose(layer.forward(x, False), ref, rtol=1e-12)


# --- the GEMM hook contract ---------------------------------------------------------------------------


def _records_of_trace(net: Network) -> list[tuple]:
    trace = build_step(net, PRESETS["fp32"])
    return [(op.layer, op.phase, op.m, op.n, op.k, op.count) for op in trace.gemms()]


def _train_step(model: GraphModel, x: np.ndarray, labels: np.ndarray, opt: SGD | None = None) -> float:
    loss, grad = SoftmaxCrossEntropy()(model.forward(x, True), labels)
    model.backward(grad)
    if opt is not None:
        opt.step()
    return loss


def _grouped_net(batch: int) -> Network:
    layers = [conv2d_layer("c1", (4, 6, 6), 8, 3, 1, 1)]
    layers.append(elementwise_layer("bn1", "batchnorm", layers[-1].out_shape))
    layers.append(elementwise_layer("r1", "relu6", layers[-1].out_shape))
    layers.append(conv2d_layer("dw", layers[-1].out_shape, 8, 3, 2, 1, groups=8))
    layers.append(conv2d_layer("pw", layers[-1].out_shape, 6, 1, groups=2))
    layers.append(pool_layer("ap", "avgpool", layers[-1].out_shape, 3))
    layers.append(flatten_layer("fl", layers[-1].out_shape))
    layers.append(linear_layer("fc", layers[-1].out_shape, 5))
    return Network("grouped", (4, 6, 6), tuple(layers), batch, classes=5)


@pytest.mark.parametrize(
    "net",
    [cnn(batch_size=64), mlp(batch_size=32), mlp((1, 8, 8), hidden=(32, 16), batch_size=8), _grouped_net(6)],
    ids=["cnn-digits", "mlp-digits", "mlp-flatten-first", "grouped"],
)
def test_recording_hook_matches_build_step(net):
    hook = RecordingHook()
    model = build_model(net, rng(), hook=hook)
    x = rng(1).random((net.batch_size,) + net.input_shape, dtype=np.float32)
    labels = rng(2).integers(0, net.classes, net.batch_size)
    _train_step(model, x, labels)
    # the backward runs in the builder's order, so the lists match exactly, in order
    assert [tuple(r) for r in hook.records] == _records_of_trace(net)


def test_first_layer_skips_bwd_data():
    hook = RecordingHook()
    model = build_model(cnn(batch_size=4), rng(), hook=hook)
    x = rng(1).random((4, 1, 8, 8), dtype=np.float32)
    model.forward(x, True)
    assert model.backward(np.ones((4, 10), dtype=np.float32) / 40) is None
    assert ("conv1", "bwd_data") not in {(r.layer, r.phase) for r in hook.records}
    assert ("conv2", "bwd_data") in {(r.layer, r.phase) for r in hook.records}
    with pytest.raises(RuntimeError, match="fc: backward"):  # the stash is gone after backward
        model.backward(np.ones((4, 10), dtype=np.float32))
    model.forward(x, False)  # eval mode keeps no stash either
    with pytest.raises(RuntimeError, match="fc: backward"):
        model.backward(np.ones((4, 10), dtype=np.float32))


class StashingHook(Float32Hook):
    """Multiplies with a rounded copy of x and stashes it: bwd_weight must read that copy."""

    def __init__(self):
        self.fwd_operands: dict[str, np.ndarray] = {}
        self.bwd_stashes: dict[str, object] = {}

    def fwd(self, layer, x, w, bias=None):
        xq = np.round(x * 4) / 4
        self.fwd_operands[layer] = xq
        y = np.matmul(xq, w)
        return (y if bias is None else y + bias), {"x": xq}

    def bwd_data(self, layer, dy, w, stash):
        assert stash["x"] is self.fwd_operands[layer]
        return super().bwd_data(layer, dy, w, stash)

    def bwd_weight(self, layer, stash, dy):
        self.bwd_stashes[layer] = stash
        return np.matmul(np.swapaxes(stash["x"], -1, -2), dy)


def test_hook_stash_reaches_backward():
    hook = StashingHook()
    assert isinstance(hook, GemmHook)
    net = _grouped_net(3)
    model = build_model(net, rng(), hook=hook)
    _train_step(model, rng(1).random((3, 4, 6, 6), dtype=np.float32), np.array([0, 1, 4]))
    assert set(hook.bwd_stashes) == {"c1", "dw", "pw", "fc"}
    for name, stash in hook.bwd_stashes.items():
        assert stash["x"] is hook.fwd_operands[name]
    # the weight gradient was computed from the stashed (rounded) operand
    fc = model["fc"]
    assert fc._stash is None  # dropped after backward


def test_hook_operands_in_float32():
    seen = []

    class Spy(Float32Hook):
        def fwd(self, layer, x, w, bias=None):
            seen.append((x.dtype, w.dtype))
            return super().fwd(layer, x, w, bias)

    model = build_model(cnn(batch_size=2), rng(), hook=Spy())
    out = model.forward(rng(1).random((2, 1, 8, 8), dtype=np.float32), True)
    assert out.dtype == np.float32
    assert seen and all(a == np.float32 and b == np.float32 for a, b in seen)
    for _, _, value, grad in model.parameters():
        assert value.dtype == np.float32 and grad.dtype == np.float32


# --- model building -------------------------------------------------------------------------------------


def test_build_model_names_and_parameters():
    model = build_model(cnn(), rng())
    assert [layer.name for layer in model] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc"]
    names = [(lname, pname) for lname, pname, _, _ in model.parameters()]
    assert names == [("conv1", "weight"), ("conv1", "bias"), ("conv2", "weight"), ("conv2", "bias"),
                     ("fc", "weight"), ("fc", "bias")]
    assert model.num_parameters() == 6032 + 16 + 32 + 10
    w = model["conv2"].params["weight"]
    assert w.shape == (32, 16, 3, 3)
    assert abs(w.std() - np.sqrt(2 / 144)) < 0.01  # He normal
    assert not model["fc"].params["bias"].any()


def test_build_model_trains_graphs_and_rejects_raw_gemms():
    """Residual graphs build (every layer type but a raw ``gemm``); a raw gemm is refused by name."""
    model = build_model(resnet18(batch_size=1, input_shape=(3, 32, 32), classes=10), rng())
    assert any(isinstance(n.module, Add) for n in model.nodes)
    gemm = Network("g", (4, 4), (Layer("proj", "gemm", (4, 4), (4, 4), m=4, n=4, k=4),), 1)
    with pytest.raises(GraphError, match="proj: gemm layer: raw gemm layers only describe inference traces"):
        build_model(gemm, rng())


def test_state_roundtrip_and_load_validation():
    net = _grouped_net(4)
    model = build_model(net, rng())
    x = rng(1).random((4, 4, 6, 6), dtype=np.float32)
    labels = np.array([0, 1, 2, 3])
    saved = model.state()
    assert "bn1.running_mean" in saved and "fc.weight" in saved
    ref_logits = model.forward(x, False)
    opt = SGD(model, 0.1, momentum=0.9)
    for _ in range(3):
        _train_step(model, x, labels, opt)
    assert not np.array_equal(model.forward(x, False), ref_logits)
    weight = model["fc"].params["weight"]
    model.load_state(saved)
    assert model["fc"].params["weight"] is weight  # in place
    np.testing.assert_array_equal(model.forward(x, False), ref_logits)
    with pytest.raises(ValueError, match="missing"):
        model.load_state({k: v for k, v in saved.items() if k != "fc.bias"})
    bad = dict(saved, **{"fc.bias": np.zeros(3)})
    with pytest.raises(ValueError, match="fc.bias"):
        model.load_state(bad)


# --- training --------------------------------------------------------------------------------------------


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = rng(seed)
    labels = gen.integers(0, 3, n)
    centers = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = centers[labels] + gen.standard_normal((n, 4)) * 0.7
    return x.astype(np.float32), labels


def test_sgd_reduces_loss():
    net = mlp((4,), classes=3, hidden=(16,), batch_size=32)
    model = build_model(net, rng())
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=1e-4)
    x, labels = _blobs(256)
    first = np.mean([SoftmaxCrossEntropy()(model.forward(x, False), labels)[0]])
    for epoch in range(5):
        for i in range(0, 256, 32):
            _train_step(model, x[i:i + 32], labels[i:i + 32], opt)
    last, _ = SoftmaxCrossEntropy()(model.forward(x, False), labels)
    assert last < 0.5 * first
    accuracy = np.mean(model.forward(x, False).argmax(1) == labels)
    assert accuracy > 0.85
    for _, _, value, _ in model.parameters():
        assert value.dtype == np.float32


def test_sgd_update_rule():
    layer = Linear(2, 1, rng=rng())
    model = GraphModel.chain([layer])
    w0 = layer.params["weight"].copy()
    opt = SGD(model, lr=0.5, momentum=0.9, weight_decay=0.1)
    g = np.array([[1.0, -2.0]], dtype=np.float32)
    layer.grads["weight"][:] = g
    opt.step()
    v1 = g + 0.1 * w0
    np.testing.assert_allclose(layer.params["weight"], w0 - 0.5 * v1, rtol=1e-6)
    w1 = layer.params["weight"].copy()
    opt.step()
    v2 = 0.9 * v1 + g + 0.1 * w1
    np.testing.assert_allclose(layer.params["weight"], w1 - 0.5 * v2, rtol=1e-6)


def test_same_seed_same_weights():
    def run(seed: int) -> dict[str, np.ndarray]:
        net = cnn(batch_size=16)
        model = build_model(net, rng(seed))
        opt = SGD(model, lr=0.05, momentum=0.9)
        data = rng(100)
        for _ in range(3):
            x = data.random((16, 1, 8, 8), dtype=np.float32)
            _train_step(model, x, data.integers(0, 10, 16), opt)
        return model.state()

    a, b, c = run(7), run(7), run(8)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])


def test_float64_model_matches_float32():
    net = cnn(batch_size=4)
    m32, m64 = build_model(net, rng()), build_model(net, rng(), dtype=F64)
    x = rng(1).random((4, 1, 8, 8))
    np.testing.assert_allclose(m32.forward(x.astype(np.float32), True), m64.forward(x, True), rtol=1e-4, atol=1e-5)
