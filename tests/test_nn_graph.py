"""Graph layers and graph models in float64: every backward against central finite differences
(layer norm, GELU, softmax — scaled, causal or not —, embeddings with positions, token select,
residual add, concat, attention products), and whole graphs whose gradients meet at fan-out."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.nn.layers import (
    GELU,
    Add,
    Concat,
    Embedding,
    LayerNorm,
    MatMul,
    Select,
    Softmax,
    SoftmaxCrossEntropy,
)
from accelsim.nn.model import build_model
from accelsim.workload.graph import (
    Layer,
    Network,
    add_layer,
    attention_layers,
    concat_layer,
    elementwise_layer,
    embedding_layer,
    linear_layer,
    select_layer,
)
from accelsim.workload.zoo import mobilenet_small, resnet, transformer

from test_nn_layers import grad_check, numeric_grad

F64 = np.float64


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def multi_grad_check(layer, xs: list[np.ndarray], *, seed: int = 1, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Check a multi-input layer's backward (one gradient per input) against finite differences."""
    gen = rng(seed)
    y = layer.forward(xs, True)
    g = gen.standard_normal(y.shape)
    dxs = layer.backward(g)

    def loss() -> float:
        return float(np.sum(layer.forward(xs, True) * g))

    for i, (x, dx) in enumerate(zip(xs, dxs)):
        idx = np.arange(x.size) if x.size <= 40 else gen.choice(x.size, 40, replace=False)
        analytic = np.asarray(dx)[np.unravel_index(idx, x.shape)]
        np.testing.assert_allclose(analytic, numeric_grad(loss, x, idx), rtol=rtol, atol=atol,
                                   err_msg=f"{layer.name}: gradient of input {i}")


def test_layernorm_gradients():
    layer = LayerNorm(6, dtype=F64)
    layer.params["weight"][:] = rng(3).standard_normal(6)
    layer.params["bias"][:] = rng(4).standard_normal(6)
    grad_check(layer, rng(2).standard_normal((3, 4, 6)))
    y = layer.forward(rng(5).standard_normal((2, 6)) * 3 + 1, False)
    w, b = layer.params["weight"], layer.params["bias"]
    np.testing.assert_allclose(((y - b) / w).mean(axis=-1), 0, atol=1e-12)


def test_gelu_gradients_and_values():
    """GELU's tanh form: gelu(1) = 0.841192 (0.5·(1 + tanh(√(2/π)·1.044715)))."""
    layer = GELU(dtype=F64)
    grad_check(layer, rng(2).standard_normal((4, 5)) * 2)
    np.testing.assert_allclose(layer.forward(np.array([[0.0, 1.0, -1.0]]), False), [[0.0, 0.841192, -0.158808]], atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_softmax_gradients(causal):
    layer = Softmax(scale=0.5, causal=causal, dtype=F64)
    x = rng(2).standard_normal((2, 3, 4, 4))
    grad_check(layer, x, atol=1e-9)
    y = layer.forward(x, False)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0)
    if causal:
        assert np.all(y[..., np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0)


def test_embedding_gradients_with_positions():
    """The table and the positional table get the gradient (ids repeated in a batch add up)."""
    layer = Embedding(5, 3, 4, rng=rng(), positions=True, dtype=F64)
    ids = np.array([[0, 1, 1, 4], [4, 4, 2, 0]])
    g = rng(2).standard_normal((2, 4, 3))
    layer.forward(ids, True)
    assert layer.backward(g) is None
    grads = {k: v.copy() for k, v in layer.grads.items()}

    def loss() -> float:
        return float(np.sum(layer.forward(ids, True) * g))

    for key in ("weight", "positions"):
        value = layer.params[key]
        idx = np.arange(value.size)
        np.testing.assert_allclose(grads[key].reshape(-1), numeric_grad(loss, value, idx), atol=1e-8)
    np.testing.assert_allclose(grads["weight"][3], 0)   # id 3 never read
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\)"):
        layer.forward(np.array([[5]]), False)


def test_select_add_concat_gradients():
    grad_check(Select(2, dtype=F64), rng(2).standard_normal((3, 4, 5)))
    multi_grad_check(Add(3, dtype=F64), [rng(i).standard_normal((2, 3, 4)) for i in range(3)])
    multi_grad_check(Concat(0, dtype=F64), [rng(1).standard_normal((2, 3, 4, 4)), rng(2).standard_normal((2, 5, 4, 4))])
    multi_grad_check(Concat(1, dtype=F64), [rng(1).standard_normal((2, 3, 4)), rng(2).standard_normal((2, 3, 2))])


