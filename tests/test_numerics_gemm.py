"""Matrix products that do not depend on the BLAS: exact integer GEMMs (golden vectors, every
path of the bound guard), the deterministic near-exact float product, accumulator rounding and
FP16 chunk accumulation."""

from fractions import Fraction

import numpy as np
import pytest

from accelsim.numerics.gemm import (
    GridOperand,
    NonFiniteOperand,
    chunked_fp16_matmul,
    float_matmul,
    gemm,
    int_matmul,
    round_accumulator,
    slice_values,
)
from accelsim.numerics.quant import int_codes, quantize_float, quantize_fp4r4


def exact(a, b) -> np.ndarray:
    """Reference: Python integers (arbitrary precision), no BLAS."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return np.array([[sum(int(x) * int(y) for x, y in zip(row, col)) for col in b.T] for row in a], dtype=object)


def test_int_matmul_golden_vectors():
    """INT4 codes in, exact integers out: -8·7 + 7·(-8) + 3·2 = -106; an fp4r4 gradient code
    (±4**j relative to the smallest level) against UINT4 codes: 4096·15 + 1·15 - 16·15 = 61215."""
    a = np.array([[-8, 7, 3], [0, 0, 0], [1, 1, 1]], dtype=np.float32)
    b = np.array([[7, 1], [-8, 1], [2, 1]], dtype=np.float32)
    np.testing.assert_array_equal(int_matmul(a, b), [[-106, 2], [0, 0], [1, 3]])
    g = np.array([[4096, 1, -16]], dtype=np.float32)
    x = np.array([[15], [15], [15]], dtype=np.float32)
    assert int_matmul(g, x)[0, 0] == 61215
    assert int_matmul(g, x).dtype == np.int64


@pytest.mark.parametrize("k,amax,bmax,path", [
    (100, 8, 15, "float32"),            # bound 12,000 < 2**24
    (2048, 4096, 8, "float64"),         # 2**26: beyond float32's exact integers
    (4, 2**26, 2**26, "chunked"),       # 2**54: beyond float64's, chunked in int64
])
def test_int_matmul_is_exact_on_every_path(k, amax, bmax, path):
    """Every path of the bound guard gives the exact integer result (Python integers), with operands
    at the edge of the range, for stacked (grouped) operands too."""
    rng = np.random.default_rng(k)
    a = rng.integers(-amax, amax + 1, (2, 3, k)).astype(np.float64)
    b = rng.integers(-bmax, bmax + 1, (2, k, 5)).astype(np.float64)
    a[0, 0, :] = amax
    b[0, :, 0] = bmax
    got = int_matmul(a, b)
    for g in range(2):
        np.testing.assert_array_equal(got[g].astype(object), exact(a[g].astype(np.int64), b[g].astype(np.int64)))
    assert got[0, 0, 0] == k * amax * bmax


def test_int_matmul_does_not_depend_on_the_summation_order():
    """Permuting the reduction axis (another summation order) gives the same integers."""
    rng = np.random.default_rng(1)
    a = rng.integers(-8, 8, (40, 300)).astype(np.float32)
    b = (rng.choice([-1, 1], (300, 20)) * 4.0 ** rng.integers(0, 7, (300, 20))).astype(np.float32)
    perm = rng.permutation(300)
    np.testing.assert_array_equal(int_matmul(a, b), int_matmul(a[:, perm], b[perm]))


def test_int_matmul_rejects_non_integers_and_non_finite():
    with pytest.raises(ValueError, match="integer-valued"):
        int_matmul(np.array([[0.5]]), np.array([[1.0]]))
    with pytest.raises(NonFiniteOperand):
        int_matmul(np.array([[np.nan]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="cannot multiply"):
        int_matmul(np.ones((2, 3)), np.ones((2, 3)))


def test_slices_represent_fp16_tensors_exactly():
    """A tensor is two 20-bit integer slices under one power-of-two unit: an FP16 tensor spanning
    up to 29 binades comes back bit for bit; the transposed slices are the transpose's."""
    rng = np.random.default_rng(0)
    x = quantize_float(rng.standard_normal((5, 7)) * np.exp2(rng.integers(-18, 10, (5, 7))), "fp16").values
    s = slice_values(x)
    assert s.lo is not None and np.abs(s.hi).max() < 2**20 and np.abs(s.lo).max() < 2**20
    assert np.array_equal(s.hi, np.trunc(s.hi)) and np.array_equal(s.lo, np.trunc(s.lo))
    np.testing.assert_array_equal(s.values(), x)
    np.testing.assert_array_equal(s.T.values(), x.T)
    small = slice_values(np.array([[1.0, 0.5, 0.25]], np.float32))   # fits the first slice
    assert small.lo is None and small.unit == 2.0**-19
    assert slice_values(np.array([1.0, np.nan])) is None


