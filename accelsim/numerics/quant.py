"""Bit-exact quantizers for the formats of :mod:`accelsim.numerics.formats`.

Every quantizer takes an array (any shape), works in ``float32`` and returns a :class:`Quantized`
holding the dequantized ``values`` (``float32``, same shape as the input), the per-tensor
``scale`` and the format name; the integer ``codes`` are derived from the values on first access
(:func:`encode` is the exact inverse of :func:`decode` on representable values).

Conventions shared by every quantizer here:

* Input is first converted to ``float32`` (``quantize(x) == quantize(np.float32(x))``), except
  ``fp16``, which is identical to numpy's ``x.astype(np.float16)`` for every input dtype
  (float32/float16 input takes a faster bit-exact emulation, other dtypes numpy's cast, so
  float64 input is rounded once, not twice).
* ``nearest`` rounding of integer formats is numpy's ``rint``: round half to even
  (``2.5 -> 2``, ``-3.5 -> -4``, ``-0.5 -> -0``). Floating formats round half to even on the
  mantissa (IEEE). Radix-4 FP4 (``fp4r4``) rounds ties towards the larger magnitude (see
  :func:`quantize_fp4r4`).
* ``stochastic`` rounding takes a ``numpy.random.Generator`` and rounds ``y`` to ``floor(y + u)``,
  ``u ~ U[0, 1)`` on the format's local grid, which is unbiased (``E[q(y)] = y``) for every ``y``
  inside the representable range; values outside the range saturate (and are therefore biased).
* Out-of-range values saturate to the largest representable magnitude (``±inf`` too), except
  ``fp16`` which follows IEEE/numpy (overflow to ``±inf``). ``NaN`` stays ``NaN`` in ``values``
  (its code is unspecified for the integer formats).
* No global state, no printing; randomness only from the ``rng`` argument.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import numpy as np

from .formats import get_format

__all__ = [
    "Rounding",
    "Underflow",
    "Quantized",
    "max_abs",
    "quantize",
    "quantize_int",
    "int_codes",
    "quantize_fp4r4",
    "two_phase_fp4r4",
    "fp4r4_levels",
    "fp4r4_scale_for",
    "quantize_float",
    "encode",
    "decode",
    "representable_values",
]

_F32 = np.float32
_SIGN = np.uint32(0x80000000)
_ABS = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)
# Smallest and largest log2 of an fp4r4 scale for which every level, and half the smallest
# level (the flush threshold), is a normal float32: 2**(S-13) >= 2**-126 and 2*2**S (phase 1)
# <= 2**127.
FP4R4_MIN_SCALE_EXP = -113
FP4R4_MAX_SCALE_EXP = 126


class Rounding(str, Enum):
    """Rounding mode of a quantizer.

    ``NEAREST``: deterministic round to nearest (tie rule per format, see the module docstring).
    ``STOCHASTIC``: round to one of the two neighbouring grid points with probability proportional
    to the proximity, so that the expectation equals the input (needs an ``rng``).
    """

    NEAREST = "nearest"
    STOCHASTIC = "stochastic"


class Underflow(str, Enum):
    """What radix-4 FP4 does below its smallest level ``m`` under nearest rounding.

    ``FLUSH``: nearest with zero as a grid point: ``|x| < m/2 -> 0``, ``m/2 <= |x| < m -> m``.
    ``STOCHASTIC``: ``|x| < m`` becomes ``m`` with probability ``|x|/m``, else ``0`` (unbiased).
    """

    FLUSH = "flush"
    STOCHASTIC = "stochastic"


@dataclass(frozen=True, eq=False)
class Quantized:
    """A quantized tensor.

    ``values`` are the dequantized numbers (``float32``, the input's shape); ``scale`` is the
    per-tensor scale (``1.0`` for the float formats; for ``fp4r4`` it is the top level of the grid
    actually used, i.e. ``2s`` for phase 1); ``format`` is a name from ``FORMATS``.
    ``codes`` (computed on first access) are the integer codes with ``decode(codes, format,
    scale) == values``: ``int8`` q for ``int4``, ``uint8`` q for ``uint4``, ``int8`` signed
    exponent code ``±c`` for ``fp4r4``, and the raw bit patterns (``uint8``/``uint16``/``uint32``)
    for ``fp8e4m3``/``fp8e5m2``/``fp16``/``fp32``.
    """

    values: np.ndarray
    scale: float
    format: str

    @cached_property
    def codes(self) -> np.ndarray:
        return encode(self.values, self.format, self.scale)


# --------------------------------------------------------------------------- helpers


def _rounding(rounding: Rounding | str) -> Rounding:
    try:
        return Rounding(rounding)
    except ValueError:
        raise ValueError(
            f"unknown rounding {rounding!r}; allowed: {', '.join(r.value for r in Rounding)}"
        ) from None


def _underflow(underflow: Underflow | str) -> Underflow:
    try:
        return Underflow(underflow)
    except ValueError:
        raise ValueError(
            f"unknown underflow mode {underflow!r}; allowed: {', '.join(u.value for u in Underflow)}"
        ) from None


def _need_rng(rng: np.random.Generator | None) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError("stochastic rounding needs rng=numpy.random.Generator")
    return rng


def _flat32(x) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` as a 1-D float32 array (a view when possible) and its original shape."""
    xf = np.asarray(x, dtype=_F32)
    return xf.reshape(-1), xf.shape


def _positive_scale(scale: float) -> np.float32:
    s = _F32(scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return s


def _pow2_exponent(scale: float, what: str = "scale") -> int:
    """log2 of a positive power of two, exactly; ``ValueError`` otherwise."""
    s = float(scale)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"{what} must be a positive power of two, got {scale!r}")
    mant, exp = math.frexp(s)
    if mant != 0.5:
        raise ValueError(f"{what} must be a positive power of two, got {scale!r}")
    return exp - 1


def _pow2_bits(exponent) -> np.ndarray:
    """float32 bit pattern of ``2**exponent`` for normal exponents (array or int)."""
    return np.left_shift(np.asarray(exponent, dtype=np.int32) + 127, 23)


def max_abs(x) -> float:
    """``max|x|`` as a Python float (two reductions, no temporary); ``0.0`` for an empty array;
    ``nan`` if ``x`` holds a NaN."""
    a = np.asarray(x)
    if a.size == 0:
        return 0.0
    return float(max(abs(float(a.max())), abs(float(a.min()))))


# --------------------------------------------------------------------------- integer formats


def quantize_int(
    x,
    scale: float,
    fmt: str = "int4",
    *,
    symmetric: bool = False,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
) -> Quantized:
    """Linear integer quantization with a per-tensor scale ``s``.

    Representable values: ``s*q`` with q in ``[-8, 7]`` (``int4``), ``[-7, 7]`` (``int4`` with
    ``symmetric=True``) or ``[0, 15]`` (``uint4``); the accumulator formats ``int16``/``int32``
    work the same way with their own ranges. With ``s32 = float32(scale)``::

        nearest:     q = clip(rint(fl32(x / s32)), qmin, qmax)        rint = round half to even
        stochastic:  q = clip(floor(fl32(x / s32) + u), qmin, qmax)   u ~ U[0, 1) float32
        values = fl32(q * s32)

    Stochastic rounding is unbiased for ``qmin <= x/s <= qmax``. ``Quantized.scale`` is
    ``float(s32)``.
    """
    codes, s = int_codes(x, scale, fmt, symmetric=symmetric, rounding=rounding, rng=rng)
    return Quantized(np.multiply(codes, _F32(s), out=codes), s, fmt)


def int_codes(
    x,
    scale: float,
    fmt: str = "int4",
    *,
    symmetric: bool = False,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, float]:
    """The integer codes ``q`` of :func:`quantize_int` (as float32, the input's shape) and the
    scale ``float(float32(scale))``: ``quantize_int(...).values == fl32(q * s)``. The exact GEMMs
    multiply these codes (:func:`accelsim.numerics.gemm.int_matmul`)."""
    f = get_format(fmt)
    if f.kind not in ("int", "uint"):
        raise ValueError(f"quantize_int handles the integer formats, not {fmt!r}")
    qmin, qmax = f.qmin, f.qmax
    if symmetric:
        if f.kind != "int":
            raise ValueError("symmetric=True applies to signed formats only")
        qmin = -qmax
    s = _positive_scale(scale)
    r = _rounding(rounding)
    flat, shape = _flat32(x)
    t = np.divide(flat, s)
    if r is Rounding.NEAREST:
        np.rint(t, out=t)
    else:
        t += _need_rng(rng).random(t.shape, dtype=_F32)
        np.floor(t, out=t)
    np.clip(t, qmin, qmax, out=t)
    return t.reshape(shape), float(s)


# --------------------------------------------------------------------------- radix-4 FP4


def fp4r4_levels(scale: float = 1.0, phase: int = 0) -> np.ndarray:
    """The 7 non-zero magnitudes of radix-4 FP4, ascending (float64).

    Phase 0: ``s*4**j`` for j = -6..0, i.e. ``s*4**(c-7)`` for codes c = 1..7; phase 1:
    ``2*s*4**j`` (the odd powers of two relative to ``s``).
    """
    _check_phase(phase)
    top = float(scale) * (2.0 if phase else 1.0)
    return np.array([top * 4.0 ** (c - 7) for c in range(1, 8)])


def _check_phase(phase: int) -> None:
    if phase not in (0, 1):
        raise ValueError(f"phase must be 0 or 1, got {phase!r}")


def _fp4r4_exponent(scale: float, phase: int) -> int:
    _check_phase(phase)
    S = _pow2_exponent(scale, "fp4r4 scale") + phase
    if not FP4R4_MIN_SCALE_EXP <= S <= FP4R4_MAX_SCALE_EXP:
        raise ValueError(
            f"fp4r4 scale 2**{S - phase} (phase {phase}) is outside the supported range "
            f"2**{FP4R4_MIN_SCALE_EXP}..2**{FP4R4_MAX_SCALE_EXP - phase}"
        )
    return S


def quantize_fp4r4(
    x,
    scale: float,
    *,
    phase: int = 0,
    rounding: Rounding | str = Rounding.NEAREST,
    underflow: Underflow | str = Underflow.FLUSH,
    rng: np.random.Generator | None = None,
) -> Quantized:
    """Radix-4 FP4 (1 sign, 3 exponent, 0 mantissa bits) with a power-of-two scale ``s``.

    Grid: ``T = s`` (phase 0) or ``T = 2s`` (phase 1, Two-Phase Rounding); representable values
    ``0`` and ``±T*4**(c-7)`` for codes c = 1..7, so magnitudes ``m = T*4**-6, 4m, ..., T``.

    Nearest rounding (linear distance), for ``y = |x|``:

    * ``y >= T`` saturates to ``T`` (``±inf`` too);
    * between neighbours ``L`` and ``4L`` the midpoint is ``2.5L``: ``y < 2.5L -> L``,
      ``y >= 2.5L -> 4L`` (**ties go to the larger magnitude**);
    * below ``m``, with ``underflow='flush'``: ``y < m/2 -> 0`` and ``y >= m/2 -> m`` (the tie at
      exactly ``m/2`` goes to ``m``); with ``underflow='stochastic'``: ``y < m`` becomes ``m``
      with probability ``y/m``, else 0.

    Stochastic rounding (``rounding='stochastic'``): ``y`` between neighbours ``L < U`` of the
    grid ``{0, m, 4m, ..., T}`` becomes ``U`` with probability ``(y-L)/(U-L)``, else ``L``
    (unbiased for ``y <= T``; ``underflow`` is then irrelevant). The sign is kept (a flushed
    negative value is ``-0.0``); ``NaN`` stays ``NaN``.

    ``Quantized.scale`` is ``T``; codes are ``int8`` ``±c`` (the 4-bit pattern is
    ``(c<0)<<3 | |c|``).
    """
    S = _fp4r4_exponent(scale, phase)
    r = _rounding(rounding)
    u = _underflow(underflow)
    flat, shape = _flat32(x)
    mag = flat.view(np.uint32) & _ABS             # |x| as float32 bit pattern (monotone)
    has_nan = bool(mag.size) and mag.max() > _INF_BITS
    if r is Rounding.NEAREST:
        # Work on the float32 bit pattern of y = |x| (monotone in y). Let F be the exponent field
        # of y and K = S + 113 the field of m/4 (m = T*4**-6 the smallest level). y lies in
        # [L, 4L) for the level L whose field is K + 2*floor((F-K)/2). The midpoint 2.5L = 1.25*2L
        # is reached when the field is K + 2*floor(..) + 1 and the mantissa is >= 1.25, so adding
        # 0x600000 (carries into the exponent iff mantissa >= 1.25) and then clearing the low
        # exponent bit relative to K's parity yields the nearest level's field, ties upwards.
        # Adding 0x800000 first when K is odd makes the parity even so that one AND does it.
        parity = (S + 113) & 1
        v = np.add(mag, np.uint32(0x600000 + (parity << 23)))
        v &= np.uint32(0xFF000000)        # nearest level's field (+parity), mantissa cleared
        lo_b, hi_b = _pow2_bits([S - 12 + parity, S + parity]).astype(np.uint32)
        np.clip(v, lo_b, hi_b, out=v)     # bit 31 (overflow of inf/NaN) counts as large: saturate
        if parity:
            v -= np.uint32(1 << 23)
        if has_nan:
            nan = mag > _INF_BITS
        # flush: keep iff y >= m/2 = 2**(S-13): (thr - 1 - mag) >> 31 is all ones iff keep
        keep = mag.view(np.int32)
        np.subtract(int(_pow2_bits(S - 13)) - 1, keep, out=keep)
        np.right_shift(keep, 31, out=keep)
        v &= mag
        np.bitwise_and(flat.view(np.uint32), _SIGN, out=mag)     # sign bits
        v |= mag
        vals = v.view(_F32)
        if u is Underflow.STOCHASTIC:
            m = _F32(2.0 ** (S - 12))
            y = np.abs(flat)
            idx = np.flatnonzero(y < m)
            if idx.size:
                draw = _need_rng(rng).random(idx.size, dtype=_F32)
                vals[idx] = np.copysign(np.where(draw * m < y[idx], m, _F32(0)), flat[idx])
    else:
        rng = _need_rng(rng)
        # floor level code lo in 0..7 and B = T*4**(lo-7) (B = m/4 for lo = 0); the neighbours
        # are L = B, U = 4B for lo >= 1 and L = 0, U = 4B = m for lo = 0. With z = y/B (exact):
        # up iff u < (z - k)/(4 - k), k = [lo >= 1]; lo = 7 saturates to T below.
        lo = np.right_shift(mag, 23).view(np.int32)
        lo -= S + 113
        np.right_shift(lo, 1, out=lo)
        np.clip(lo, 0, 7, out=lo)
        k = np.greater(lo, 0).astype(_F32)
        np.left_shift(lo, 1, out=lo)
        lo += S + 113
        np.left_shift(lo, 23, out=lo)
        base = lo.view(_F32)
        if has_nan:
            nan = mag > _INF_BITS
        z = mag.view(_F32)
        with np.errstate(invalid="ignore"):     # NaN inputs: fixed below
            z /= base
        z -= k
        np.subtract(_F32(4), k, out=k)    # 4 - k
        z /= k
        up = rng.random(z.shape, dtype=_F32) < z
        np.subtract(_F32(4), k, out=k)    # back to k: the down value is k*B ...
        np.copyto(k, _F32(4), where=up)   # ... and the up value is 4B
        base *= k
        np.minimum(base, _F32(2.0**S), out=base)
        vals = base
        np.copysign(vals, flat, out=vals)
    if has_nan:
        vals[nan] = np.nan
    return Quantized(vals.reshape(shape), 2.0 ** S, "fp4r4")


def two_phase_fp4r4(
    x,
    scale: float,
    *,
    rounding: Rounding | str = Rounding.NEAREST,
    underflow: Underflow | str = Underflow.FLUSH,
    rng: np.random.Generator | None = None,
) -> tuple[Quantized, Quantized]:
    """Two-Phase Rounding: the same tensor quantized to both radix-4 grids.

    Returns ``(phase0, phase1)``: phase 0 on ``s*4**j`` (even powers of two relative to ``s``),
    phase 1 on ``2s*4**j`` (odd powers), j = -6..0, each by :func:`quantize_fp4r4` with the same
    rounding options (stochastic draws for phase 0 come first from ``rng``).
    """
    return (
        quantize_fp4r4(x, scale, phase=0, rounding=rounding, underflow=underflow, rng=rng),
        quantize_fp4r4(x, scale, phase=1, rounding=rounding, underflow=underflow, rng=rng),
    )


def fp4r4_scale_for(max_magnitude: float) -> float:
    """The power-of-two fp4r4 scale that puts ``max_magnitude`` into the top bin.

    Returns the smallest power of two ``s >= max_magnitude``, so ``s/2 < max_magnitude <= s``:
    nothing saturates and the top level ``s`` is the nearest power of two above the maximum.
    ``1.0`` for zero (any scale represents an all-zero tensor); ``ValueError`` for a negative or
    non-finite input.
    """
    v = float(max_magnitude)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"max magnitude must be finite and >= 0, got {max_magnitude!r}")
    if v == 0.0:
        return 1.0
    mant, exp = math.frexp(v)          # v = mant * 2**exp, 0.5 <= mant < 1
    return math.ldexp(1.0, exp - 1 if mant == 0.5 else exp)


