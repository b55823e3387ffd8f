"""Trainable models built from a resolved :class:`~accelsim.workload.graph.Network`, and SGD.

:func:`build_model` turns a network — any graph: layers that read several earlier layers, residual
adds, concatenations, attention — into a :class:`GraphModel` of :mod:`accelsim.nn.layers` modules
named like the graph's layers. It runs the graph the way :func:`accelsim.workload.builder.
build_step` traces it, so the GEMMs it executes are the trace's: the forward pass in layer order
(a topological order); the backward pass in reverse, where the gradients that reach a layer from
several consumers are summed first (in the order they arrive), and each weight layer runs its
``bwd_weight`` GEMM before its ``bwd_data`` GEMM; layers that read only the network input compute
no gradient for it.

:class:`SGD` updates the fp32 master weights in place: ``d = g + wd·w; v = μ·v + d; w -= lr·v``
(PyTorch's formulation, weight decay on every parameter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.nn.layers import (
    GELU,
    Add,
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    Embedding,
    Flatten,
    Float32Hook,
    GemmHook,
    LayerNorm,
    Linear,
    MatMul,
    MaxPool2d,
    Module,
    ReLU,
    ReLU6,
    Select,
    Softmax,
)
from accelsim.workload.graph import NETWORK_INPUT, GraphError, Layer, Network, conv_out_size

__all__ = [
    "GraphModel", "Node", "Param", "SGD", "TRAINABLE_TYPES", "build_model", "check_trainable", "initial_params_digest",
]

#: Graph layer types :func:`build_model` can train (every type but ``gemm``, a raw product of an
#: inference trace with no tensors behind it).
TRAINABLE_TYPES = frozenset({
    "linear", "conv2d", "relu", "relu6", "gelu", "maxpool", "avgpool", "batchnorm", "layernorm", "softmax",
    "flatten", "add", "concat", "embedding", "matmul", "select",
})

#: A layer that reads the network input.
INPUT: None = None


@dataclass
class Node:
    """One layer of the graph: its module and the nodes it reads (``None``: the network input)."""

    module: Module
    inputs: tuple[str | None, ...]
    layer: Layer

    @property
    def name(self) -> str:
        return self.module.name

    @property
    def multi_input(self) -> bool:
        return getattr(self.module, "multi_input", False)


class StepObserver:
    """Hooks of one forward and backward walk; the trainer uses them to store tensors in their
    formats and to record the ops it runs. Every method returns the (possibly replaced) tensor."""

    def forward(self, node: Node, y: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
        return y

    def grad_sum(self, node: Node, total: np.ndarray) -> np.ndarray:
        """``total`` is the sum of two gradient contributions of ``node``'s output."""
        return total

    def backward(self, node: Node, grads: list[np.ndarray | None]) -> list[np.ndarray | None]:
        return grads


@dataclass
class GraphModel:
    """A graph of layers run in order; GEMM layers share one hook (:attr:`hook`)."""

    nodes: list[Node]
    input_shape: tuple[int, ...] | None = None
    name: str = "model"
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    _hook: GemmHook = field(default_factory=Float32Hook)

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: layer names must be unique, got {names}")
        self._by_name = {n.name: n for n in self.nodes}
        for n in self.nodes:
            for src in n.inputs:
                if src is not None and (src not in self._by_name or names.index(src) >= names.index(n.name)):
                    raise ValueError(f"{self.name}: {n.name} reads {src!r}, not an earlier layer")
        self.hook = self._hook

    @classmethod
    def chain(cls, modules: Sequence[Module], **kwargs: Any) -> "GraphModel":
        """Modules one after the other (each reads the previous one)."""
        nodes, prev = [], None
        for m in modules:
            nodes.append(Node(m, (prev,), Layer(m.name, "relu", (1,), (1,))))
            prev = m.name
        return cls(nodes, **kwargs)

    # -- structure ---------------------------------------------------------------------------

    @property
    def hook(self) -> GemmHook:
        return self._hook

    @hook.setter
    def hook(self, hook: GemmHook) -> None:
        """Swap the GEMM hook of every weight layer (e.g. a quantizing hook, or fp32 for eval)."""
        self._hook = hook
        for node in self.nodes:
            if isinstance(node.module, (Linear, Conv2d, MatMul)):
                node.module.hook = hook

    @property
    def layers(self) -> tuple[Module, ...]:
        return tuple(n.module for n in self.nodes)

    def __getitem__(self, name: str) -> Module:
        return self._by_name[name].module

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.nodes)

    def gemm_layers(self) -> list[Module]:
        """Layers that own weights updated by SGD and run GEMMs (linear, conv2d)."""
        return [n.module for n in self.nodes if isinstance(n.module, (Linear, Conv2d))]

    # -- compute -----------------------------------------------------------------------------

    def forward(self, x: np.ndarray, training: bool, observer: StepObserver | None = None) -> np.ndarray:
        """The output of the last layer for a batch ``x`` of shape ``(N, *input_shape)`` (float
        inputs are cast to :attr:`dtype`; integer token ids stay integers).

        A training-mode forward keeps what :meth:`backward` needs; an eval-mode forward
        (``training=False``: batch-norm running statistics, no stash) discards it."""
        x = np.asarray(x)
        if x.dtype.kind == "f" and x.dtype != self.dtype:
            x = x.astype(self.dtype)
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{self.name}: expected input of shape (N, {', '.join(map(str, self.input_shape))}), got {x.shape}"
            )
        outputs: dict[str | None, np.ndarray] = {INPUT: x}
        y = x
        for node in self.nodes:
            ins = [outputs[src] for src in node.inputs]
            y = node.module.forward(ins if node.multi_input else ins[0], training)
            if observer is not None:
                y = observer.forward(node, y, ins)
            outputs[node.name] = y
        return y

    def backward(self, dlogits: np.ndarray, observer: StepObserver | None = None) -> None:
        """Back-propagate the loss gradient through the graph; fills every layer's ``grads``.
        Gradients reaching a layer's output from several consumers are summed first, in the order
        they arrive (the trace's ``grad_add`` ops)."""
        pending: dict[str, list[np.ndarray]] = {self.nodes[-1].name: [dlogits]} if self.nodes else {}
        for node in reversed(self.nodes):
            contributions = pending.pop(node.name, None)
            if not contributions:
                continue  # output unused: no gradient flows
            grad = contributions[0]
            for other in contributions[1:]:
                grad = grad + other
                if observer is not None:
                    grad = observer.grad_sum(node, grad)
            out = node.module.backward(grad)
            grads = out if node.multi_input else [out]
            if observer is not None:
                grads = observer.backward(node, grads)
            for src, g in zip(node.inputs, grads):
                if src is not None and g is not None:
                    pending.setdefault(src, []).append(g)

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

    def __init__(self, model: "GraphModel", lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
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
    "gemm": "raw gemm layers only describe inference traces (no tensors behind them) and cannot be trained",
}


