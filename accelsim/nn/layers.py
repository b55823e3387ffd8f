"""NumPy layers for emulated low-precision training, with every matrix product behind a hook.

Tensors are NumPy arrays with a leading batch axis: ``(N, features)`` or ``(N, tokens, features)``
for vectors, ``(N, C, H, W)`` for images (the graph's per-sample shapes with the batch in front).
Arrays passed between layers may be non-contiguous views (a convolution returns an NCHW view of
NHWC memory); every layer accepts any strides.

Every layer has ``name``, ``params`` and ``grads`` (dicts of arrays with the same keys; a backward
pass writes the gradients *into* the ``grads`` arrays, so references to them stay valid),
``buffers`` (non-trained state such as batch-norm running statistics), ``needs_input_grad``, and

* ``forward(x, training) -> y``
* ``backward(dy) -> dx`` — ``None`` when ``needs_input_grad`` is false (the layer reading the
  network input); parameter gradients are computed either way.

Layers compute in ``dtype`` (float32 for training, float64 for gradient checks).

GEMM hook
---------
Every matrix product of a :class:`Linear` or :class:`Conv2d` goes through a :class:`GemmHook`, so
that a precision policy can quantize the operands. The hook sees the GEMM operands exactly as the
trace lowers them (DESIGN.md, :meth:`accelsim.workload.graph.Layer.gemm_dims`):

* ``fwd(layer, x, w, bias) -> (y, stash)``: ``Y[m×n] = X[m×k]·W[k×n] + bias`` (``bias`` ``[n]``,
  ``[g, 1, n]`` for grouped convolutions, or ``None``; the array's epilogue adds it before the
  result is stored, so a hook rounds the sum) — for a convolution ``X`` is
  the im2col matrix (``m = N·H_out·W_out`` rows ordered ``(n, y, x)``, ``k = kh·kw·C_in/g``
  columns ordered ``(kernel row, kernel column, channel)``; zero padding appears in it as exact
  zeros, so a quantizer must map 0 to 0), for a linear layer ``m = N(·tokens)``, ``k = in``.
  ``w`` is the fp32 master weight in GEMM layout ``[k×n]`` (a view for linear layers, a permuted
  copy for convolutions). ``stash`` is whatever the hook wants back in the backward pass.
* ``bwd_data(layer, dy, w, stash) -> dx``: ``dX[m×k] = dY[m×n]·Wᵀ`` (the trace's ``bwd_data`` GEMM
  ``m, n=k, k=n``). Skipped for the layer that reads the network input.
* ``bwd_weight(layer, stash, dy) -> dw``: ``dW[k×n] = Xᵀ·dY`` (the trace's ``bwd_weight`` GEMM
  ``m=k, n, k=m``). Called before ``bwd_data``, as the trace builder orders them.

**The stash**: the layer keeps the object ``fwd`` returned next to the product, unopened, and hands
it back to ``bwd_data`` and ``bwd_weight`` of the same layer; it does not keep ``x`` itself. So the
hook alone decides what the weight-gradient GEMM re-reads: :class:`Float32Hook` returns ``x``; a
quantizing hook returns the quantized ``x`` it multiplied with (so ``bwd_weight`` reads the same
operand as ``fwd``), or codes plus scale, plus anything its backward needs (a PACT clip mask, …).
A layer drops its stash after ``backward`` and does not keep one in eval mode.

**Grouped convolutions** (``count = groups > 1``) call the hook once per phase with stacked
operands: ``x[g, m, k]``, ``w[g, k, n]``, ``dy[g, m, n]``; results are stacked the same way. With
``count == 1`` the operands are plain 2-D arrays. Hooks should transpose with
``np.swapaxes(a, -1, -2)`` and multiply with ``np.matmul`` to serve both; one call per layer and
phase also means one per-tensor quantization scale for all groups, as the trace's single
``rescale`` op per tensor assumes.

Ownership: arrays a hook returns belong to the layer (it may add the bias in place); operands the
hook receives must not be modified by it.

:class:`RecordingHook` wraps another hook and records every GEMM it executes as
``(layer, phase, m, n, k, count)`` in the trace's convention — the dimensions of the product of that
phase, as :class:`accelsim.trace.GemmOp` stores them — for comparison with
:func:`accelsim.workload.builder.build_step`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelsim.numerics import elementary

__all__ = [
    "Add", "AvgPool2d", "BatchNorm", "Concat", "Conv2d", "Embedding", "Flatten", "Float32Hook", "GELU",
    "GemmHook", "GemmRecord", "LayerNorm", "Linear", "MatMul", "MaxPool2d", "Module", "RecordingHook",
    "ReLU", "ReLU6", "Select", "Softmax", "SoftmaxCrossEntropy",
]


def _t(a: np.ndarray) -> np.ndarray:
    """Transpose the two last axes (a view; works for 2-D and stacked 3-D operands)."""
    return np.swapaxes(a, -1, -2)


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


# --- GEMM hooks ---------------------------------------------------------------------------------


@runtime_checkable
class GemmHook(Protocol):
    """Executes the three GEMMs of a weight layer; may quantize operands (see the module docs)."""

    def fwd(self, layer: str, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """``x[m,k] @ w[k,n] + bias`` → ``(y[m,n], stash)``."""
        ...

    def bwd_data(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        """``dy[m,n] @ w.T`` → ``dx[m,k]``."""
        ...

    def bwd_weight(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        """``x.T @ dy`` → ``dw[k,n]`` with ``x`` as recorded in ``stash``."""
        ...

    def prepare_input(self, layer: str, x: np.ndarray, training: bool) -> np.ndarray:
        """The layer's input tensor as its GEMM will read it (e.g. requantized to 4 bits), called
        on the tensor itself, before im2col."""
        ...

    def input_grad(self, layer: str, dx: np.ndarray) -> np.ndarray:
        """The gradient with respect to the layer's input, after :meth:`prepare_input`'s own
        backward (e.g. PACT's clip) is applied."""
        ...

    def fwd_act(self, layer: str, a: np.ndarray, b: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        """An activation × activation product (attention): ``a[g,m,k] @ b[g,k,n]`` with both operands
        quantized as the GEMM reads them → ``(y, stash)``."""
        ...

    def bwd_act(self, layer: str, stash: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Its two backward products: ``dA = dY·Bᵀ`` and ``dB = Aᵀ·dY`` (in that order)."""
        ...


class Float32Hook:
    """Plain products in the operands' dtype (float32 in training, float64 in gradient checks).

    The stash is ``x`` itself; inputs and their gradients pass through unchanged.
    """

    def prepare_input(self, layer: str, x: np.ndarray, training: bool) -> np.ndarray:
        return x

    def input_grad(self, layer: str, dx: np.ndarray) -> np.ndarray:
        return dx

    def fwd(self, layer: str, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        y = np.matmul(x, w)
        if bias is not None:
            y += bias
        return y, x

    def bwd_data(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        return np.matmul(dy, _t(w))

    def bwd_weight(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        return np.matmul(_t(stash), dy)

    def fwd_act(self, layer: str, a: np.ndarray, b: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        return np.matmul(a, b), (a, b)

    def bwd_act(self, layer: str, stash: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = stash
        return np.matmul(dy, _t(b)), np.matmul(_t(a), dy)


class GemmRecord(NamedTuple):
    """One executed GEMM: ``[m×k]·[k×n]`` repeated ``count`` times (trace convention)."""

    layer: str
    phase: str
    m: int
    n: int
    k: int
    count: int


def _count(a: np.ndarray) -> int:
    return a.shape[0] if a.ndim == 3 else 1


class RecordingHook:
    """Delegates to ``inner`` (default :class:`Float32Hook`) and appends a :class:`GemmRecord`
    per call to ``records``, with the dimensions of the product that phase executes:

    * ``fwd``: ``(m, n, k)`` of ``X·W``;
    * ``bwd_data``: ``(m, k, n)`` — ``dY[m×n]·Wᵀ[n×k]``;
    * ``bwd_weight``: ``(k, n, m)`` — ``Xᵀ[k×m]·dY[m×n]``.
    """

    def __init__(self, inner: GemmHook | None = None):
        self.inner: GemmHook = inner if inner is not None else Float32Hook()
        self.records: list[GemmRecord] = []

    def clear(self) -> None:
        self.records.clear()

    def prepare_input(self, layer: str, x: np.ndarray, training: bool) -> np.ndarray:
        return self.inner.prepare_input(layer, x, training)

    def input_grad(self, layer: str, dx: np.ndarray) -> np.ndarray:
        return self.inner.input_grad(layer, dx)

    def fwd(self, layer: str, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        y, stash = self.inner.fwd(layer, x, w, bias)
        m, k = x.shape[-2:]
        self.records.append(GemmRecord(layer, "fwd", m, w.shape[-1], k, _count(x)))
        return y, stash

    def bwd_data(self, layer: str, dy: np.ndarray, w: np.ndarray, stash: Any) -> np.ndarray:
        dx = self.inner.bwd_data(layer, dy, w, stash)
        m, n = dy.shape[-2:]
        self.records.append(GemmRecord(layer, "bwd_data", m, w.shape[-2], n, _count(dy)))
        return dx

    def bwd_weight(self, layer: str, stash: Any, dy: np.ndarray) -> np.ndarray:
        dw = self.inner.bwd_weight(layer, stash, dy)
        m, n = dy.shape[-2:]
        self.records.append(GemmRecord(layer, "bwd_weight", dw.shape[-2], n, m, _count(dy)))
        return dw

    def fwd_act(self, layer: str, a: np.ndarray, b: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        y, stash = self.inner.fwd_act(layer, a, b, training)
        self.records.append(GemmRecord(layer, "fwd", a.shape[-2], b.shape[-1], a.shape[-1], _count(a)))
        return y, stash

    def bwd_act(self, layer: str, stash: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        da, db = self.inner.bwd_act(layer, stash, dy)
        m, n = dy.shape[-2:]
        self.records.append(GemmRecord(layer, "bwd_data", m, da.shape[-1], n, _count(dy)))
        self.records.append(GemmRecord(layer, "bwd_data", db.shape[-2], n, m, _count(dy)))
        return da, db


# --- base class ---------------------------------------------------------------------------------


class Module:
    """Common state of all layers (see the module docs for the contract)."""

    #: graph layer type this class implements
    kind = ""

    def __init__(self, name: str, *, dtype: Any = np.float32, needs_input_grad: bool = True):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.needs_input_grad = needs_input_grad
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def _add_param(self, key: str, value: np.ndarray) -> None:
        self.params[key] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[key] = np.zeros_like(self.params[key])

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _missing_forward(self) -> RuntimeError:
        return RuntimeError(f"{self.name}: backward() without a training-mode forward() before it")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _he_normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Kaiming/He normal init for ReLU networks: N(0, 2 / fan_in), drawn in float64."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


# --- weight layers ------------------------------------------------------------------------------


class Linear(Module):
    """``y = x·Wᵀ + b`` over the last axis; weight ``(out, in)``, bias ``(out,)``.

    GEMM: ``x`` reshaped to ``[N(·tokens), in]`` times ``weight.T`` (``[in, out]``).
    """

    kind = "linear"

    def __init__(
        self, in_features: int, out_features: int, *, rng: np.random.Generator, name: str = "linear",
        bias: bool = True, hook: GemmHook | None = None, dtype: Any = np.float32,
        needs_input_grad: bool = True,
    ):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.in_features = in_features
        self.out_features = out_features
        self.hook: GemmHook = hook if hook is not None else Float32Hook()
        self._add_param("weight", _he_normal(rng, (out_features, in_features), in_features))
        if bias:
            self._add_param("bias", np.zeros(out_features))
        self._stash: Any = None
        self._in_shape: tuple[int, ...] = ()
        self._has_stash = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{self.name}: expected {self.in_features} input features, got shape {x.shape}")
        x2 = self.hook.prepare_input(self.name, x, training).reshape(-1, self.in_features)
        y, stash = self.hook.fwd(self.name, x2, self.params["weight"].T, self.params.get("bias"))
        if training:
            self._stash, self._has_stash, self._in_shape = stash, True, x.shape
        else:
            self._stash, self._has_stash = None, False
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if not self._has_stash:
            raise self._missing_forward()
        stash, self._stash, self._has_stash = self._stash, None, False
        dy2 = dy.reshape(-1, self.out_features)
        dw = self.hook.bwd_weight(self.name, stash, dy2)  # [in, out]
        np.copyto(self.grads["weight"], dw.T)
        if "bias" in self.params:
            np.sum(dy2, axis=0, out=self.grads["bias"])
        if not self.needs_input_grad:
            return None
        dx = self.hook.bwd_data(self.name, dy2, self.params["weight"].T, stash)
        return self.hook.input_grad(self.name, dx.reshape(self._in_shape))


# --- windows: im2col and its transpose, in NHWC compute layout ---------------------------------
#
# Images are NCHW to the caller, but the windowed layers compute on the NHWC view
# ``x.transpose(0, 2, 3, 1)`` and return NCHW views of NHWC memory: channels innermost keeps
# every strided copy's inner loop contiguous. Window tensors are ``(kh·kw, N, H_out, W_out, C)``.


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


def _pad_nhwc(xl: np.ndarray, padding: tuple[int, int], fill: float) -> np.ndarray:
    ph, pw = padding
    if not (ph or pw):
        return xl
    n, h, w, c = xl.shape
    xp = np.full((n, h + 2 * ph, w + 2 * pw, c), fill, dtype=xl.dtype)
    xp[:, ph:ph + h, pw:pw + w, :] = xl
    return xp


def _window_view(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], ho: int, wo: int) -> np.ndarray:
    """``(N, H_out, W_out, C, kh, kw)`` view of the windows of a padded NHWC tensor."""
    (sh, sw) = stride
    return sliding_window_view(xp, kernel, axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]


def _scatter_windows(dwin: np.ndarray, padded_shape: tuple[int, ...], kernel: tuple[int, int],
                     stride: tuple[int, int]) -> np.ndarray:
    """Sum per-window gradients ``(kh·kw, N, H_out, W_out, C)`` onto a padded NHWC tensor.

    Non-overlapping windows that tile the input exactly: one transposing copy. Otherwise one
    strided slice-add per kernel offset (``col2im`` without ``np.add.at``).
    """
    (kh, kw), (sh, sw) = kernel, stride
    _, n, ho, wo, c = dwin.shape
    _, hp, wp, _ = padded_shape
    if (sh, sw) == (kh, kw) and hp == ho * kh and wp == wo * kw:
        return dwin.reshape(kh, kw, n, ho, wo, c).transpose(2, 3, 0, 4, 1, 5).reshape(n, hp, wp, c)
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            dxp[:, rows, j:j + sw * (wo - 1) + 1:sw, :] += dwin[i * kw + j]
    return dxp


def _crop_to_nchw(dxp: np.ndarray, padding: tuple[int, int], h: int, w: int) -> np.ndarray:
    ph, pw = padding
    if ph or pw:
        dxp = dxp[:, ph:ph + h, pw:pw + w, :]
    return dxp.transpose(0, 3, 1, 2)


class Conv2d(Module):
    """2-D convolution by im2col; weight ``(C_out, C_in/groups, kh, kw)``, bias ``(C_out,)``.

    GEMM (per group, ``count = groups``): ``[N·H_out·W_out, kh·kw·C_in/g] · [kh·kw·C_in/g, C_out/g]``.
    Rows of the im2col matrix are ordered ``(n, y, x)``, columns ``(kernel row, kernel column,
    channel)``; the weight operand is the master weight permuted to match (a copy, ``[k, n]``,
    stacked ``[g, k, n]`` when ``groups > 1``). The activation gradient is folded back with one
    strided slice-add per kernel offset.
    """

    kind = "conv2d"

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int | tuple[int, int], *,
        rng: np.random.Generator, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
        groups: int = 1, name: str = "conv2d", bias: bool = True, hook: GemmHook | None = None,
        dtype: Any = np.float32, needs_input_grad: bool = True,
    ):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide in channels ({in_channels}) and out channels ({out_channels})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel = _pair(kernel)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.groups = groups
        self.hook: GemmHook = hook if hook is not None else Float32Hook()
        kh, kw = self.kernel
        fan_in = in_channels // groups * kh * kw
        self._add_param("weight", _he_normal(rng, (out_channels, in_channels // groups, kh, kw), fan_in))
        if bias:
            self._add_param("bias", np.zeros(out_channels))
        self._stash: Any = None
        self._has_stash = False
        self._geom: tuple[int, ...] = ()

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def gemm_weight(self) -> np.ndarray:
        """The weight as the GEMM's ``[k, n]`` operand (``[g, k, n/g]`` for grouped convolutions)."""
        w = self.params["weight"]
        g = self.groups
        if g == 1:
            return w.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)
        cg, (kh, kw) = self.in_channels // g, self.kernel
        return w.reshape(g, self.out_channels // g, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, -1)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected input (N, {self.in_channels}, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        (kh, kw), g = self.kernel, self.groups
        ho, wo = self.out_size(h, w)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"{self.name}: kernel {kh}x{kw} does not fit the {h}x{w} input")
        x = self.hook.prepare_input(self.name, x, training)
        xp = _pad_nhwc(_nhwc(x), self.padding, 0.0)
        win = _window_view(xp, self.kernel, self.stride, ho, wo)  # (n, ho, wo, c, kh, kw)
        m = n * ho * wo
        if g == 1:
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(m, kh * kw * c)
        else:
            cg = c // g
            cols = win.reshape(n, ho, wo, g, cg, kh, kw).transpose(3, 0, 1, 2, 5, 6, 4).reshape(g, m, kh * kw * cg)
        bias = self.params.get("bias")
        if bias is not None and g > 1:
            bias = bias.reshape(g, 1, self.out_channels // g)
        y, stash = self.hook.fwd(self.name, cols, self.gemm_weight(), bias)
        if g > 1:
            y = y.transpose(1, 0, 2)
        y = y.reshape(n, ho, wo, self.out_channels)
        if training:
            self._stash, self._has_stash, self._geom = stash, True, (n, c, h, w, ho, wo)
        else:
            self._stash, self._has_stash = None, False
        return y.transpose(0, 3, 1, 2)  # NCHW view of NHWC memory

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if not self._has_stash:
            raise self._missing_forward()
        stash, self._stash, self._has_stash = self._stash, None, False
        n, c, h, w, ho, wo = self._geom
        (kh, kw), (ph, pw) = self.kernel, self.padding
        g, c_out = self.groups, self.out_channels
        m = n * ho * wo
        dy2 = _nhwc(dy).reshape(m, c_out)  # free when dy is NHWC in memory
        if "bias" in self.params:
            np.sum(dy2, axis=0, out=self.grads["bias"])
        cg = c // g
        if g == 1:
            dyg = dy2
        else:
            dyg = np.ascontiguousarray(dy2.reshape(m, g, c_out // g).transpose(1, 0, 2))
        dw = self.hook.bwd_weight(self.name, stash, dyg)  # [k, n] or [g, k, n/g]
        dw = dw.reshape(g, kh, kw, cg, c_out // g).transpose(0, 4, 3, 1, 2)
        np.copyto(self.grads["weight"], dw.reshape(self.params["weight"].shape))
        if not self.needs_input_grad:
            return None
        dcols = self.hook.bwd_data(self.name, dyg, self.gemm_weight(), stash)  # [m, k] or [g, m, k]
        if g == 1:
            dwin = dcols.reshape(n, ho, wo, kh, kw, c).transpose(3, 4, 0, 1, 2, 5)
        else:
            dwin = dcols.reshape(g, n, ho, wo, kh, kw, cg).transpose(4, 5, 1, 2, 3, 0, 6)
        dwin = np.ascontiguousarray(dwin.reshape(kh * kw, n, ho, wo, c))  # per-offset blocks contiguous
        dxp = _scatter_windows(dwin, (n, h + 2 * ph, w + 2 * pw, c), self.kernel, self.stride)
        return self.hook.input_grad(self.name, _crop_to_nchw(dxp, self.padding, h, w))


# --- vector layers ------------------------------------------------------------------------------


class ReLU(Module):
    kind = "relu"

    def __init__(self, *, name: str = "relu", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.maximum(x, 0)
        self._mask = x > 0 if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._mask is None:
            raise self._missing_forward()
        mask, self._mask = self._mask, None
        if not self.needs_input_grad:
            return None
        return dy * mask


class ReLU6(ReLU):
    """``min(max(x, 0), 6)``; the gradient passes where ``0 < x < 6``."""

    kind = "relu6"

    def __init__(self, *, name: str = "relu6", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name=name, dtype=dtype, needs_input_grad=needs_input_grad)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.clip(x, 0, 6)
        self._mask = ((x > 0) & (x < 6)) if training else None
        return y


class Flatten(Module):
    """``(N, ...) → (N, prod(...))`` in C order of the logical (e.g. NCHW) axes."""

    kind = "flatten"

    def __init__(self, *, name: str = "flatten", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self._in_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._in_shape = x.shape if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._in_shape is None:
            raise self._missing_forward()
        shape, self._in_shape = self._in_shape, None
        if not self.needs_input_grad:
            return None
        return dy.reshape(shape)


class _Pool2d(Module):
    """Shared geometry of the pooling layers (floor mode), computed on gathered windows
    ``(kh·kw, N, H_out, W_out, C)`` (see the NHWC note above)."""

    def __init__(
        self, kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0, *, name: str, dtype: Any = np.float32, needs_input_grad: bool = True,
    ):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.kernel = _pair(kernel)
        self.stride = _pair(stride if stride is not None else kernel)
        self.padding = _pair(padding)
        self._geom: tuple[int, ...] | None = None

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def _gather(self, x: np.ndarray, fill: float) -> np.ndarray:
        """The input's windows, ``(kh·kw, N, H_out, W_out, C)`` contiguous; sets ``_geom``."""
        if x.ndim != 4:
            raise ValueError(f"{self.name}: expected input (N, C, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        kh, kw = self.kernel
        ho, wo = self.out_size(h, w)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"{self.name}: window {kh}x{kw} does not fit the {h}x{w} input")
        xp = _pad_nhwc(_nhwc(x), self.padding, fill)
        win = _window_view(xp, self.kernel, self.stride, ho, wo)
        self._geom = (n, c, h, w)
        return np.ascontiguousarray(win.transpose(4, 5, 0, 1, 2, 3).reshape(kh * kw, n, ho, wo, c))

    def _fold(self, dwin: np.ndarray) -> np.ndarray:
        assert self._geom is not None
        n, c, h, w = self._geom
        ph, pw = self.padding
        dxp = _scatter_windows(dwin, (n, h + 2 * ph, w + 2 * pw, c), self.kernel, self.stride)
        return _crop_to_nchw(dxp, self.padding, h, w)


class MaxPool2d(_Pool2d):
    """Max pooling (floor mode, padding with −inf). The gradient goes to the first maximum of a
    window in row-major order (as PyTorch), so ties never duplicate it."""

    kind = "maxpool"

    def __init__(self, kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, *, name: str = "maxpool", dtype: Any = np.float32,
                 needs_input_grad: bool = True):
        super().__init__(kernel, stride, padding, name=name, dtype=dtype, needs_input_grad=needs_input_grad)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        windows = self._gather(x, -np.inf)
        y = windows.max(axis=0)
        self._cache = (windows, y) if training else None
        return y.transpose(0, 3, 1, 2)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise self._missing_forward()
        windows, y = self._cache
        self._cache = None
        if not self.needs_input_grad:
            return None
        left = np.array(_nhwc(dy), dtype=y.dtype, order="C")  # gradient not yet routed to a maximum
        dwin = np.empty_like(windows)
        hit = np.empty(y.shape, dtype=bool)
        for o in range(windows.shape[0]):
            np.equal(windows[o], y, out=hit)
            np.multiply(left, hit, out=dwin[o])
            left -= dwin[o]  # exactly 0 where routed: later ties get nothing
        return self._fold(dwin)


class AvgPool2d(_Pool2d):
    """Average pooling (floor mode; zero padding counted in the average, as PyTorch's default)."""

    kind = "avgpool"

    def __init__(self, kernel: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, *, name: str = "avgpool", dtype: Any = np.float32,
                 needs_input_grad: bool = True):
        super().__init__(kernel, stride, padding, name=name, dtype=dtype, needs_input_grad=needs_input_grad)
        self._trained = False

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        windows = self._gather(x, 0.0)
        self._trained = training
        return windows.mean(axis=0, dtype=windows.dtype).transpose(0, 3, 1, 2)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if not self._trained:
            raise self._missing_forward()
        self._trained = False
        if not self.needs_input_grad:
            return None
        kh, kw = self.kernel
        d = _nhwc(dy) * dy.dtype.type(1.0 / (kh * kw))
        return self._fold(np.broadcast_to(d, (kh * kw,) + d.shape))


class BatchNorm(Module):
    """Batch normalization over ``(N, C, H, W)`` (per channel) or ``(N, F)`` (per feature).

    Training mode normalizes with the batch statistics (biased variance) and updates the running
    statistics in place (``momentum`` 0.1, unbiased variance, as PyTorch); eval mode uses the
    running statistics. Parameters ``weight`` (γ, ones) and ``bias`` (β, zeros); buffers
    ``running_mean``, ``running_var``.
    """

    kind = "batchnorm"

    def __init__(self, num_features: int, *, name: str = "batchnorm", eps: float = 1e-5, momentum: float = 0.1,
                 dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self._add_param("weight", np.ones(num_features))
        self._add_param("bias", np.zeros(num_features))
        self.buffers["running_mean"] = np.zeros(num_features, dtype=self.dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=self.dtype)
        self._cache: tuple[Any, ...] | None = None

    def _axes(self, x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if x.ndim == 4 and x.shape[1] == self.num_features:
            return (0, 2, 3), (1, self.num_features, 1, 1)
        if x.ndim == 2 and x.shape[1] == self.num_features:
            return (0,), (1, self.num_features)
        raise ValueError(
            f"{self.name}: expected (N, {self.num_features}, H, W) or (N, {self.num_features}), got shape {x.shape}"
        )

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        axes, shape = self._axes(x)
        if training:
            count = x.size // self.num_features
            mean = x.mean(axis=axes, dtype=x.dtype)
            xc = x - mean.reshape(shape)
            var = np.mean(np.square(xc), axis=axes, dtype=x.dtype)
            mom = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1 - mom
            rm += mom * mean
            rv *= 1 - mom
            rv += (mom * count / max(count - 1, 1)) * var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            xc = x - mean.reshape(shape)
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = xc * inv.reshape(shape)
        y = xhat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)
        self._cache = (xhat, inv, axes, shape, training) if training else None
        return y.astype(self.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise self._missing_forward()
        xhat, inv, axes, shape, _ = self._cache
        self._cache = None
        dbeta = dy.sum(axis=axes)
        dgamma = (dy * xhat).sum(axis=axes)
        np.copyto(self.grads["bias"], dbeta)
        np.copyto(self.grads["weight"], dgamma)
        if not self.needs_input_grad:
            return None
        count = dy.size // self.num_features
        scale = (self.params["weight"] * inv / count).reshape(shape)
        return scale * (count * dy - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy: ``loss, dlogits = sce(logits, labels)``.

    ``logits`` ``(N, classes)`` with integer labels ``(N,)``, or per token ``(N, T, classes)`` with
    labels ``(N, T)``; a label of ``-1`` is ignored (no loss, no gradient). The loss is the mean over
    the labels that count, the gradient with respect to the logits is already divided by their
    number, in the logits' dtype. Computed in float64 with :mod:`accelsim.numerics.elementary`'s
    ``exp`` and ``log`` (the same bits on every CPU).
    """

    kind = "softmax_xent"
    IGNORE = -1

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        return self.forward(logits, labels)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        labels = np.asarray(labels)
        if logits.ndim not in (2, 3) or labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"softmax cross-entropy expects logits (N, classes) or (N, tokens, classes) and labels of "
                f"their leading shape; got {logits.shape} and {labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
        classes = logits.shape[-1]
        flat = logits.reshape(-1, classes)
        lab = labels.reshape(-1)
        valid = lab != self.IGNORE
        if lab.size and (lab.min() < self.IGNORE or lab.max() >= classes):
            raise ValueError(f"labels must lie in [0, {classes}) (or -1 to ignore), got [{lab.min()}, {lab.max()}]")
        n = int(valid.sum())
        with np.errstate(invalid="ignore", over="ignore"):   # a diverged run's inf logits give NaN
            z = (flat - flat.max(axis=1, keepdims=True)).astype(np.float64)
        ez = elementary.exp(z)
        sums = ez.sum(axis=1, keepdims=True)
        rows = np.flatnonzero(valid)
        picked = lab[rows]
        loss = float(np.sum(elementary.log(sums[rows, 0]) - z[rows, picked]) / max(n, 1))
        grad = ez / sums
        grad[rows, picked] -= 1
        grad *= 1.0 / max(n, 1)
        if n < lab.size:
            grad[~valid] = 0.0
        return loss, grad.astype(logits.dtype).reshape(logits.shape)


# --- graph layers: several inputs, sequences, attention ---------------------------------------------


class Add(Module):
    """Sum of two or more inputs of one shape (a residual connection); the gradient goes to each."""

    kind = "add"
    multi_input = True

    def __init__(self, n_inputs: int, *, name: str = "add", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.n_inputs = n_inputs

    def forward(self, xs: list[np.ndarray], training: bool) -> np.ndarray:
        y = np.add(xs[0], xs[1], dtype=self.dtype)
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:
        return [dy] * self.n_inputs


class Concat(Module):
    """Inputs joined along ``axis`` of the per-sample shape; the gradient is split back."""

    kind = "concat"
    multi_input = True

    def __init__(self, axis: int, *, name: str = "concat", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.axis = axis + 1  # the batch axis comes first
        self._sizes: list[int] | None = None

    def forward(self, xs: list[np.ndarray], training: bool) -> np.ndarray:
        self._sizes = [x.shape[self.axis] for x in xs] if training else None
        return np.concatenate(xs, axis=self.axis).astype(self.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:
        if self._sizes is None:
            raise self._missing_forward()
        cuts = np.cumsum(self._sizes)[:-1]
        self._sizes = None
        return list(np.split(dy, cuts, axis=self.axis))


class LayerNorm(Module):
    """Normalization over the last axis (features) of each sample or token, with a learned scale
    ``weight`` (ones) and shift ``bias`` (zeros); ``eps`` 1e-5 (PyTorch's)."""

    kind = "layernorm"

    def __init__(self, features: int, *, name: str = "layernorm", eps: float = 1e-5, dtype: Any = np.float32,
                 needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.features = features
        self.eps = eps
        self._add_param("weight", np.ones(features))
        self._add_param("bias", np.zeros(features))
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if x.shape[-1] != self.features:
            raise ValueError(f"{self.name}: expected {self.features} features, got shape {x.shape}")
        mean = x.mean(axis=-1, keepdims=True, dtype=self.dtype)
        xc = x - mean
        var = np.mean(np.square(xc), axis=-1, keepdims=True, dtype=self.dtype)
        inv = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype)
        xhat = xc * inv
        self._cache = (xhat, inv) if training else None
        return (xhat * self.params["weight"] + self.params["bias"]).astype(self.dtype, copy=False)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise self._missing_forward()
        xhat, inv = self._cache
        self._cache = None
        lead = tuple(range(dy.ndim - 1))
        np.copyto(self.grads["bias"], dy.sum(axis=lead))
        np.copyto(self.grads["weight"], (dy * xhat).sum(axis=lead))
        if not self.needs_input_grad:
            return None
        g = dy * self.params["weight"]
        f = self.dtype.type(self.features)
        return (inv / f) * (f * g - g.sum(axis=-1, keepdims=True) - xhat * (g * xhat).sum(axis=-1, keepdims=True))


_GELU_C = np.sqrt(2.0 / np.pi)


class GELU(Module):
    """GELU, tanh approximation (Hendrycks & Gimpel; GPT-2's):
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``, tanh from :mod:`accelsim.numerics.elementary`."""

    kind = "gelu"

    def __init__(self, *, name: str = "gelu", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x64 = x.astype(np.float64)
        u = _GELU_C * (x64 + 0.044715 * x64**3)
        t = elementary.tanh(u)
        self._cache = (x64, t) if training else None
        return (0.5 * x64 * (1.0 + t)).astype(self.dtype)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._cache is None:
            raise self._missing_forward()
        x64, t = self._cache
        self._cache = None
        if not self.needs_input_grad:
            return None
        du = _GELU_C * (1.0 + 3 * 0.044715 * x64**2)
        grad = 0.5 * (1.0 + t) + 0.5 * x64 * (1.0 - t * t) * du
        return (dy * grad).astype(self.dtype)


class Softmax(Module):
    """Softmax over the last axis of ``scale · x``; with ``causal``, entry ``(…, i, j)`` of a square
    last pair of axes is masked for ``j > i`` (a token attends to itself and earlier ones).
    ``exp`` from :mod:`accelsim.numerics.elementary`."""

    kind = "softmax"

    def __init__(self, *, scale: float = 1.0, causal: bool = False, name: str = "softmax",
                 dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.scale = scale
        self.causal = causal
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        z = x.astype(np.float64) * self.scale
        if self.causal:
            t = z.shape[-1]
            z = np.where(np.triu(np.ones((t, t), dtype=bool), 1), -np.inf, z)
        with np.errstate(invalid="ignore"):
            z -= z.max(axis=-1, keepdims=True)
        e = elementary.exp(z)
        y = (e / e.sum(axis=-1, keepdims=True)).astype(self.dtype)
        self._y = y if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._y is None:
            raise self._missing_forward()
        y, self._y = self._y, None
        if not self.needs_input_grad:
            return None
        inner = (dy * y).sum(axis=-1, keepdims=True)
        return (self.dtype.type(self.scale) * y * (dy - inner)).astype(self.dtype)


class Embedding(Module):
    """Token ids ``(N, T)`` → vectors ``(N, T, features)`` from a ``vocab × features`` table
    (``weight``, N(0, 1/features)), plus a learned ``(T, features)`` positional table
    (``positions``, same init) when ``positions``. The gradient is scattered into the tables
    (``np.add.at``: duplicate ids add up in order); there is no gradient for the ids."""

    kind = "embedding"

    def __init__(self, vocab: int, features: int, tokens: int, *, rng: np.random.Generator, positions: bool = False,
                 name: str = "embedding", dtype: Any = np.float32, needs_input_grad: bool = False):
        super().__init__(name, dtype=dtype, needs_input_grad=False)
        self.vocab = vocab
        self._add_param("weight", rng.standard_normal((vocab, features)) / np.sqrt(features))
        if positions:
            self._add_param("positions", rng.standard_normal((tokens, features)) / np.sqrt(features))
        self._ids: np.ndarray | None = None

    def forward(self, ids: np.ndarray, training: bool) -> np.ndarray:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            if not np.array_equal(ids, np.trunc(ids)):
                raise ValueError(f"{self.name}: token ids must be integers")
            ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab):
            raise ValueError(f"{self.name}: token ids must lie in [0, {self.vocab}), got [{ids.min()}, {ids.max()}]")
        y = self.params["weight"][ids]
        if "positions" in self.params:
            y = y + self.params["positions"][: ids.shape[1]]
        self._ids = ids if training else None
        return y

    def backward(self, dy: np.ndarray) -> None:
        if self._ids is None:
            raise self._missing_forward()
        ids, self._ids = self._ids, None
        grad = self.grads["weight"]
        grad[...] = 0
        np.add.at(grad, ids.reshape(-1), dy.reshape(-1, dy.shape[-1]))
        if "positions" in self.params:
            np.sum(dy, axis=0, out=self.grads["positions"])
        return None


class Select(Module):
    """Token ``index`` of a ``(N, T, features)`` input → ``(N, features)`` (BERT's [CLS] pooler input)."""

    kind = "select"

    def __init__(self, index: int, *, name: str = "select", dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.index = index
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._shape = x.shape if training else None
        return x[:, self.index, :]

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self._shape is None:
            raise self._missing_forward()
        shape, self._shape = self._shape, None
        if not self.needs_input_grad:
            return None
        dx = np.zeros(shape, dtype=dy.dtype)
        dx[:, self.index, :] = dy
        return dx


def _split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``(N, T, d)`` → ``(N·heads, T, d/heads)``; ``(N, heads, R, C)`` → ``(N·heads, R, C)``."""
    if x.ndim == 3:
        n, t, d = x.shape
        return x.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3).reshape(n * heads, t, d // heads)
    n, h, r, c = x.shape
    return x.reshape(n * h, r, c)


def _merge_heads(x: np.ndarray, shape: tuple[int, ...], heads: int) -> np.ndarray:
    """The inverse of :func:`_split_heads` for a per-sample shape ``shape`` (with the batch)."""
    if len(shape) == 3:
        n, t, d = shape
        return x.reshape(n, heads, t, d // heads).transpose(0, 2, 1, 3).reshape(shape)
    return x.reshape(shape)


class MatMul(Module):
    """An activation × activation product per head, through the GEMM hook (attention's ``Q·Kᵀ``
    and ``P·V``): an input ``(N, T, d)`` is split into ``heads`` of ``d/heads``, an input
    ``(N, heads, R, C)`` is taken per head; ``transpose_b`` transposes the second operand; an output
    of per-sample rank 2 merges the heads again. One hook call per phase for all heads and samples
    (``count = N·heads``)."""

    kind = "matmul"
    multi_input = True

    def __init__(self, heads: int, out_shape: tuple[int, ...], *, transpose_b: bool = False, name: str = "matmul",
                 hook: GemmHook | None = None, dtype: Any = np.float32, needs_input_grad: bool = True):
        super().__init__(name, dtype=dtype, needs_input_grad=needs_input_grad)
        self.heads = heads
        self.out_shape = tuple(out_shape)
        self.transpose_b = transpose_b
        self.hook: GemmHook = hook if hook is not None else Float32Hook()
        self._stash: Any = None
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def forward(self, xs: list[np.ndarray], training: bool) -> np.ndarray:
        a_in, b_in = xs
        a = _split_heads(a_in, self.heads)
        b = _split_heads(b_in, self.heads)
        if self.transpose_b:
            b = _t(b)
        y, stash = self.hook.fwd_act(self.name, a, b, training)
        n = a_in.shape[0]
        if training:
            self._stash, self._shapes = stash, (a_in.shape, b_in.shape)
        else:
            self._stash = self._shapes = None
        if len(self.out_shape) == 2:
            return _merge_heads(y, (n, *self.out_shape), self.heads)
        return y.reshape(n, *self.out_shape)

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:
        if self._shapes is None:
            raise self._missing_forward()
        (a_shape, b_shape), stash = self._shapes, self._stash
        self._stash = self._shapes = None
        da, db = self.hook.bwd_act(self.name, stash, _split_heads(dy, self.heads))
        if self.transpose_b:
            db = _t(db)
        return [_merge_heads(da, a_shape, self.heads), _merge_heads(db, b_shape, self.heads)]