# --------------------------------------------------------------------------- IEEE-like floats


def _float_params(fmt: str) -> tuple[int, int, float]:
    f = get_format(fmt)
    if f.kind != "float":
        raise ValueError(f"{fmt!r} is not a floating-point format")
    return f.mantissa_bits, 1 - f.bias, f.max_value


def _round_float(
    flat: np.ndarray,
    m: int,
    emin: int,
    max_value: float,
    r: Rounding = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
    saturate: bool = True,
) -> np.ndarray:
    """Round 1-D float32 ``flat`` to an IEEE-like format with ``m`` mantissa bits and minimum
    normal exponent ``emin`` (gradual underflow below it); beyond ``±max_value`` saturate, or
    (``saturate=False``, IEEE) overflow to ``±inf``. Returns a new float32 array."""
    with np.errstate(over="ignore", invalid="ignore"):   # inf/NaN/overflow are handled below
        return _round_float_body(flat, m, emin, max_value, r, rng, saturate)


def _round_float_body(flat, m, emin, max_value, r, rng, saturate):
    e = np.right_shift(flat.view(np.uint32), 23)
    e &= np.uint32(0xFF)
    e = e.view(np.int32)
    np.maximum(e, emin + 127, out=e)            # biased exponent; subnormals share emin
    # quantum 2**(E-m), E = e - 127: y = x * 2**(m-E) exactly (scaling by a power of two)
    y = np.subtract(254 + m, e)
    np.left_shift(y, 23, out=y)
    y = y.view(_F32)
    np.multiply(flat, y, out=y)
    e -= m
    np.left_shift(e, 23, out=e)                 # bits of the quantum 2**(E-m)
    if r is Rounding.NEAREST:
        np.rint(y, out=y)                       # half to even on the last mantissa bit
    else:
        y += rng.random(y.shape, dtype=_F32)
        np.floor(y, out=y)
    y *= e.view(_F32)
    if saturate:
        np.clip(y, -max_value, max_value, out=y)
    elif y.size and (np.fmax.reduce(y) > max_value or np.fmin.reduce(y) < -max_value):
        np.copyto(y, np.copysign(_F32(np.inf), y), where=np.abs(y) > max_value)
    return y


