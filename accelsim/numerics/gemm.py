"""Matrix products whose result does not depend on the BLAS: exact integer GEMMs for the 4-bit
datapaths, and a deterministic near-exact product for the float formats.

Why: a BLAS sums a dot product in an order that depends on its kernel (the CPU it picked), its
blocking and its thread count, and float addition is not associative, so the same product can come
out different on two machines. Here no result depends on that order:

The trainer calls :func:`gemm` with two :data:`Operand` values: a :class:`GridOperand` (integer
codes and one scale: INT4, UINT4, radix-4 FP4) or a float32 array of values already rounded to
their format (FP16, BF16, FP8, FP32).

* **Integer-grid operands** (:func:`int_matmul`): INT4 and UINT4 operands are a scale times an
  integer code, radix-4 FP4 values are a power of two times ``±4**j`` — an integer multiple of the
  grid's smallest level. Their products are integers, and a sum of integers is exact in floating
  point as long as every partial sum stays below ``2**24`` (float32) or ``2**53`` (float64). The
  bound ``K · max|a| · max|b|`` of the operands actually multiplied is checked; float32 is used
  when it is below ``2**24``, float64 below ``2**53``, and beyond that the reduction is cut into
  chunks that are each exact and summed in int64. Every partial sum, in whatever order the BLAS
  adds, is the same integer: the result is exact, bit for bit, on any machine. This is the integer
  accumulator of the hardware; the caller applies the register's range and scales once.
* **Float operands** (:func:`float_matmul`): each row of ``a`` (each column of ``b``) is scaled by
  a power of two so that its largest magnitude is below ``2**β`` and cut into two integer slices
  of ``β`` bits (``a ≈ 2**e·(a1 + a2·2**-β)``), with ``β = ⌊(53 − ⌈log2 K⌉)/2⌋``, so that every
  slice product is an exact float64 integer GEMM (any summation order gives the same result). The
  three leading slice products are combined elementwise in a fixed order. The result equals the
  exact product to about ``2**-2β`` of ``K · max|a_row| · max|b_col|`` (at least 2**-34 relative
  to that bound for K up to 2**19: far below an fp32 rounding of any output that is not the
  result of a cancellation), and it is a function of the operands alone. Slices that are all zero
  (operands narrow enough to fit one slice, e.g. most fp8 and bf16 tensors) are skipped. Operands
  holding Inf or NaN (a diverged training) take one plain float64 product: which outputs are
  non-finite does not depend on the order, and such a run is reported as diverged.

:func:`round_accumulator` rounds such a float64 result once to the accumulator format (``fp32``,
``fp16`` or ``bf16``): the product "accumulated in float64 and rounded once".

No global state; no printing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NonFiniteOperand",
    "GridOperand",
    "Operand",
    "gemm",
    "INT_ACCUMULATORS",
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "int_matmul",
    "float_matmul",
    "slice_bits",
    "round_accumulator",
    "chunked_fp16_matmul",
]

#: Integers up to this magnitude are exact in float32 / float64 (and so is any sum of them that
#: stays below it).
FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53


def _check_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}")


class NonFiniteOperand(ArithmeticError):
    """An integer-grid operand holds NaN or infinity (a diverged training)."""


def _max_abs(x: np.ndarray) -> float:
    """``max|x|`` (two reductions, no temporary); NaN if ``x`` holds a NaN."""
    if x.size == 0:
        return 0.0
    return float(max(abs(float(x.max())), abs(float(x.min()))))


def int_matmul(a, b, *, check_integers: bool = True) -> np.ndarray:
    """Exact ``a @ b`` of integer-valued operands, as int64.

    ``a`` is ``(..., M, K)``, ``b`` ``(..., K, N)``, any integer or float dtype holding integers
    (the codes of integer-grid formats). The product is computed by the BLAS in float32 when
    ``K · max|a| · max|b| < 2**24``, in float64 when it is below ``2**53``, and otherwise in
    chunks of the reduction dimension that are each below ``2**53``, summed in int64 — so every
    partial sum is exact and the result is the same integer matrix on any machine.

    :class:`NonFiniteOperand` if an operand holds NaN or infinity; ``ValueError`` if one holds
    non-integers (not checked with ``check_integers=False``, for codes made by the quantizers).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    _check_shapes(a, b)
    k = a.shape[-1]
    amax, bmax = _max_abs(a), _max_abs(b)
    if not (math.isfinite(amax) and math.isfinite(bmax)):
        raise NonFiniteOperand("an integer-grid operand holds NaN or infinity")
    if check_integers:
        for name, t in (("a", a), ("b", b)):
            if t.dtype.kind == "f" and not np.array_equal(t, np.trunc(t)):
                raise ValueError(f"int_matmul needs integer-valued operands; {name} has non-integers")
    bound = k * amax * bmax
    if bound < FLOAT32_EXACT:
        return np.matmul(a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)).astype(np.int64)
    if bound < FLOAT64_EXACT:
        return np.matmul(a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)).astype(np.int64)
    step = max(1, int(FLOAT64_EXACT // max(amax * bmax, 1.0)) - 1)
    total = None
    a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    for k0 in range(0, k, step):
        part = np.matmul(a64[..., k0:k0 + step], b64[..., k0:k0 + step, :]).astype(np.int64)
        total = part if total is None else total + part
    return total


def slice_bits(k: int) -> int:
    """Bits per slice for a reduction of length ``k``: the largest ``β`` with
    ``k · 2**(2β) <= 2**53`` (so a slice product is an exact float64 integer), at most 26."""
    return min(26, (53 - max(0, math.ceil(math.log2(max(k, 1))))) // 2)


def _abs_max_along(x: np.ndarray, axis: int) -> np.ndarray:
    """``max |x|`` along ``axis`` (kept as a length-1 axis); NaN where a NaN is. A short axis is
    reduced by a loop of elementwise maxima over its slices (NumPy's reduction along a short
    innermost axis costs a call per row)."""
    n = x.shape[axis]
    if 1 < n <= 16:
        xs = np.moveaxis(x, axis, 0)
        hi = xs[0].copy()
        lo = xs[0].copy()
        for i in range(1, n):
            np.maximum(hi, xs[i], out=hi)
            np.minimum(lo, xs[i], out=lo)
        np.negative(lo, out=lo)
        return np.expand_dims(np.maximum(hi, lo), axis)
    return np.maximum(np.max(x, axis=axis, keepdims=True), -np.min(x, axis=axis, keepdims=True))


def _slices(x: np.ndarray, axis: int, beta: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``x ≈ unit · (hi + lo·2**-β)`` with integer ``hi``, ``lo`` (``|hi|, |lo| < 2**β``) and a
    power-of-two ``unit`` per row (``axis=-1``) or per column (``axis=-2``); ``lo`` is ``None``
    when it would be all zero. ``None`` if ``x`` holds NaN or infinity."""
    amax = _abs_max_along(x, axis)
    if not np.isfinite(amax).all():
        return None
    _, e = np.frexp(amax)                        # |x| < 2**e along the reduced axis
    xs = np.multiply(x, np.ldexp(1.0, beta - e), dtype=np.float64)   # exact: |xs| < 2**β
    lo, hi = np.modf(xs)                         # integer part and the (exact) fraction
    if lo.any():
        lo *= 2.0**beta
        np.trunc(lo, out=lo)                     # the next β bits
    else:
        lo = None
    return hi, lo, np.ldexp(1.0, e - beta)


def float_matmul(a, b) -> np.ndarray:
    """Deterministic, near-exact ``a @ b`` in float64 (see the module docs).

    ``a`` ``(..., M, K)``, ``b`` ``(..., K, N)``, float32 or float64 values (already rounded to
    their formats). The result is a function of the operand values alone: the same bits whatever
    the BLAS kernel, its blocking or its thread count.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    _check_shapes(a, b)
    beta = slice_bits(a.shape[-1])
    sa = _slices(a, -1, beta)
    sb = _slices(b, -2, beta) if sa is not None else None
    if sa is None or sb is None:
        with np.errstate(invalid="ignore", over="ignore"):   # a diverged run: NaN stays NaN
            return np.matmul(a.astype(np.float64), b.astype(np.float64))
    (a_hi, a_lo, a_unit), (b_hi, b_lo, b_unit) = sa, sb
    out = np.matmul(a_hi, b_hi)
    cross = None
    if a_lo is not None:
        cross = np.matmul(a_lo, b_hi)
    if b_lo is not None:
        t = np.matmul(a_hi, b_lo)
        cross = t if cross is None else cross + t
    if cross is not None:
        cross *= 2.0**-beta
        out += cross
    out *= a_unit
    out *= b_unit
    return out


def round_accumulator(x: np.ndarray, acc_format: str) -> np.ndarray:
    """Round a float64 result once to the accumulator format; returned as float32.

    ``fp32``: the float32 cast (round half to even); ``fp16``: numpy's direct float64 → float16
    cast (one rounding, overflow to ±inf); ``bf16``: round half to even to 8 significant bits
    (``ml_dtypes``' bfloat16 cast from float32 would round twice)."""
    if acc_format == "fp32":
        with np.errstate(over="ignore"):
            return x.astype(np.float32)
    if acc_format == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    if acc_format == "bf16":
        return _round_bf16_from_f64(x)
    raise ValueError(f"unknown float accumulator {acc_format!r}; allowed: fp32, fp16, bf16")


def _round_bf16_from_f64(x: np.ndarray) -> np.ndarray:
    """float64 → bfloat16 (8-bit significand, float32 exponent range), round half to even, once."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        m, e = np.frexp(x)                       # x = m·2**e, 0.5 <= |m| < 1
        e = np.maximum(e, -125)                  # bf16 subnormals share float32's minimum exponent
        q = np.rint(np.ldexp(x, 8 - e))          # 8 significant bits (exact scaling)
        y = np.ldexp(q, e - 8)
        big = np.abs(y) > 3.3895313892515355e38  # bf16 max: 0x7F7F
        y = np.where(big, np.copysign(np.inf, x), y)
        y = np.where(np.isnan(x), np.nan, y)
        return y.astype(np.float32)


def chunked_fp16_matmul(a, b, chunk: int) -> np.ndarray:
    """FP16 chunk-based accumulation (Wang et al. 2018), deterministically.

    The reduction dimension is cut into consecutive chunks of ``chunk`` (the last may be shorter);
    each chunk's partial product is computed near-exactly (:func:`float_matmul`) and rounded once to
    fp16 (the chunk's local adder tree); the running sum is kept in fp16:
    ``acc_0 = fp16(P_0)``, ``acc_i = fp16(acc_{i-1} + P_i)``. Returns float32 holding fp16 values.
    """
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    a = np.asarray(a)
    b = np.asarray(b)
    _check_shapes(a, b)
    k = a.shape[-1]
    acc = None
    with np.errstate(over="ignore", invalid="ignore"):   # IEEE: overflow to inf, inf - inf = NaN
        for k0 in range(0, max(k, 1), chunk):
            part = float_matmul(a[..., k0:k0 + chunk], b[..., k0:k0 + chunk, :]).astype(np.float16)
            # float32 sum of two fp16 values rounded to fp16 is the correctly rounded fp16 sum
            acc = part if acc is None else (acc.astype(np.float32) + part.astype(np.float32)).astype(np.float16)
    return acc.astype(np.float32)


#: Integer accumulator registers and their ranges (the sum is clamped to the register at the end;
#: intermediate wrap-around is not modelled).
INT_ACCUMULATORS = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True, eq=False)
class GridOperand:
    """An operand on an integer grid: ``value = codes · scale``.

    ``codes`` hold integers (float32 or an integer dtype, any shape; the GEMM's last two axes);
    ``scale`` is a positive float; ``max_code`` bounds ``|codes|`` (the format's range: 8 for
    INT4, 15 for UINT4, 4096 for radix-4 FP4 — ``None``: measured). INT4/UINT4: the quantizer's
    codes and scale; radix-4 FP4: the values divided by the grid's smallest level ``T·4**-6``
    (codes ``±4**j``, j = 0..6), scale that level.
    """

    codes: np.ndarray
    scale: float
    max_code: float | None = None

    def values(self) -> np.ndarray:
        """The dequantized float32 values ``fl32(codes · scale)``."""
        return np.multiply(self.codes, np.float32(self.scale), dtype=np.float32)

    @property
    def T(self) -> "GridOperand":
        """The operand with its last two axes swapped (a view)."""
        return GridOperand(np.swapaxes(self.codes, -1, -2), self.scale, self.max_code)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape


Operand = "GridOperand | np.ndarray"


def _values(x) -> np.ndarray:
    return x.values() if isinstance(x, GridOperand) else np.asarray(x, dtype=np.float32)


def _grid_product(a: GridOperand, b: GridOperand, acc_format: str) -> np.ndarray:
    """The integer accumulator's result times ``fl32(scale_a · scale_b)``, in float32.

    With both codes' bounds known (:attr:`GridOperand.max_code`) and ``K · max_a · max_b`` below
    ``2**24``, one float32 product is exact and no integer sum can leave the register; otherwise
    :func:`int_matmul` (which measures the bounds) and the register's range are applied."""
    k = a.shape[-1]
    lo, hi = INT_ACCUMULATORS[acc_format]
    scale = np.float32(float(a.scale) * float(b.scale))
    if a.max_code is not None and b.max_code is not None:
        bound = k * a.max_code * b.max_code
        if bound < FLOAT32_EXACT and bound <= hi:
            y = np.matmul(a.codes.astype(np.float32, copy=False), b.codes.astype(np.float32, copy=False))
            if not np.isfinite(y).all():
                raise NonFiniteOperand("an integer-grid operand holds NaN or infinity")
            y *= scale
            return y
    total = np.clip(int_matmul(a.codes, b.codes, check_integers=False), lo, hi)
    y = total.astype(np.float32)
    y *= scale
    return y


def gemm(
    a, b, *, acc_format: str, out_format: str, accumulation: str = "fp32", chunk: int = 64,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """``a @ b`` as the array computes it, returned as float32 values in ``out_format``.

    * Both operands :class:`GridOperand` and an integer accumulator (``int16``/``int32``): the
      exact integer sum of the code products (:func:`int_matmul`), clamped to the register's
      range, converted to float32 and multiplied by ``fl32(scale_a · scale_b)`` (exact integers
      below ``2**24``: then the multiply is the one rounding).
    * Otherwise (a float accumulator): the near-exact product (:func:`float_matmul`) rounded once
      to ``acc_format``; with ``accumulation="fp16-chunked"`` FP16 chunk accumulation instead
      (:func:`chunked_fp16_matmul`, chunks of ``chunk``).

    Then ``bias`` (float32, broadcast over rows) is added in float32 and the sum is rounded to
    ``out_format`` (the policy's ``output`` role; ``fp32`` leaves it as is). Deterministic: the
    result depends on the operands alone, never on the BLAS.
    """
    from accelsim.numerics.quant import quantize_float

    if acc_format in INT_ACCUMULATORS:
        if not (isinstance(a, GridOperand) and isinstance(b, GridOperand)):
            raise ValueError(f"an {acc_format} accumulator needs two integer-grid operands")
        y = _grid_product(a, b, acc_format)
    elif accumulation == "fp16-chunked":
        y = chunked_fp16_matmul(_values(a), _values(b), chunk)
    elif accumulation == "fp32":
        y = round_accumulator(float_matmul(_values(a), _values(b)), acc_format)
    else:
        raise ValueError(f"unknown accumulation {accumulation!r}; allowed: fp32, fp16-chunked")
    if bias is not None:
        y += np.asarray(bias, dtype=np.float32)
    if out_format != "fp32":
        y = quantize_float(y, out_format).values
    return y
