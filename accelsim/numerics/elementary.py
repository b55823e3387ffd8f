"""Elementary functions that give the same bits on every CPU.

NumPy's ``exp``, ``log`` and ``tanh`` dispatch at run time to implementations chosen for the CPU
(AVX2, AVX-512, SVML, or the C library), which may differ in the last bit. A training that feeds
such results back into itself drifts apart on two machines. The functions here use only
operations IEEE 754 rounds correctly (``+ − × ÷``, ``rint``, ``frexp``, ``ldexp``), evaluated in
float64 in a fixed order, so their results are identical everywhere; they are accurate to a few
float64 ulps, far below the float32 rounding the trainer applies afterwards.

* :func:`exp`: ``x = k·ln2 + r`` (``|r| <= ln2/2``, Cody–Waite with a two-part ln2), a degree-11
  Taylor polynomial of ``e**r`` (truncation below 2**-52 relative), then ``ldexp``.
* :func:`log`: ``x = m·2**e`` with ``m`` in ``[√½, √2)``, ``log m = 2·atanh((m−1)/(m+1))`` by its
  odd series to degree 23 (``|f| <= 0.172``: truncation below 2**-60).
* :func:`tanh`: ``1 − 2/(e**(2|x|) + 1)`` with the sign restored, and its odd Taylor series to
  degree 11 where ``|x| < 1/16`` (where the subtraction would cancel).
"""

from __future__ import annotations

import numpy as np

__all__ = ["exp", "log", "tanh"]

_LN2_HI = 6.93147180369123816490e-01   # ln 2 with its low 32 bits zero: k·_LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_COEFFS = tuple(1.0 / float(np.prod(np.arange(1, n + 1, dtype=np.float64))) for n in range(11, -1, -1))
_LOG_COEFFS = tuple(1.0 / n for n in range(23, 0, -2))
#: tanh x = x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835 − 1382x¹¹/155925 + …, highest first
_TANH_COEFFS = (-1382 / 155925, 62 / 2835, -17 / 315, 2 / 15, -1 / 3, 1.0)


def exp(x) -> np.ndarray:
    """``e**x`` in float64 (any real input; overflow to inf, underflow to 0, NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        xc = np.clip(x, -746.0, 710.0)
        k = np.rint(xc * _INV_LN2)
        r = (xc - k * _LN2_HI) - k * _LN2_LO
        p = np.full_like(r, _EXP_COEFFS[0])
        for c in _EXP_COEFFS[1:]:
            p *= r
            p += c
        ki = k.astype(np.int64)
        if xc.size and (xc.min() < -700.0 or xc.max() > 700.0):
            # two ldexp steps keep the intermediate finite where k alone would over/underflow
            half = ki // 2
            out = np.ldexp(np.ldexp(p, half), ki - half)
        else:
            out = np.ldexp(p, ki)
    nan = np.isnan(x)
    return np.where(nan, np.nan, out) if nan.any() else out


def log(x) -> np.ndarray:
    """Natural logarithm in float64 (``log 0 = -inf``, negative or NaN input gives NaN, ``log inf = inf``)."""
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)                       # x = m·2**e, 0.5 <= m < 1 for positive finite x
    small = m < 0.7071067811865476
    m = np.where(small, m * 2.0, m)
    e = np.where(small, e - 1, e).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (m - 1.0) / (m + 1.0)
        s = f * f
        p = np.full_like(s, _LOG_COEFFS[0])
        for c in _LOG_COEFFS[1:]:
            p *= s
            p += c
        out = e * _LN2_HI + (2.0 * f * p + e * _LN2_LO)
        out = np.where(x == 0, -np.inf, out)
        out = np.where(np.isposinf(x), np.inf, out)
        out = np.where((x < 0) | np.isnan(x), np.nan, out)
    return out


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent in float64 via :func:`exp`."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.copysign(1.0 - 2.0 / (exp(2.0 * np.abs(x)) + 1.0), x)
        small = np.abs(x) < 0.0625
        if small.any():
            xs = x[small]
            s = xs * xs
            p = np.full_like(s, _TANH_COEFFS[0])
            for c in _TANH_COEFFS[1:]:
                p *= s
                p += c
            t[small] = xs * p
    return t