_FP16 = (10, -14, 65504.0)   # mantissa bits, emin, max of IEEE half


def _round_fp16(flat: np.ndarray) -> np.ndarray:
    """float32 -> float32 holding ``flat.astype(np.float16)`` exactly (IEEE round half to even,
    overflow to inf), about 3x faster than numpy's float16 cast round trip."""
    return _round_float(flat, *_FP16, saturate=False)


def _round_bf16(flat: np.ndarray, r: Rounding, rng: np.random.Generator | None) -> np.ndarray:
    """float32 -> float32 holding the bfloat16 value: the top 16 bits of the pattern, rounded
    half to even (or stochastically: a uniform 16-bit integer added below them) in integer
    arithmetic, so subnormals and overflow to ±inf come out as IEEE has them; NaN stays NaN."""
    u = flat.view(np.uint32).astype(np.uint64)
    if r is Rounding.NEAREST:
        u += np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))
    else:
        u += rng.integers(0, 1 << 16, size=u.shape, dtype=np.uint64)
    u &= np.uint64(0xFFFF0000)
    out = u.astype(np.uint32).view(_F32)
    nan = np.isnan(flat)
    if nan.any():
        out[nan] = np.nan
    return out


def quantize_float(
    x,
    fmt: str,
    *,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
) -> Quantized:
    """Round to a float format (values returned as float32): ``fp4e2m1``, ``fp6e2m3``,
    ``fp6e3m2``, ``fp8e4m3``, ``fp8e5m2``, ``bf16``, ``fp16`` or ``fp32``.

    Representable values (``e``/``m`` exponent/mantissa bits, ``emin = 1 - bias``):
    ``±2**E * (1 + k/2**m)`` for ``emin <= E``, ``0 <= k < 2**m``, up to ``max_value``, and the
    subnormals ``±k * 2**(emin - m)``. ``fp8e4m3``: bias 7, max 448, smallest 2**-9;
    ``fp8e5m2``: bias 15, max 57344, smallest 2**-16.

    * ``fp8*`` nearest: ``q = rint(x / 2**(E-m)) * 2**(E-m)`` with ``E = max(floor(log2|x|),
      emin)`` (round half to even), then saturate to ``±max_value`` (``±inf`` too).
      Stochastic: ``floor(x / 2**(E-m) + u) * 2**(E-m)``, then saturate.
    * ``fp4e2m1``/``fp6*`` (OCP, no Inf): as ``fp8*``; they saturate at 6, 7.5 and 28.
    * ``bf16``: the top half of the float32 pattern rounded half to even (stochastic: a uniform
      16-bit integer added below it); overflow to ``±inf`` as IEEE (and ml_dtypes) have it.
    * ``fp16``: exactly ``x.astype(np.float16)`` (IEEE round half to even, overflow to ``±inf``);
      nearest only. float32 input takes the fast emulation above with ``m=10, emin=-14``
      (identical results), other dtypes numpy's cast.
    * ``fp32``: exactly ``np.asarray(x, np.float32)`` (may share memory with ``x``); nearest only.
    """
    m, emin, max_value = _float_params(fmt)
    r = _rounding(rounding)
    if fmt in ("fp16", "fp32"):
        if r is not Rounding.NEAREST:
            raise ValueError(f"{fmt} supports nearest rounding only")
        if fmt == "fp16":
            xa = np.asarray(x)
            if xa.dtype in (np.float32, np.float16) and xa.size > 4096:
                vals = _round_fp16(xa.astype(_F32, copy=False).reshape(-1)).reshape(xa.shape)
            elif xa.dtype in (np.float32, np.float16):   # small: numpy's cast is cheaper (the same bits)
                with np.errstate(over="ignore"):
                    vals = xa.astype(np.float16).astype(_F32)
            else:   # direct cast (no double rounding through float32)
                with np.errstate(over="ignore"):        # overflow to inf is the documented result
                    vals = xa.astype(np.float16).astype(_F32)
        else:
            with np.errstate(over="ignore"):
                vals = np.asarray(x, dtype=_F32)
        return Quantized(vals, 1.0, fmt)
    flat, shape = _flat32(x)
    if r is Rounding.STOCHASTIC:
        rng = _need_rng(rng)
    if fmt == "bf16":
        return Quantized(_round_bf16(flat, r, rng).reshape(shape), 1.0, fmt)
    vals = _round_float(flat, m, emin, max_value, r, rng)
    return Quantized(vals.reshape(shape), 1.0, fmt)


