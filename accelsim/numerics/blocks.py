"""Block-scaled quantization (OCP Microscaling MX formats, NVIDIA NVFP4, block-scaled INT4) and the
random Hadamard transform.

A block-scaled tensor is cut into blocks along one axis (the reduction axis of the GEMM that reads
it; 1-D blocks of the format's size), or into square ``b × b`` blocks over its last two axes
(``square=True``: a weight matrix and its transpose then quantize alike). Each block shares one
scale; NVFP4 also divides the whole tensor by one FP32 scale first. With ``amax`` the block's
largest magnitude and ``emax``/``elem_max`` the element format's largest exponent and value:

* **E8M0 scales** (MX, and ``int4b`` by default), rule ``floor`` (the OCP reference):
  ``scale = 2**(floor(log2 amax) − emax)`` — the floor can push the block's largest value past the
  element maximum, and it saturates (amax = 7 in E2M1: scale 1, 7 → 6); rule ``ceil``:
  ``scale = 2**ceil(log2(amax / elem_max))``, nothing saturates. Exponents are clamped to E8M0's
  range 2**-127 … 2**127; an all-zero block takes 2**-127.
* **E4M3 scales** (NVFP4): the tensor scale is ``t = amax_tensor / (elem_max · 448)`` (FP32), the
  block scale ``amax / (elem_max · t)`` rounded to E4M3 — up (``ceil``: cuDNN's rule, no element
  saturates) or down (``floor``).
* **FP16 / FP32 scales** (``int4b`` options): ``amax / elem_max`` rounded up to the scale format.

Elements ``x / scale`` (``x / (scale · t)`` for NVFP4) are rounded to the element format — to
nearest, ties to even (decided exactly on the float64 quotient: one rounding, none through float32), or
stochastically (up with probability proportional to the distance from the lower neighbour:
unbiased inside the range) — and saturate at ``±elem_max``. ``int4b`` elements are the integers
−7 … 7, MXINT8's ``k · 2**-6`` for k = −128 … 127.

:func:`quantize_blocks` returns a :class:`~accelsim.numerics.gemm.Scaled` operand: the values
``element · block scale`` (exact in float32) and the tensor scale, applied once to a GEMM's result
as the hardware does. No global state; randomness only from the ``rng`` argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from accelsim.numerics.formats import get_format
from accelsim.numerics.gemm import Scaled
from accelsim.numerics.quant import representable_values

__all__ = ["BlockSpec", "block_spec", "element_grid", "round_elements", "quantize_blocks", "hadamard"]

E8M0_MIN_EXP, E8M0_MAX_EXP = -127, 127
E4M3_MAX = 448.0


@dataclass(frozen=True)
class BlockSpec:
    """How one tensor is block-quantized: element format, block size, scale format and rule."""

    element: str
    block: int
    scale: str
    rule: str = "floor"           # floor | ceil
    tensor_scale: bool = False

    @property
    def elem_max(self) -> float:
        if self.element == "int4":
            return 7.0
        if self.element == "int8":
            return 127 / 64
        return float(get_format(self.element).max_value)

    @property
    def emax(self) -> int:
        """Exponent of the element format's largest power of two (OCP's emax)."""
        return math.floor(math.log2(self.elem_max))


def block_spec(fmt: str, *, rule: str | None = None, block: int | None = None, scale: str | None = None) -> BlockSpec:
    """The :class:`BlockSpec` of a block-scaled format, with policy overrides (``int4b``'s block
    and scale format; the scale rule: OCP ``floor`` by default, ``ceil`` for NVFP4)."""
    f = get_format(fmt)
    if f.kind != "block":
        raise ValueError(f"{fmt!r} is not a block-scaled format")
    default_rule = "ceil" if f.scale_format == "fp8e4m3" else "floor"
    return BlockSpec(f.element, block or f.block, scale or f.scale_format, rule or default_rule, f.tensor_scale)


@lru_cache(maxsize=None)
def element_grid(element: str) -> np.ndarray:
    """All non-negative finite values of an element format, ascending (float64), enumerated from
    its codes (:func:`~accelsim.numerics.quant.representable_values`) or its integers — independent
    of any rounding routine. Index ``i`` is the code ``i`` of the positive value, so its parity is
    the parity of the last mantissa bit (or of the integer), which decides ties to even."""
    if element == "int4":
        return np.arange(0, 8, dtype=np.float64)
    if element == "int8":
        return np.arange(0, 128, dtype=np.float64) / 64
    values = representable_values(element)
    grid = values[values >= 0]
    grid.flags.writeable = False
    return grid


def _pow2(e: np.ndarray) -> np.ndarray:
    """2.0**e (float64) for integer exponents within the normal range, built from the bits."""
    bits = e + 1023
    bits <<= 52
    return bits.view(np.float64)


def round_elements(y: np.ndarray, element: str, *, stochastic: bool = False,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """``y`` (float64) rounded to the element format, saturating at its largest value; NaN stays
    NaN. With ``q = 2**k`` the grid spacing around ``|y|`` (``k = max(floor(log2|y|), emin) − m``
    for a float element; 0 for int4, −6 for int8), ``|y|/q`` is exact (a power of two) and lies
    between the integer codes of the neighbours ``lower`` and ``upper``. Nearest:
    ``rint(|y|/q)·q``, ties to the even integer, which is the even code (the last mantissa bit) —
    decided on ``y`` itself, with no intermediate rounding. Stochastic: ``floor(|y|/q + u)·q`` with
    ``u`` uniform in [0, 1): the upper neighbour with probability
    ``(|y| − lower) / (upper − lower)``."""
    if stochastic and not isinstance(rng, np.random.Generator):
        raise ValueError("stochastic rounding needs rng=numpy.random.Generator")
    top = element_grid(element)[-1]
    a = np.absolute(y, dtype=np.float64)
    np.minimum(a, top, out=a)                    # NaN stays NaN
    has_nan = a.size and math.isnan(float(np.sum(a)))   # values <= top: the sum is finite unless NaN
    if has_nan:
        nan = np.isnan(a)
        a[nan] = 0.0
    if element in ("int4", "int8"):
        k = None
        if element == "int8":
            a *= 64.0
    else:
        f = get_format(element)
        k = a.view(np.int64) >> 52              # biased exponent of a (a >= 0)
        np.maximum(k, 1 - f.bias + 1023, out=k)
        k -= 1023 + f.mantissa_bits             # the quantum's exponent
        q = _pow2(k)
        np.divide(a, q, out=a)                   # exact: a power of two
    if stochastic:
        a += rng.random(a.shape)
        np.floor(a, out=a)
    else:
        np.rint(a, out=a)
    if k is not None:
        a *= q
    elif element == "int8":
        a /= 64.0
    np.minimum(a, top, out=a)                    # rounding up from just below the top
    out = np.copysign(a, y, out=a)
    if has_nan:
        out[nan] = np.nan
    return out


def _pow2_floor_exp(v: np.ndarray) -> np.ndarray:
    """floor(log2 v) for v > 0, exactly (frexp)."""
    _, e = np.frexp(v)
    return e - 1


def _round_scale_e4m3(s: np.ndarray, rule: str) -> np.ndarray:
    """A positive scale rounded up (``ceil``) or down (``floor``) to E4M3, within [2**-9, 448]."""
    grid = element_grid("fp8e4m3")
    grid = grid[grid > 0]
    s = np.clip(s, grid[0], grid[-1])
    if rule == "ceil":
        idx = np.searchsorted(grid, s, side="left")
    else:
        idx = np.searchsorted(grid, s, side="right") - 1
    return grid[np.clip(idx, 0, len(grid) - 1)]


def _round_scale_float(s: np.ndarray, fmt: str) -> np.ndarray:
    """A positive scale rounded up to fp16 or fp32 (the next representable value at or above)."""
    dtype = np.float16 if fmt == "fp16" else np.float32
    r = s.astype(dtype).astype(np.float64)
    low = r < s
    if low.any():
        r[low] = np.nextafter(r[low].astype(dtype), dtype(np.inf)).astype(np.float64)
    return r


def _block_scales(amax: np.ndarray, spec: BlockSpec) -> np.ndarray:
    """One scale per block (float64) from the blocks' ``amax`` (see the module docs)."""
    if spec.scale == "e8m0":
        if spec.rule == "floor":
            e = np.where(amax > 0, _pow2_floor_exp(np.where(amax > 0, amax, 1.0)) - spec.emax, E8M0_MIN_EXP)
        else:
            ratio = np.where(amax > 0, amax / spec.elem_max, 1.0)
            fl = _pow2_floor_exp(ratio)
            e = np.where(np.ldexp(1.0, fl) < ratio, fl + 1, fl)
            e = np.where(amax > 0, e, E8M0_MIN_EXP)
        return np.ldexp(1.0, np.clip(e, E8M0_MIN_EXP, E8M0_MAX_EXP).astype(np.int64))
    raw = np.where(amax > 0, amax / spec.elem_max, 1.0)
    if spec.scale == "fp8e4m3":
        return _round_scale_e4m3(raw, spec.rule)
    if spec.scale in ("fp16", "fp32"):
        return _round_scale_float(raw, spec.scale)
    raise ValueError(f"unknown block scale format {spec.scale!r}")


