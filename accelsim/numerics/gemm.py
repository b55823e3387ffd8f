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
* **Float operands** (:func:`float_matmul`): a tensor is scaled by one power of two so that its
  largest magnitude is below ``2**20`` and cut into two integer slices of 20 bits
  (:class:`Sliced`: ``x ≈ 2**e·(hi + lo·2**-20)``); every slice product is then an exact float64
  integer GEMM for reductions up to 8,192 long (longer ones are cut into such chunks, added in
  order), whatever order the BLAS sums in. The three leading slice products are combined
  elementwise in a fixed order. FP16 tensors spanning up to 29 binades (BF16 and FP8 up to 32) are
  represented exactly, so their product is near-exact: within about ``2**-40 · K · max|a| ·
  max|b|`` of the exact one, far below an fp32 rounding of any output that is not the result of a
  cancellation. The slices are a function of the tensor alone, so a tensor read by two products
  (an activation in the forward and the weight-gradient GEMM, a gradient in both backward GEMMs,
  weights and their transpose) is sliced once. Operands holding Inf or NaN (a diverged training)
  take one plain float64 product: which outputs are non-finite does not depend on the order, and
  such a run is reported as diverged.

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
    "Scaled",
    "Operand",
    "gemm",
    "INT_ACCUMULATORS",
    "FLOAT32_EXACT",
    "FLOAT64_EXACT",
    "int_matmul",
    "float_matmul",
    "Sliced",
    "slice_values",
    "SLICE_BITS",
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


#: Bits per slice of the float product: ``K · 2**40 <= 2**53`` for ``K <= 8192``, so a slice
#: product is an exact float64 integer GEMM; longer reductions are cut into such chunks.
SLICE_BITS = 20
MAX_SLICE_K = 2 ** (53 - 2 * SLICE_BITS)


@dataclass(frozen=True, eq=False)
class Sliced:
    """A float tensor as two integer slices: ``x ≈ unit · (hi + lo · 2**-20)``, ``|hi|, |lo| <
    2**20``, with one power-of-two ``unit`` for the whole tensor (so ``x`` and its transpose share
    the slices; ``lo`` is ``None`` when all zero). Exact for every value within 2**40 of the
    tensor's largest magnitude to its last bit: any FP16 tensor spanning up to 29 binades, any
    BF16 or FP8 one spanning up to 32; finer bits of a wider tensor are dropped, deterministically."""

    hi: np.ndarray
    lo: np.ndarray | None
    unit: float

    @property
    def T(self) -> "Sliced":
        return Sliced(np.swapaxes(self.hi, -1, -2), None if self.lo is None else np.swapaxes(self.lo, -1, -2), self.unit)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.hi.shape

    def values(self) -> np.ndarray:
        v = self.hi if self.lo is None else self.hi + self.lo * 2.0**-SLICE_BITS
        return (v * self.unit).astype(np.float32)

    def k_range(self, k0: int, k1: int, side: str) -> "Sliced":
        """The slices of reduction entries ``k0:k1`` (``side``: ``a``, the last axis, or ``b``)."""
        take = (lambda t: t[..., k0:k1]) if side == "a" else (lambda t: t[..., k0:k1, :])
        return Sliced(take(self.hi), None if self.lo is None else take(self.lo), self.unit)


def slice_values(x) -> Sliced | None:
    """:class:`Sliced` slices of float values; ``None`` if ``x`` holds NaN or infinity."""
    if isinstance(x, Sliced):
        return x
    x = np.asarray(x)
    amax = _max_abs(x)
    if not math.isfinite(amax):
        return None
    _, e = math.frexp(amax)                      # |x| < 2**e
    lo = np.multiply(x, math.ldexp(1.0, SLICE_BITS - e), dtype=np.float64)   # exact: |x·2**(20-e)| < 2**20
    hi = np.trunc(lo)
    lo -= hi                                     # the fraction (exact)
    if lo.any():
        lo *= 2.0**SLICE_BITS
        np.trunc(lo, out=lo)                     # the next 20 bits
    else:
        lo = None
    return Sliced(hi, lo, math.ldexp(1.0, e - SLICE_BITS))


def _slice_product(a: Sliced, b: Sliced) -> np.ndarray:
    out = np.matmul(a.hi, b.hi)
    cross = None
    if a.lo is not None:
        cross = np.matmul(a.lo, b.hi)
    if b.lo is not None:
        t = np.matmul(a.hi, b.lo)
        cross = t if cross is None else cross + t
    if cross is not None:
        cross *= 2.0**-SLICE_BITS
        out += cross
    return out