# --------------------------------------------------------------------------- codes


@functools.cache
def _small_float_table(fmt: str) -> np.ndarray:
    """float32 value of each code of a float format of at most 8 bits (NaN codes give NaN;
    fp8e5m2's inf codes give inf). The OCP "fn" formats (fp4e2m1, fp6e2m3, fp6e3m2) have no Inf
    or NaN; fp8e4m3 has NaN at S.1111.111 and no Inf."""
    f = get_format(fmt)
    e_bits, m = f.exponent_bits, f.mantissa_bits
    codes = np.arange(1 << f.bits)
    sign = np.where(codes >> (f.bits - 1), -1.0, 1.0)
    field = (codes >> m) & ((1 << e_bits) - 1)
    mant = codes & ((1 << m) - 1)
    emin = 1 - f.bias
    mag = np.where(
        field == 0,
        mant * 2.0 ** (emin - m),
        (1.0 + mant / 2.0**m) * np.exp2(field - f.bias),
    )
    top = (1 << e_bits) - 1
    if fmt == "fp8e4m3":           # e4m3 "fn": no infinities, S.1111.111 is NaN
        mag = np.where((field == top) & (mant == (1 << m) - 1), np.nan, mag)
    elif fmt == "fp8e5m2":         # IEEE-like: all-ones exponent is inf / NaN
        mag = np.where(field == top, np.where(mant == 0, np.inf, np.nan), mag)
    out = (sign * mag).astype(_F32)
    out.flags.writeable = False
    return out