def _fraction_product(a, b):
    return [[sum((Fraction(float(x)) * Fraction(float(y)) for x, y in zip(row, col)), Fraction(0))
             for col in b.T] for row in a]


def test_float_matmul_is_near_exact():
    """Against exact rational arithmetic: the error is below 2**-40 · K · max|a| · max|b| for every
    output (fp16 operands with a wide dynamic range, as ReLU outputs have)."""
    rng = np.random.default_rng(2)
    k = 64
    a = quantize_float(rng.standard_normal((6, k)) * np.exp2(rng.integers(-12, 4, (6, k))), "fp16").values
    b = quantize_float(rng.standard_normal((k, 5)), "fp16").values
    got = float_matmul(a, b)
    ref = _fraction_product(a, b)
    for i in range(6):
        for j in range(5):
            bound = 2.0**-40 * k * np.abs(a).max() * np.abs(b).max() * 4
            assert abs(Fraction(float(got[i, j])) - ref[i][j]) <= Fraction(float(bound))


def test_float_matmul_does_not_depend_on_the_summation_order():
    """The same bits for any order of the reduction: every slice product is an exact integer GEMM."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 500)).astype(np.float32) * np.exp2(rng.integers(-20, 20, (30, 500))).astype(np.float32)
    b = rng.standard_normal((500, 7)).astype(np.float32)
    perm = rng.permutation(500)
    np.testing.assert_array_equal(float_matmul(a, b), float_matmul(a[:, perm], b[perm]))
    # precomputed slices (shared by a tensor's products) give the same bits
    np.testing.assert_array_equal(float_matmul(slice_values(a), slice_values(b)), float_matmul(a, b))
    np.testing.assert_array_equal(float_matmul(slice_values(b).T, slice_values(a).T), float_matmul(a, b).T)


def test_float_matmul_beyond_8192_chunks_in_order():
    """A reduction longer than 8,192 is cut into exact chunks added in order: permuting within the
    order-independent chunks changes nothing, and the result is near-exact."""
    rng = np.random.default_rng(4)
    a = quantize_float(rng.standard_normal((2, 20000)), "fp16").values
    b = quantize_float(rng.standard_normal((20000, 3)), "fp16").values
    got = float_matmul(a, b)
    perm = np.concatenate([rng.permutation(8192), 8192 + rng.permutation(8192), 16384 + rng.permutation(20000 - 16384)])
    np.testing.assert_array_equal(float_matmul(a[:, perm], b[perm]), got)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-9)


def test_float_matmul_exact_for_narrow_operands_and_propagates_nan():
    """Operands that fit one slice (small integers here) give the exact result; NaN stays NaN."""
    a = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    b = np.array([[4.0], [5.0], [6.0]], dtype=np.float32)
    assert float_matmul(a, b)[0, 0] == 32.0
    a[0, 1] = np.nan
    assert np.isnan(float_matmul(a, b)[0, 0])


def test_round_accumulator_rounds_once():
    """1 + 2**-24 + 2**-50 rounds up to 1 + 2**-23 in fp32 once (float32 of the float64 sum), where
    rounding 1 + 2**-24 alone would tie to 1; fp16: 2049 + 2**-20 -> 2050 (not 2048)."""
    x = np.array([1 + 2.0**-24 + 2.0**-50, 2049 + 2.0**-20])
    np.testing.assert_array_equal(round_accumulator(x, "fp32"), np.array([1 + 2.0**-23, 2049], np.float32))
    np.testing.assert_array_equal(round_accumulator(x, "fp16"), [1.0, 2050.0])
    # bf16: 8 significant bits, round half to even: 257 -> 256, 259 -> 260
    np.testing.assert_array_equal(round_accumulator(np.array([257.0, 259.0, 1e39]), "bf16"), [256.0, 260.0, np.inf])
    with pytest.raises(ValueError, match="unknown float accumulator"):
        round_accumulator(x, "int8")


def test_chunked_fp16_by_hand():
    """a = [1,1,1,1], b = [2048,1,1,1]: the fp16 ulp at 2048 is 2.
    chunk 1: 2048+1 = 2049 -> 2048 (tie to even), again 2048, again 2048;
    chunk 2: fp16(2048+1) = 2048, fp16(1+1) = 2, 2048+2 = 2050;
    chunk 4: fp16(2051) = 2052 (tie between 2050 and 2052 -> even mantissa); exact: 2051."""
    a = np.ones((1, 4), dtype=np.float32)
    b = np.array([[2048.0], [1.0], [1.0], [1.0]], dtype=np.float32)
    assert chunked_fp16_matmul(a, b, 1)[0, 0] == 2048
    assert chunked_fp16_matmul(a, b, 2)[0, 0] == 2050
    assert chunked_fp16_matmul(a, b, 4)[0, 0] == 2052
    assert round_accumulator(float_matmul(a, b), "fp32")[0, 0] == 2051
    big = np.array([[60000.0], [60000.0]], dtype=np.float32)
    assert chunked_fp16_matmul(np.ones((1, 2), np.float32), big, 1)[0, 0] == np.inf
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        chunked_fp16_matmul(a, b, 0)


def reference_fp16(a, b, chunk):
    """Slow reference: exact chunk sums (Python fractions), rounded once to fp16, fp16 additions."""
    acc = None
    for k0 in range(0, a.shape[1], chunk):
        part = np.array([[float(v) for v in row] for row in _fraction_product(a[:, k0:k0 + chunk], b[k0:k0 + chunk])])
        part = part.astype(np.float16)
        acc = part if acc is None else (acc + part).astype(np.float16)
    return acc.astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_fp16_matches_slow_reference(chunk):
    rng = np.random.default_rng(chunk)
    a = quantize_float(rng.standard_normal((4, 90)), "fp16").values
    b = quantize_float(rng.standard_normal((90, 3)) * 0.1, "fp16").values
    np.testing.assert_array_equal(chunked_fp16_matmul(a, b, chunk), reference_fp16(a, b, chunk))


def test_gemm_on_integer_codes_scales_once():
    """INT4 weights (SAWB-like scale) x UINT4 activations: the exact integer sum times both scales,
    then the output format; the same as the float product of the dequantized values when that is
    exact."""
    rng = np.random.default_rng(4)
    wc, ws = int_codes(rng.standard_normal((50, 6)), 0.25, "int4", symmetric=True)
    xc, xs = int_codes(rng.random((8, 50)) * 3, 0.2, "uint4")
    y = gemm(GridOperand(xc, xs), GridOperand(wc, ws), acc_format="int32", out_format="fp32")
    ref = np.array([[float(v) for v in row] for row in exact(xc.astype(np.int64), wc.astype(np.int64))])
    np.testing.assert_array_equal(y, (ref * (np.float32(0.2) * 0.25)).astype(np.float32))
    y16 = gemm(GridOperand(xc, xs), GridOperand(wc, ws), acc_format="int32", out_format="fp16")
    np.testing.assert_array_equal(y16, y.astype(np.float16).astype(np.float32))
    bias = np.arange(6, dtype=np.float32)
    yb = gemm(GridOperand(xc, xs), GridOperand(wc, ws), acc_format="int32", out_format="fp32", bias=bias)
    np.testing.assert_array_equal(yb, y + bias)


def test_gemm_int16_register_saturates():
    codes = GridOperand(np.full((1, 1000), 7.0, np.float32), 1.0)
    col = GridOperand(np.full((1000, 1), 15.0, np.float32), 1.0)
    assert gemm(codes, col, acc_format="int16", out_format="fp32")[0, 0] == 2**15 - 1
    assert gemm(codes, col, acc_format="int32", out_format="fp32")[0, 0] == 105000


def test_gemm_fp4r4_gradient_codes_times_int4():
    """A radix-4 FP4 gradient as codes ±4**j times its smallest level, against INT4 weights: the
    exact result equals the rational product of the dequantized values."""
    rng = np.random.default_rng(5)
    q = quantize_fp4r4(rng.standard_normal((5, 40)) * 0.01, 2.0**-6, phase=1)
    unit = q.scale * 4.0**-6
    g = GridOperand(q.values / np.float32(unit), unit)
    assert set(np.unique(np.abs(g.codes))) <= {0.0, *(4.0**j for j in range(7))}
    wc, ws = int_codes(rng.standard_normal((40, 3)), 0.125, "int4", symmetric=True)
    y = gemm(g, GridOperand(wc, ws), acc_format="int32", out_format="fp32")
    ref = _fraction_product(q.values, wc * np.float32(ws))
    np.testing.assert_array_equal(y, np.array([[float(v) for v in row] for row in ref], np.float32))


def test_gemm_rejects_integer_accumulator_for_float_operands_and_unknown_accumulation():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="needs two integer-grid operands"):
        gemm(x, x, acc_format="int32", out_format="fp32")
    with pytest.raises(ValueError, match="unknown accumulation"):
        gemm(x, x, acc_format="fp32", out_format="fp32", accumulation="fp8")