def quantize_blocks(x, spec: BlockSpec, *, axis: int = -1, square: bool = False, stochastic: bool = False,
                    rng: np.random.Generator | None = None) -> Scaled:
    """Block-quantize ``x`` (at least 2-D; blocks along ``axis`` or square over the last two axes)
    and return its :class:`~accelsim.numerics.gemm.Scaled` values (``element · block scale``,
    float32) and tensor scale. A block axis that is not a multiple of the block size ends with a
    shorter block (as zero padding would)."""
    x = np.asarray(x, dtype=np.float64)
    t = 1.0
    if spec.tensor_scale:
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if not math.isfinite(peak):
            return Scaled(x.astype(np.float32), 1.0)
        t = peak / (spec.elem_max * E4M3_MAX) if peak > 0 else 1.0
        t = float(np.float32(t))
        x = x / t
    b = spec.block
    if square:
        *lead, m, n = x.shape
        pm, pn = -m % b, -n % b
        xp = np.pad(x, [(0, 0)] * len(lead) + [(0, pm), (0, pn)]) if pm or pn else x
        blocks = xp.reshape(*lead, (m + pm) // b, b, (n + pn) // b, b)
        amax = np.max(np.abs(blocks), axis=(-3, -1), keepdims=True)
        scales = _block_scales(amax, spec)
        y = round_elements(blocks / scales, spec.element, stochastic=stochastic, rng=rng) * scales
        values = y.reshape(*lead, m + pm, n + pn)[..., :m, :n]
    else:
        ax = axis % x.ndim
        moved = np.moveaxis(x, ax, -1)
        k = moved.shape[-1]
        pk = -k % b
        mp = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, pk)]) if pk else moved
        blocks = mp.reshape(*mp.shape[:-1], (k + pk) // b, b)
        amax = np.max(np.abs(blocks), axis=-1, keepdims=True)
        scales = _block_scales(amax, spec)
        y = round_elements(blocks / scales, spec.element, stochastic=stochastic, rng=rng) * scales
        values = np.moveaxis(y.reshape(*mp.shape)[..., :k], -1, ax)
    return Scaled(values.astype(np.float32), t)


def hadamard(x: np.ndarray, signs: np.ndarray, *, axis: int) -> np.ndarray:
    """The random Hadamard transform along ``axis`` in blocks of ``n = len(signs)`` (a power of
    two): each block ``v`` becomes ``T v`` with ``T = H · diag(signs) / √n`` (``H`` the Sylvester
    Hadamard matrix), computed by the fast butterfly in float64 in a fixed order (the same bits
    everywhere); entries past the last whole block are left as they are. ``T`` is orthogonal, so
    the same transform on both operands of a GEMM along its reduction axis (the rows of ``A``'s
    last axis, the columns of ``B``'s) leaves the product unchanged: ``(A Tᵀ)(T B) = A B``."""
    n = len(signs)
    if n & (n - 1) or n < 1:
        raise ValueError(f"the Hadamard size must be a power of two, got {n}")
    x = np.asarray(x, dtype=np.float64)
    ax = axis % x.ndim
    out = np.moveaxis(x, ax, -1).copy()
    full = out.shape[-1] // n * n
    if full == 0:
        return np.moveaxis(out, -1, ax)
    lead = out.shape[:-1]
    v = out[..., :full].reshape(*lead, full // n, n) * signs
    spare = np.empty_like(v)
    h = 1
    while h < n:   # butterfly stage: (v_j, v_{j+h}) -> (v_j + v_{j+h}, v_j - v_{j+h}) in blocks of 2h
        w = v.reshape(*lead, full // n, n // (2 * h), 2, h)
        d = spare.reshape(w.shape)
        np.add(w[..., 0, :], w[..., 1, :], out=d[..., 0, :])
        np.subtract(w[..., 0, :], w[..., 1, :], out=d[..., 1, :])
        v, spare = spare, v
        h *= 2
    out[..., :full] = v.reshape(*lead, full) / math.sqrt(n)
    return np.moveaxis(out, -1, ax)