def encode(values, fmt: str, scale: float = 1.0) -> np.ndarray:
    """Integer codes of representable ``values`` (the inverse of :func:`decode`).

    ``int4``: ``int8`` q = rint(v/s); ``uint4``: ``uint8`` q; ``int16``/``int32`` (the
    accumulator formats): ``int16``/``int32`` q; ``fp4r4``: ``int8`` ``±c`` with
    ``v = ±s*4**(c-7)`` (``s`` = the grid's top level), 0 for zero; ``fp8*``: ``uint8`` bit
    pattern ``sign<<7 | exponent<<m | mantissa`` (NaN -> ``0x7F``/``0xFF``); ``fp16``/``fp32``:
    the IEEE bit patterns (``uint16``/``uint32``). Values off the grid give unspecified codes.
    """
    f = get_format(fmt)
    v = np.asarray(values, dtype=_F32)
    if f.kind in ("int", "uint"):
        q = np.rint(v.astype(np.float64) / np.float64(_positive_scale(scale)))
        dtype = np.dtype(f"{'u' if f.kind == 'uint' else ''}int{max(8, f.bits)}")
        return np.clip(q, f.qmin, f.qmax).astype(dtype)
    if fmt == "fp4r4":
        S = _pow2_exponent(scale, "fp4r4 scale")
        bits = v.view(np.int32)
        c = np.bitwise_and(bits, 0x7FFFFFFF)
        np.right_shift(c, 23, out=c)               # exponent field: S + 2(c - 7) + 127
        c -= S + 113
        np.right_shift(c, 1, out=c)
        np.clip(c, 0, 7, out=c)                    # zero (field 0) -> 0
        neg = np.right_shift(bits, 31)             # -1 for negative values, else 0
        c ^= neg
        c -= neg                                   # two's complement negation where negative
        return c.astype(np.int8)
    if fmt == "fp16":
        return v.astype(np.float16).view(np.uint16)
    if fmt == "fp32":
        return v.copy().view(np.uint32)
    if fmt == "bf16":                              # the top half of the float32 pattern
        return (v.view(np.uint32) >> 16).astype(np.uint16)
    if f.kind == "scale":                          # e8m0: the biased exponent of a power of two
        with np.errstate(invalid="ignore"):
            e = (v.view(np.uint32) >> 23) & 0xFF
        return np.where(np.isnan(v), 0xFF, e).astype(np.uint8)
    if f.kind != "float":
        raise ValueError(f"{fmt!r} is a block-scaled format; its codes are its elements' "
                         f"({f.element}) and its scales' ({f.scale_format})")
    # small floats: exponent and mantissa fields from the float32 pattern; subnormals from the value
    m, emin, _ = _float_params(fmt)
    bits = v.view(np.uint32)
    sign = (bits >> 31).astype(np.uint8) << (f.bits - 1)
    mag = bits & _ABS
    e32 = (mag >> 23).astype(np.int32) - 127
    normal = e32 >= emin
    field = np.where(normal, e32 - emin + 1, 0)
    mant_n = (mag >> (23 - m)) & ((1 << m) - 1)
    with np.errstate(invalid="ignore"):           # NaN is replaced below
        mant_s = np.rint(np.abs(v) * _F32(2.0 ** (m - emin))).astype(np.int64)
    mant = np.where(normal, mant_n, mant_s)
    code = (field.astype(np.int64) << m) | mant
    code = np.where(np.isnan(v), (1 << (f.bits - 1)) - 1, code)
    return (code.astype(np.uint8) | sign).astype(np.uint8)