def check_trainable(net: Network) -> None:
    """Raise :class:`~accelsim.workload.graph.GraphError` naming the first layer :func:`build_model`
    cannot train (its type, a window size these layers do not compute), without allocating."""
    for layer in net.layers:
        _check_layer(layer)


def _check_layer(layer: Layer) -> None:
    trainable = ", ".join(sorted(TRAINABLE_TYPES))
    if layer.type in _NOT_TRAINABLE:
        raise GraphError(layer.name, f"{layer.type} layer: {_NOT_TRAINABLE[layer.type]} (trainable: {trainable})")
    if layer.type not in TRAINABLE_TYPES:
        raise GraphError(layer.name, f"{layer.type} layers are not trainable (trainable: {trainable})")
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
                dtype: Any = np.float32) -> GraphModel:
    """A :class:`GraphModel` for ``net``; weights drawn from ``rng`` in layer order, then replaced by
    ``net.meta["initial_params"]`` where the network carries them (``{layer: {param or buffer:
    array}}`` in the modules' layouts, e.g. from an ONNX file's initializers; ``rng`` is drawn from
    all the same, so what it draws next does not depend on them).

    Raises :class:`~accelsim.workload.graph.GraphError` naming the layer for layer types that
    cannot be trained and for shapes these layers would not reproduce (e.g. ceil-mode windows).
    """
    check_trainable(net)
    nodes: list[Node] = []
    prev: str | None = None
    for layer in net.layers:
        inputs = tuple(None if n == NETWORK_INPUT else n for n in layer.inputs) if layer.inputs else (prev,)
        module = _make_layer(layer, rng, dtype=dtype, needs_input_grad=any(i is not None for i in inputs))
        nodes.append(Node(module, inputs, layer))
        prev = layer.name
    model = GraphModel(nodes, input_shape=net.input_shape, name=net.name, dtype=np.dtype(dtype))
    for lname, values in net.meta.get("initial_params", {}).items():
        module = model[lname]
        for key, value in values.items():
            target = module.params[key] if key in module.params else module.buffers[key]
            if target.shape != np.shape(value):
                raise GraphError(lname, f"initial {key} has shape {list(np.shape(value))}, the layer's {list(target.shape)}")
            np.copyto(target, value, casting="same_kind")
    if hook is not None:
        model.hook = hook
    return model


def initial_params_digest(net: Network) -> str | None:
    """SHA-256 of ``net.meta["initial_params"]`` (names, dtypes, shapes and bytes), ``None`` without."""
    initial = net.meta.get("initial_params")
    if not initial:
        return None
    digest = hashlib.sha256()
    for lname in sorted(initial):
        for key in sorted(initial[lname]):
            value = np.ascontiguousarray(initial[lname][key])
            digest.update(f"{lname}\0{key}\0{value.dtype.str}\0{value.shape}\0".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


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
    if kind == "gelu":
        return GELU(**common)
    if kind == "batchnorm":
        return BatchNorm(layer.in_shape[0], **common)
    if kind == "layernorm":
        return LayerNorm(layer.in_shape[-1], **common)
    if kind == "softmax":
        return Softmax(scale=layer.scale, causal=layer.causal, **common)
    if kind == "add":
        return Add(len(layer.inputs), **common)
    if kind == "concat":
        return Concat(layer.axis, **common)
    if kind == "select":
        return Select(layer.index, **common)
    if kind == "embedding":
        return Embedding(layer.vocab, layer.out_shape[-1], layer.out_shape[0], rng=rng, positions=layer.positions,
                         name=layer.name, dtype=dtype)
    if kind == "matmul":
        return MatMul(layer.count, layer.out_shape, transpose_b=layer.transpose_b, **common)
    c = layer.in_shape[0]
    if kind == "conv2d":
        return Conv2d(c, layer.out_shape[0], layer.kernel, rng=rng, stride=layer.stride, padding=layer.padding,
                      groups=layer.groups, **common)
    if kind == "maxpool":
        return MaxPool2d(layer.kernel, layer.stride, layer.padding, **common)
    assert kind == "avgpool", kind
    return AvgPool2d(layer.kernel, layer.stride, layer.padding, **common)
