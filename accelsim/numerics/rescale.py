"""Per-iteration rescaling of 4-bit operands: input mapping, SAWB weights, PACT activations, max.

Every function here picks a scale from this step's tensor (or from the learnable PACT ``α``) and
quantizes with :func:`accelsim.numerics.quant.quantize_int`; see there for the rounding formulas
(``nearest`` = round half to even; ``stochastic`` = unbiased, needs an ``rng``).
"""

from __future__ import annotations

import math

import numpy as np

from .quant import Quantized, Rounding, max_abs, quantize_int

__all__ = [
    "SAWB_COEFFS",
    "quantize_input",
    "sawb_clip",
    "sawb_scale",
    "quantize_sawb",
    "max_scale",
    "quantize_max",
    "pact_forward",
    "pact_backward",
]

#: SAWB coefficients (c1, c2) by bit width (Choi et al. 2018); only 4 bits is used by accelsim.
SAWB_COEFFS: dict[int, tuple[float, float]] = {4: (12.68, -12.80)}

_F32 = np.float32


def quantize_input(x) -> Quantized:
    """Map input data in ``[0, 1]`` linearly onto the 16 integers ``-8..7`` (``int4``, scale 1).

    ``q = clip(rint(fl32(fl32(x * 15) - 8)), -8, 7)`` computed in float32, round half to even:
    ``0 -> -8``, ``1 -> 7``, ``0.3 -> -3.5 -> -4``, ``0.5 -> -0.5 -> 0``, ``0.7 -> 2.5 -> 2``.
    ``values`` are ``q`` itself (the network sees ``-8..7``); a pixel is recovered as
    ``(q + 8) / 15``.
    """
    xf = np.asarray(x, dtype=_F32)
    t = np.multiply(xf, _F32(15), out=np.empty(xf.shape, dtype=_F32))
    t -= _F32(8)
    np.rint(t, out=t)
    np.clip(t, -8, 7, out=t)
    return Quantized(t, 1.0, "int4")


def sawb_clip(w, c1: float = SAWB_COEFFS[4][0], c2: float = SAWB_COEFFS[4][1]) -> float:
    """SAWB clipping value ``c1*sqrt(E[w**2]) + c2*E|w|`` (statistics in float64).

    Defaults are the 4-bit coefficients ``(12.68, -12.80)``. May be ``<= 0`` (when the weights are
    nearly all of one magnitude); :func:`sawb_scale` then falls back to ``max|w|``.
    """
    w = np.asarray(w)
    if w.size == 0:
        return 0.0
    e2 = float(np.mean(np.square(w, dtype=np.float64)))
    e1 = float(np.mean(np.abs(w), dtype=np.float64))
    return c1 * math.sqrt(e2) + c2 * e1


def sawb_scale(w, c1: float = SAWB_COEFFS[4][0], c2: float = SAWB_COEFFS[4][1]) -> float:
    """Symmetric int4 scale ``clip / 7`` with ``clip = sawb_clip(w)``, or ``max|w| / 7`` when the
    SAWB clip is not positive; ``1.0`` for an all-zero tensor."""
    clip = sawb_clip(w, c1, c2)
    if not clip > 0:
        clip = max_abs(w)
    if not math.isfinite(clip):
        raise ValueError("cannot derive a SAWB scale from weights with inf or NaN")
    return clip / 7 if clip > 0 else 1.0


def quantize_sawb(
    w, *, rounding: Rounding | str = Rounding.NEAREST, rng: np.random.Generator | None = None
) -> Quantized:
    """Weights to symmetric int4 (q in ``[-7, 7]``) with the SAWB scale: values ``s*q``,
    ``s = sawb_scale(w)``, ``q = clip(rint(w/s), -7, 7)``."""
    return quantize_int(w, sawb_scale(w), "int4", symmetric=True, rounding=rounding, rng=rng)


def max_scale(x, fmt: str = "int4") -> float:
    """Scale from this step's maximum: ``max|x| / 7`` for ``int4``, ``max|x| / 15`` for
    ``uint4``; ``1.0`` for an all-zero tensor."""
    qmax = {"int4": 7, "uint4": 15}.get(fmt)
    if qmax is None:
        raise ValueError(f"max scaling applies to int4 and uint4, not {fmt!r}")
    peak = max_abs(x)
    if not math.isfinite(peak):
        raise ValueError("cannot derive a scale from a tensor with inf or NaN")
    return peak / qmax if peak > 0 else 1.0


def quantize_max(
    x,
    fmt: str = "int4",
    *,
    symmetric: bool = True,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
) -> Quantized:
    """``max`` mode: ``s = max_scale(x, fmt)``, then :func:`quantize_int` (symmetric int4 by
    default: q in ``[-7, 7]``; ``uint4``: q in ``[0, 15]``)."""
    return quantize_int(
        x, max_scale(x, fmt), fmt, symmetric=symmetric and fmt == "int4", rounding=rounding, rng=rng
    )


def _alpha32(alpha: float) -> np.float32:
    a = _F32(alpha)
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"PACT alpha must be a positive finite number, got {alpha!r}")
    return a


def pact_forward(
    x,
    alpha: float,
    *,
    rounding: Rounding | str = Rounding.NEAREST,
    rng: np.random.Generator | None = None,
) -> Quantized:
    """PACT: ``y = clip(x, 0, α)`` quantized to ``uint4`` with scale ``s = fl32(α / 15)``.

    Values ``s*q``, ``q = clip(rint(x / s), 0, 15)`` (identical to quantizing ``clip(x, 0, α)``;
    round half to even), so ``x <= 0 -> 0`` and ``x >= α -> 15*s``.
    """
    _alpha32(alpha)
    return quantize_int(x, float(alpha) / 15, "uint4", rounding=rounding, rng=rng)


def pact_backward(grad_y, x, alpha: float) -> tuple[np.ndarray, float]:
    """Straight-through backward of :func:`pact_forward`; returns ``(grad_x, grad_alpha)``.

    The rounding is passed straight through; each upstream gradient goes to exactly one place:
    ``grad_x = grad_y`` where ``0 < x < α`` (0 elsewhere: ``x <= 0`` like ReLU, ``x >= α``
    clipped), ``grad_alpha = sum(grad_y where x >= α)`` (float64 sum, returned as float).
    Comparisons use ``float32(α)``.
    """
    a = _alpha32(alpha)
    x = np.asarray(x, dtype=_F32)
    g = np.asarray(grad_y, dtype=_F32)
    if g.shape != x.shape:
        raise ValueError(f"grad_y shape {g.shape} does not match x shape {x.shape}")
    clipped = x >= a
    grad_x = np.where((x > 0) & ~clipped, g, _F32(0))
    grad_alpha = float(np.sum(g, where=clipped, dtype=np.float64))
    return grad_x, grad_alpha