def decode(codes, fmt: str, scale: float = 1.0) -> np.ndarray:
    """float32 values of integer ``codes`` (see :func:`encode` for the code of each format).

    integer formats: ``fl32(q * float32(s))``; ``fp4r4``: ``sign(c) * s * 4**(|c|-7)``,
    0 for c = 0; floats: the IEEE-like meaning of the bit pattern.
    """
    f = get_format(fmt)
    c = np.asarray(codes)
    if f.kind in ("int", "uint"):
        return c.astype(_F32) * _positive_scale(scale)
    if fmt == "fp4r4":
        S = _pow2_exponent(scale, "fp4r4 scale")
        a = np.abs(c.astype(np.int32))
        if np.any(a > 7):
            raise ValueError("fp4r4 codes must lie in [-7, 7]")
        mag = np.where(a == 0, 0.0, np.exp2(S + 2.0 * (a - 7)))
        return np.copysign(mag, c).astype(_F32)
    if fmt == "fp16":
        with np.errstate(invalid="ignore"):            # NaN codes decode to NaN
            return c.astype(np.uint16).view(np.float16).astype(_F32)
    if fmt == "fp32":
        return c.astype(np.uint32).view(_F32).copy()
    if fmt == "bf16":
        return (c.astype(np.uint32) << 16).view(_F32)
    if f.kind == "scale":                          # e8m0: 2**(e-127); 0xFF is NaN
        e = c.astype(np.uint32)
        with np.errstate(over="ignore"):
            return np.where(e == 0xFF, np.nan, np.exp2(e.astype(np.float64) - 127)).astype(_F32)
    if f.kind != "float":
        raise ValueError(f"{fmt!r} is a block-scaled format; decode its elements and scales")
    if np.any(c >= 1 << f.bits):
        raise ValueError(f"{fmt} codes must lie in [0, {(1 << f.bits) - 1}]")
    return _small_float_table(fmt)[c.astype(np.int64)]