def float_matmul(a, b) -> np.ndarray:
    """Deterministic, near-exact ``a @ b`` in float64 (see the module docs).

    ``a`` ``(..., M, K)``, ``b`` ``(..., K, N)``: float values (already rounded to their formats)
    or their :class:`Sliced` slices (computed once, reused by a tensor's several products). Every
    slice product is an exact integer GEMM, combined elementwise in a fixed order, over chunks of at
    most 8,192 reduction entries added in order: the result is a function of the operands alone,
    the same bits whatever the BLAS kernel, its blocking or its thread count.
    """
    sa, sb = slice_values(a), slice_values(b)
    if sa is None or sb is None:   # a diverged run: NaN stays NaN, whatever the order
        a = a.values() if isinstance(a, Sliced) else np.asarray(a)
        b = b.values() if isinstance(b, Sliced) else np.asarray(b)
        with np.errstate(invalid="ignore", over="ignore"):
            return np.matmul(a.astype(np.float64), b.astype(np.float64))
    if len(sa.shape) < 2 or len(sb.shape) < 2 or sa.shape[-1] != sb.shape[-2]:
        raise ValueError(f"cannot multiply shapes {sa.shape} and {sb.shape}")
    k = sa.shape[-1]
    if k <= MAX_SLICE_K:
        out = _slice_product(sa, sb)
    else:
        out = None
        for k0 in range(0, k, MAX_SLICE_K):
            part = _slice_product(sa.k_range(k0, k0 + MAX_SLICE_K, "a"), sb.k_range(k0, k0 + MAX_SLICE_K, "b"))
            out = part if out is None else out + part
    out *= sa.unit * sb.unit
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
    a = a if isinstance(a, Sliced) else np.asarray(a)
    b = b if isinstance(b, Sliced) else np.asarray(b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"cannot multiply shapes {a.shape} and {b.shape}")
    k = a.shape[-1]
    acc = None

    def take(x, k0: int, side: str):
        if isinstance(x, Sliced):
            return x.k_range(k0, k0 + chunk, side)
        return x[..., k0:k0 + chunk] if side == "a" else x[..., k0:k0 + chunk, :]

    with np.errstate(over="ignore", invalid="ignore"):   # IEEE: overflow to inf, inf - inf = NaN
        for k0 in range(0, max(k, 1), chunk):
            part = float_matmul(take(a, k0, "a"), take(b, k0, "b")).astype(np.float16)
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


@dataclass(frozen=True, eq=False)
class Scaled:
    """A block-scaled operand: ``value = values · scale``, where ``values`` (float32) hold each
    element times its block scale (exact) and ``scale`` is the per-tensor scale (NVFP4's FP32
    scale; 1 for the MX formats), applied once to the product's result, as the hardware does."""

    values: np.ndarray
    scale: float = 1.0

    @property
    def T(self) -> "Scaled":
        return Scaled(np.swapaxes(self.values, -1, -2), self.scale)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape


Operand = "GridOperand | Scaled | Sliced | np.ndarray"


def _values(x):
    """A float operand: the values of a grid operand, the block values of a scaled one (its tensor
    scale is applied to the result); slices and arrays as they are."""
    if isinstance(x, GridOperand):
        return x.values()
    if isinstance(x, Scaled):
        return x.values
    return x if isinstance(x, Sliced) else np.asarray(x, dtype=np.float32)


def _tensor_scale(x) -> float:
    return float(x.scale) if isinstance(x, Scaled) else 1.0


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
        tensor_scale = _tensor_scale(a) * _tensor_scale(b)
        if tensor_scale != 1.0:
            y = (y.astype(np.float64) * tensor_scale).astype(np.float32)
    elif accumulation == "fp32":
        exact = float_matmul(_values(a), _values(b))
        tensor_scale = _tensor_scale(a) * _tensor_scale(b)
        if tensor_scale != 1.0:
            exact *= tensor_scale
        y = round_accumulator(exact, acc_format)
    else:
        raise ValueError(f"unknown accumulation {accumulation!r}; allowed: fp32, fp16-chunked")
    if bias is not None:
        y += np.asarray(bias, dtype=np.float32)
    if out_format != "fp32":
        y = quantize_float(y, out_format).values
    return y