def test_attention_products_gradients():
    """Q·Kᵀ per head on (tokens, features) inputs, and probabilities × V back to (tokens, features)."""
    scores = MatMul(2, (2, 5, 5), transpose_b=True, dtype=F64, name="scores")
    multi_grad_check(scores, [rng(1).standard_normal((3, 5, 8)), rng(2).standard_normal((3, 5, 8))])
    q, k = rng(1).standard_normal((1, 5, 8)), rng(2).standard_normal((1, 5, 8))
    s = scores.forward([q, k], False)
    np.testing.assert_allclose(s[0, 1], q[0][:, 4:] @ k[0][:, 4:].T)   # head 1: features 4..7
    context = MatMul(2, (5, 8), dtype=F64, name="context")
    multi_grad_check(context, [rng(3).random((3, 2, 5, 5)), rng(4).standard_normal((3, 5, 8))])


def _graph_grad_check(net: Network, x: np.ndarray, labels: np.ndarray, *, atol: float = 1e-7) -> None:
    """The whole model's parameter gradients (fan-out summed by the graph walk) against finite
    differences of the loss."""
    model = build_model(net, rng(0), dtype=F64)
    loss_fn = SoftmaxCrossEntropy()

    def loss() -> float:
        return loss_fn(model.forward(x, True), labels)[0]

    _, dlogits = loss_fn(model.forward(x, True), labels)
    model.backward(dlogits)
    gen = rng(9)
    checked = 0
    for lname, pname, value, grad in model.parameters():
        analytic = grad.copy()
        idx = gen.choice(value.size, min(value.size, 6), replace=False)
        np.testing.assert_allclose(analytic.reshape(-1)[idx], numeric_grad(loss, value, idx), rtol=1e-5, atol=atol,
                                   err_msg=f"{lname}.{pname}")
        checked += 1
    assert checked >= 4


def test_graph_with_fan_out_residual_and_concat_gradients():
    """One tensor feeds three layers (a residual add, a concat and a linear layer): its gradient is
    the sum of the three."""
    a = linear_layer("a", (6,), 6)
    relu = elementwise_layer("r", "relu", (6,), inputs=("a",))
    b = linear_layer("b", (6,), 6, inputs=("r",))
    shapes = {"r": (6,), "b": (6,)}
    add = add_layer("sum", shapes, ("b", "r"))
    cat = concat_layer("cat", {"sum": (6,), "r": (6,)}, ("sum", "r"), None)
    head = linear_layer("head", (12,), 3, inputs=("cat",))
    net = Network("g", (6,), (a, relu, b, add, cat, head), 4)
    _graph_grad_check(net, rng(1).standard_normal((4, 6)), np.array([0, 1, 2, 1]))


@pytest.mark.parametrize("causal", [False, True])
def test_transformer_graph_gradients(causal):
    """A transformer block on token ids: embedding with positions, layer norm, attention (causal or
    not), residual adds, GELU, per-token loss with an unscored token."""
    net = transformer(seq_len=4, vocab=5, layers=1, d_model=8, heads=2, causal=causal, batch_size=2)
    x = np.array([[0, 3, 1, 4], [2, 2, 0, 1]])
    labels = np.array([[1, 0, -1, 3], [4, 4, 2, 0]])
    _graph_grad_check(net, x, labels)


def test_residual_and_inverted_residual_cnn_gradients():
    _graph_grad_check(resnet((1, 8, 8), classes=3, depth=8, width=4, batch_size=2),
                      rng(1).random((2, 1, 8, 8)), np.array([0, 2]), atol=1e-6)
    _graph_grad_check(mobilenet_small((1, 8, 8), classes=3, width=4, expansion=2, batch_size=2),
                      rng(1).random((2, 1, 8, 8)), np.array([1, 2]), atol=1e-6)


def test_attention_expands_into_its_primitives():
    layers = attention_layers("att", (6, 8), 2, True, inputs=("input",))
    assert [layer.name for layer in layers] == ["att.q", "att.k", "att.v", "att.scores", "att.softmax",
                                               "att.context", "att.out"]
    scores, softmax = layers[3], layers[4]
    assert (scores.m, scores.n, scores.k, scores.count, scores.transpose_b) == (6, 6, 4, 2, True)
    assert softmax.causal and softmax.scale == pytest.approx(0.5)
    assert embedding_layer("e", (6,), 10, 8, True).out_shape == (6, 8)
    assert select_layer("s", (6, 8), 0).out_shape == (8,)
    assert isinstance(layers[0], Layer) and layers[0].inputs == ("input",)