def representable_values(
    fmt: str, scale: float = 1.0, *, symmetric: bool = False, phase: int = 0
) -> np.ndarray:
    """All finite representable values of a format, sorted and unique (float64).

    ``int4``: ``s*[-8..7]`` (``[-7..7]`` symmetric); ``uint4``: ``s*[0..15]``; ``fp4r4``:
    ``{0} ∪ ±levels`` (see :func:`fp4r4_levels`); ``fp8*``/``fp16``/``int16``: every finite
    code. ``fp32`` and ``int32`` are refused (2**32 values).
    """
    f = get_format(fmt)
    if f.bits > 16:
        raise ValueError(f"{fmt} has 2**{f.bits} codes; representable_values is not offered for it")
    if f.kind in ("int", "uint"):
        lo = -f.qmax if symmetric else f.qmin
        return decode(np.arange(lo, f.qmax + 1), fmt, scale).astype(np.float64)
    if fmt == "fp4r4":
        lv = fp4r4_levels(scale, phase)
        return np.concatenate([-lv[::-1], [0.0], lv])
    n = 1 << f.bits
    with np.errstate(invalid="ignore"):                # signalling NaN codes
        vals = decode(np.arange(n, dtype=np.uint32), fmt).astype(np.float64)
    return np.unique(vals[np.isfinite(vals)] + 0.0)   # + 0.0 merges -0 into 0


