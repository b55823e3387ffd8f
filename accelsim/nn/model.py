"""Trainable models built from a resolved :class:`~accelsim.workload.graph.Network`, and SGD.

:func:`build_model` turns a sequential network (every layer reads the previous one) into a
:class:`Sequential` of :mod:`accelsim.nn.layers` layers named like the graph's layers, so the GEMMs
it executes are the ones :func:`accelsim.workload.builder.build_step` puts in the trace: same
layers, same phases, same shapes, in the same order (forward layer by layer; backward in reverse
with ``bwd_weight`` before ``bwd_data``; no ``bwd_data`` for the layer that reads the network
input — as in the builder, only the very first layer; a weight layer right after a leading
``flatten`` does run its ``bwd_data`` GEMM, its result is then dropped).

:class:`SGD` updates the fp32 master weights in place: ``d = g + wd·w; v = μ·v + d; w -= lr·v``
(PyTorch's formulation, weight decay on every parameter).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.nn.layers import (
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Flatten,
    Float32Hook,
    GemmHook,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    ReLU6,
)
from accelsim.workload.graph import GraphError, Layer, Network, conv_out_size

__all__ = ["Param", "SGD", "Sequential", "TRAINABLE_TYPES", "build_model", "check_trainable"]

#: Graph layer types :func:`build_model` can train.
TRAINABLE_TYPES = frozenset({"linear", "conv2d", "relu", "relu6", "maxpool", "avgpool", "batchnorm", "flatten"})


class Sequential:
    """Layers run one after the other; GEMM layers share one hook (:attr:`hook`)."""

    def __init__(self, layers: Sequence[Module], *, input_shape: tuple[int, ...] | None = None,
                 hook: GemmHook | None = None, name: str = "model"):
        self.layers: tuple[Module, ...] = tuple(layers)
        #: inputs are cast to this (the layers' compute dtype)
        self.dtype = self.layers[0].dtype if self.layers else np.dtype(np.float32)
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: layer names must be unique, got {names}")
        self.name = name
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self._by_name = dict(zip(names, self.layers))
        self.hook = hook if hook is not None else Float32Hook()

    # -- structure ---------------------------------------------------------------------------

    @property
    def hook(self) -> GemmHook:
        return self._hook

    @hook.setter
    def hook(self, hook: GemmHook) -> None:
        """Swap the GEMM hook of every weight layer (e.g. a quantizing hook, or fp32 for eval)."""
        self._hook = hook
        for layer in self.layers:
            if isinstance(layer, (Linear, Conv2d)):
                layer.hook = hook

    def __getitem__(self, name: str) -> Module:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def gemm_layers(self) -> list[Module]:
        return [layer for layer in self.layers if isinstance(layer, (Linear, Conv2d))]

    # -- compute -----------------------------------------------------------------------------

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Logits for a batch ``x`` of shape ``(N, *input_shape)`` (cast to :attr:`dtype`).

        A training-mode forward keeps what :meth:`backward` needs; an eval-mode forward
        (``training=False``: batch-norm running statistics, no stash) discards it."""
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.name}: expected input of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {x.shape}"
            )
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """Back-propagate the loss gradient; fills every layer's ``grads``. Returns the gradient
        with respect to the input, or ``None`` (the first layer does not compute it)."""
        grad: np.ndarray | None = dlogits
        for layer in reversed(self.layers):
            if grad is None:  # only the first layer returns None
                raise RuntimeError(f"{layer.name}: no gradient reached this layer")
            grad = layer.backward(grad)
        return grad

    # -- parameters and state ------------------------------------------------------------------

    def parameters(self) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
        """``(layer_name, param_name, array, grad)`` in layer order, then parameter order."""
        for layer in self.layers:
            for key, value in layer.params.items():
                yield layer.name, key, value, layer.grads[key]

    def num_parameters(self) -> int:
        return sum(value.size for _, _, value, _ in self.parameters())

    def state(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers, keyed ``"layer.param"`` (``np.savez``-able)."""
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            for key, value in (*layer.params.items(), *layer.buffers.items()):
                out[f"{layer.name}.{key}"] = value.copy()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        """Copy a :meth:`state` back in place (array identities are kept, so an optimizer holding
        them stays valid). Keys and shapes must match exactly."""
        targets: dict[str, np.ndarray] = {}
        for layer in self.layers:
            for key, value in (*layer.params.items(), *layer.buffers.items()):
                targets[f"{layer.name}.{key}"] = value
        missing = sorted(set(targets) - set(state))
        unknown = sorted(set(state) - set(targets))
        if missing or unknown:
            raise ValueError(f"{self.name}: state does not fit the model (missing {missing}, unknown {unknown})")
        for key, target in targets.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ValueError(f"{self.name}: state {key!r} has shape {value.shape}, the model {target.shape}")
        for key, target in targets.items():
            np.copyto(target, np.asarray(state[key]), casting="same_kind")


@dataclass
class Param:
    """One trained tensor: its value (updated in place), its gradient (written in place by the
    backward pass) and its L2 regularisation (``None``: the optimizer's ``weight_decay``)."""

    name: str
    value: np.ndarray
    grad: np.ndarray | None = None
    weight_decay: float | None = None

    def __post_init__(self) -> None:
        if self.grad is None:
            self.grad = np.zeros_like(self.value)


class SGD:
    """SGD with momentum and weight decay, in place on the model's (fp32 master) parameters and
    any ``extra`` :class:`Param` (e.g. PACT clip values, with their own regularisation).

    ``d = g + weight_decay·w``; ``v = momentum·v + d``; ``w -= lr·v`` (with ``momentum = 0``:
    ``w -= lr·d``). ``lr`` may be changed between steps (schedules). Deterministic.
    """

    def __init__(self, model: Sequential, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 extra: Sequence[Param] = ()):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(
                f"SGD: need lr > 0, 0 <= momentum < 1, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}"
            )
        self.model = model
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.params: list[Param] = [
            Param(f"{lname}.{pname}", value, grad) for lname, pname, value, grad in model.parameters()
        ] + list(extra)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"SGD: parameter names must be unique, got {names}")
        self.velocity: dict[str, np.ndarray] = {p.name: np.zeros_like(p.value) for p in self.params}
        self.steps = 0

    def step(self) -> None:
        for p in self.params:
            value, grad = p.value, p.grad
            t = value.dtype.type
            wd = self.weight_decay if p.weight_decay is None else p.weight_decay
            d = grad
            if wd:
                d = grad + t(wd) * value
            if self.momentum:
                v = self.velocity[p.name]
                v *= t(self.momentum)
                v += d
                d = v
            value -= t(self.lr) * d
        self.steps += 1

    def state(self) -> dict[str, np.ndarray]:
        return {key: v.copy() for key, v in self.velocity.items()}

    def load_state(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.velocity):
            raise ValueError("SGD: optimizer state does not fit the model's parameters")
        for key, v in self.velocity.items():
            np.copyto(v, np.asarray(state[key]), casting="same_kind")


# --- building from a graph ----------------------------------------------------------------------

_NOT_TRAINABLE = {
    "add": "residual adds are not trainable yet (only sequential networks are)",
    "gemm": "raw gemm layers only describe inference traces and cannot be trained",
    "matmul": "attention products are not trainable yet",
    "gelu": "gelu is not trainable yet",
    "layernorm": "layernorm is not trainable yet",
    "softmax": "softmax layers are not trainable yet",
}


def check_trainable(net: Network) -> None:
    """Raise :class:`~accelsim.workload.graph.GraphError` naming the first layer :func:`build_model`
    cannot train (its type, a non-sequential input, a window size these layers do not compute),
    without allocating anything."""
    prev: str | None = None
    for layer in net.layers:
        _check_layer(layer, prev)
        prev = layer.name


def _check_layer(layer: Layer, prev: str | None) -> None:
    trainable = ", ".join(sorted(TRAINABLE_TYPES))
    if layer.type in _NOT_TRAINABLE:
        raise GraphError(layer.name, f"{layer.type} layer: {_NOT_TRAINABLE[layer.type]} (trainable: {trainable})")
    if layer.type not in TRAINABLE_TYPES:
        raise GraphError(layer.name, f"{layer.type} layers are not trainable (trainable: {trainable})")
    if layer.inputs and (prev is None or layer.inputs != (prev,)):
        source = "the network input" if prev is None else f"the previous layer {prev!r}"
        raise GraphError(
            layer.name,
            f"reads {list(layer.inputs)} instead of {source}: only sequential networks are trainable "
            "(residual connections are not trainable yet)",
        )
    if layer.type == "batchnorm" and len(layer.in_shape) not in (1, 3):
        raise GraphError(layer.name, f"batchnorm is trainable on (channels, height, width) or (features,), "
                                     f"not {list(layer.in_shape)}")
    if layer.type in ("conv2d", "maxpool", "avgpool"):
        c, h, w = layer.in_shape
        ho = conv_out_size(h, layer.kernel[0], layer.stride[0], layer.padding[0])
        wo = conv_out_size(w, layer.kernel[1], layer.stride[1], layer.padding[1])
        if (ho, wo) != tuple(layer.out_shape[1:]):
            raise GraphError(layer.name, f"output {list(layer.out_shape[1:])} is not the floor-mode size "
                                         f"{[ho, wo]} these layers compute (ceil-mode windows are not trainable)")


def build_model(net: Network, rng: np.random.Generator, *, hook: GemmHook | None = None,
                dtype: Any = np.float32) -> Sequential:
    """A :class:`Sequential` for ``net``; weights drawn from ``rng`` in layer order.

    Raises :class:`~accelsim.workload.graph.GraphError` naming the layer for layer types that
    cannot be trained, for non-sequential graphs (a layer reading anything but the previous
    layer) and for shapes these layers would not reproduce (e.g. ceil-mode windows).
    """
    check_trainable(net)
    layers = [_make_layer(layer, rng, dtype=dtype, needs_input_grad=i > 0) for i, layer in enumerate(net.layers)]
    return Sequential(layers, input_shape=net.input_shape, hook=hook, name=net.name)


def _make_layer(layer: Layer, rng: np.random.Generator, *, dtype: Any, needs_input_grad: bool) -> Module:
    common = {"name": layer.name, "dtype": dtype, "needs_input_grad": needs_input_grad}
    kind = layer.type
    if kind == "linear":
        return Linear(layer.in_shape[-1], layer.out_shape[-1], rng=rng, **common)
    if kind == "flatten":
        return Flatten(**common)
    if kind == "relu":
        return ReLU(**common)
    if kind == "relu6":
        return ReLU6(**common)
    if kind == "batchnorm":
        return BatchNorm(layer.in_shape[0], **common)
    c = layer.in_shape[0]
    if kind == "conv2d":
        return Conv2d(c, layer.out_shape[0], layer.kernel, rng=rng, stride=layer.stride, padding=layer.padding,
                      groups=layer.groups, **common)
    if kind == "maxpool":
        return MaxPool2d(layer.kernel, layer.stride, layer.padding, **common)
    assert kind == "avgpool", kind
    return AvgPool2d(layer.kernel, layer.stride, layer.padding, **common)