# --------------------------------------------------------------------------- dispatcher


def quantize(
    x,
    fmt: str,
    *,
    scale: float | None = None,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
    symmetric: bool = False,
    phase: int = 0,
    underflow: Underflow | str = Underflow.FLUSH,
) -> Quantized:
    """Quantize ``x`` to the format named ``fmt`` (a name from ``FORMATS``).

    * ``int4``/``uint4`` (and ``int16``/``int32``): :func:`quantize_int`; ``scale=None`` means
      max scaling (``max|x|/qmax``: ``/7`` for ``int4``, ``/15`` for ``uint4``; ``1.0`` for an
      all-zero tensor).
    * ``fp4r4``: :func:`quantize_fp4r4`; ``scale=None`` means :func:`fp4r4_scale_for`\\ (max|x|).
    * ``fp8e4m3``/``fp8e5m2``/``fp16``/``fp32``: :func:`quantize_float` (``scale`` must be None
      or 1).

    Options that do not apply to the format (``symmetric``, ``phase``, ``underflow``) must keep
    their defaults; anything else is a ``ValueError``.
    """
    f = get_format(fmt)
    if f.kind in ("block", "scale"):
        raise ValueError(
            f"{fmt!r} is a {'block-scaled' if f.kind == 'block' else 'scale'} format: "
            "quantize with accelsim.numerics.blocks.quantize_blocks"
        )
    if symmetric and f.kind != "int":
        raise ValueError(f"symmetric=True applies to signed integer formats only, not {fmt!r}")
    if (phase != 0 or _underflow(underflow) is not Underflow.FLUSH) and fmt != "fp4r4":
        raise ValueError(f"phase and underflow apply to fp4r4 only, not {fmt!r}")
    if f.kind in ("int", "uint"):
        if scale is None:
            scale = _max_int_scale(x, f.qmax)
        return quantize_int(x, scale, fmt, symmetric=symmetric, rounding=rounding, rng=rng)
    if fmt == "fp4r4":
        if scale is None:
            scale = fp4r4_scale_for(max_abs(x))
        return quantize_fp4r4(
            x, scale, phase=phase, rounding=rounding, underflow=underflow, rng=rng
        )
    if scale is not None and scale != 1.0:
        raise ValueError(f"{fmt} takes no scale (got {scale!r})")
    return quantize_float(x, fmt, rounding=rounding, rng=rng)


def _max_int_scale(x, qmax: int) -> float:
    peak = max_abs(x)
    if not math.isfinite(peak):
        raise ValueError("cannot derive a scale from a tensor with inf or NaN")
    return peak / qmax if peak > 0 else 1.0
