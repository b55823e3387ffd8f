"""Block-scaled formats (OCP MX v1.0, NVFP4, block INT4): golden vectors from the specifications'
definitions, a cross-check against a slow reference written from the OCP text, stochastic rounding,
2-D blocks, the Hadamard transform and the GEMM on block-scaled operands."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from accelsim.numerics.blocks import block_spec, element_grid, hadamard, quantize_blocks, round_elements
from accelsim.numerics.formats import FORMATS, bits_of, element_bits, tensor_scale_bits
from accelsim.numerics.gemm import Scaled, float_matmul, gemm, round_accumulator


def test_element_grids_are_the_ocp_definitions():
    np.testing.assert_array_equal(element_grid("fp4e2m1"), [0, 0.5, 1, 1.5, 2, 3, 4, 6])
    e2m3, e3m2 = element_grid("fp6e2m3"), element_grid("fp6e3m2")
    assert (len(e2m3), e2m3[1], e2m3[-1]) == (32, 0.125, 7.5)     # subnormal step 2**-3, max 1.875·2**2
    assert (len(e3m2), e3m2[1], e3m2[-1]) == (32, 0.0625, 28.0)   # subnormal step 2**-4, max 1.75·2**4
    e4m3 = element_grid("fp8e4m3")
    assert (len(e4m3), e4m3[1], e4m3[-1]) == (127, 2.0**-9, 448.0)   # S.1111.111 is NaN
    assert element_grid("fp8e5m2")[-1] == 57344.0
    assert element_grid("int8")[-1] == 127 / 64 and element_grid("int4")[-1] == 7


ML_DTYPES = {"fp4e2m1": "float4_e2m1fn", "fp6e2m3": "float6_e2m3fn", "fp6e3m2": "float6_e3m2fn",
             "fp8e4m3": "float8_e4m3fn", "fp8e5m2": "float8_e5m2"}


@pytest.mark.parametrize("element", sorted(ML_DTYPES))
def test_element_grids_and_rounding_match_ml_dtypes(element):
    """ml_dtypes (an independent implementation) enumerates the same grid from its bit patterns,
    and its float32 casts round exactly as round_elements does on float32 inputs inside the range."""
    dtype = getattr(ml_dtypes, ML_DTYPES[element])
    bits = FORMATS[element].bits
    with np.errstate(invalid="ignore"):
        theirs = np.arange(1 << bits, dtype=np.uint8).view(dtype).astype(np.float64)
    np.testing.assert_array_equal(element_grid(element), np.unique(theirs[np.isfinite(theirs) & (theirs >= 0)] + 0.0))
    grid = element_grid(element)
    mids = (grid[1:] + grid[:-1]) / 2                       # every tie, and values either side of it
    y = np.concatenate([mids, np.nextafter(mids.astype(np.float32), 0), np.nextafter(mids.astype(np.float32), np.inf),
                        np.random.default_rng(0).uniform(-grid[-1], grid[-1], 5000)]).astype(np.float32)
    np.testing.assert_array_equal(round_elements(y.astype(np.float64), element), y.astype(dtype).astype(np.float64))


def test_nearest_rounds_once_from_float64():
    """1.25 + 2**-40 lies above the tie between 1 and 1.5: it rounds to 1.5. Going through float32
    first (1.25 exactly) and then to even would give 1: the quotient is rounded once."""
    assert round_elements(np.array([1.25 + 2.0**-40, 1.25 - 2.0**-40]), "fp4e2m1").tolist() == [1.5, 1.0]


def test_storage_bits_carry_the_scales():
    assert (bits_of("mxfp4"), bits_of("nvfp4"), bits_of("mxfp8e4m3"), bits_of("mxint8")) == (4.25, 4.5, 8.25, 8.25)
    assert element_bits("mxfp4") == element_bits("nvfp4") == 4 and element_bits("mxfp6e2m3") == 6
    assert tensor_scale_bits("nvfp4") == 32 and tensor_scale_bits("mxfp4") == 0
    assert FORMATS["mxfp4"].block == 32 and FORMATS["nvfp4"].block == 16 and FORMATS["nvfp4"].scale_format == "fp8e4m3"


def test_e2m1_rounding_golden():
    """Round to nearest, ties to even (the even mantissa), saturating at ±6."""
    y = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 5.5, 7.0, 1e9, -0.75, -2.6])
    np.testing.assert_array_equal(round_elements(y, "fp4e2m1"), [0, 1, 1, 2, 2, 4, 4, 6, 6, 6, -1, -3])
    assert np.isnan(round_elements(np.array([np.nan]), "fp4e2m1")[0])
    np.testing.assert_array_equal(round_elements(np.array([2.5, 3.5, -7.6]), "int4"), [2, 4, -7])


def test_mx_scale_rules_golden():
    """OCP floor: amax 7 → scale 2**(2 − 2) = 1, 7 saturates to 6; ceil: scale 2**ceil(log2(7/6)) = 2,
    7 → 3.5 → 4 (tie to even) → 8. A block of zeros keeps its zeros."""
    x = np.zeros((1, 32))
    x[0, :3] = [7.0, 1.0, 0.3]
    floor = quantize_blocks(x, block_spec("mxfp4"), axis=-1)
    np.testing.assert_array_equal(floor.values[0, :3], [6.0, 1.0, 0.5])
    ceil = quantize_blocks(x, block_spec("mxfp4", rule="ceil"), axis=-1)
    np.testing.assert_array_equal(ceil.values[0, :3], [8.0, 1.0, 0.0])
    assert floor.scale == ceil.scale == 1.0
    np.testing.assert_array_equal(quantize_blocks(np.zeros((2, 64)), block_spec("mxfp4")).values, 0)


def test_nvfp4_two_level_scaling_golden():
    """Tensor scale t = amax / (6 · 448); block scale amax_b / (6 t) rounded up to E4M3; elements
    to nearest E2M1."""
    x = np.zeros((1, 32))
    x[0, :16] = np.linspace(-3.0, 5.0, 16)
    x[0, 16] = 0.1
    q = quantize_blocks(x, block_spec("nvfp4"), axis=-1)
    t = np.float32(5.0 / (6 * 448))
    assert q.scale == pytest.approx(float(t), rel=0) and q.scale == float(t)
    s1 = 5.0 / (6 * float(t))                         # 448 (up to rounding): E4M3's maximum
    grid = element_grid("fp8e4m3")
    s1 = grid[np.searchsorted(grid, s1 * (1 - 1e-12))]
    s2 = grid[np.searchsorted(grid, 0.1 / (6 * float(t)))]
    want = round_elements(x[0, :16] / float(t) / s1, "fp4e2m1") * s1
    np.testing.assert_array_equal(q.values[0, :16], want.astype(np.float32))
    assert q.values[0, 16] == np.float32(round_elements(np.array([0.1 / float(t) / s2]), "fp4e2m1")[0] * s2)


def reference_mx(x: np.ndarray, element: str, block: int, emax: int) -> np.ndarray:
    """Slow reference from the OCP MX v1.0 text (section 6.3): per block, shared_exp =
    floor(log2(max|x|)) − emax, clamped to [-127, 127]; each element x / 2**shared_exp is rounded to
    the nearest element value (ties to the even encoding), saturating at the largest one."""
    grid = [Fraction(float(g)) for g in element_grid(element)]
    out = np.zeros_like(x)
    for r in range(x.shape[0]):
        for b0 in range(0, x.shape[1], block):
            vals = x[r, b0:b0 + block]
            amax = max(abs(float(v)) for v in vals)
            e = -127 if amax == 0 else max(-127, min(127, math.floor(math.log2(amax)) - emax))
            for j, v in enumerate(vals):
                y = Fraction(float(v)) / Fraction(2) ** e
                mag = min(abs(y), grid[-1])
                best = min(range(len(grid)), key=lambda i: (abs(grid[i] - mag), i % 2))   # ties: even index
                out[r, b0 + j] = math.copysign(float(grid[best] * Fraction(2) ** e), float(v))
    return out


@pytest.mark.parametrize("fmt,element,emax", [
    ("mxfp4", "fp4e2m1", 2), ("mxfp6e2m3", "fp6e2m3", 2), ("mxfp6e3m2", "fp6e3m2", 4),
    ("mxfp8e4m3", "fp8e4m3", 8), ("mxfp8e5m2", "fp8e5m2", 15), ("mxint8", "int8", 0),
])
def test_mx_formats_match_the_slow_reference(fmt, element, emax):
    rng = np.random.default_rng(len(fmt))
    x = rng.standard_normal((3, 64)) * np.exp2(rng.integers(-6, 6, (3, 1)))
    x[1, 5] = 0.0
    got = quantize_blocks(x, block_spec(fmt), axis=-1).values
    np.testing.assert_array_equal(got, reference_mx(x, element, 32, emax).astype(np.float32))


def test_blocks_follow_the_axis_and_square_blocks_transpose():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((48, 40))
    along0 = quantize_blocks(w, block_spec("mxfp4"), axis=0).values
    np.testing.assert_array_equal(along0, quantize_blocks(w.T, block_spec("mxfp4"), axis=-1).values.T)
    sq = quantize_blocks(w, block_spec("nvfp4"), square=True)
    sq_t = quantize_blocks(w.T, block_spec("nvfp4"), square=True)
    np.testing.assert_array_equal(sq.values, sq_t.values.T)   # W and Wᵀ quantize alike
    assert sq.scale == sq_t.scale


def test_stochastic_rounding_is_unbiased_and_on_the_grid():
    rng = np.random.default_rng(2)
    y = np.full(200_000, 2.4)   # between 2 and 3: up with probability 0.4
    r = round_elements(y, "fp4e2m1", stochastic=True, rng=rng)
    assert set(np.unique(r)) == {2.0, 3.0}
    assert abs(r.mean() - 2.4) < 0.01
    q1 = quantize_blocks(np.linspace(-1, 1, 64)[None], block_spec("mxfp4"), stochastic=True, rng=np.random.default_rng(3))
    q2 = quantize_blocks(np.linspace(-1, 1, 64)[None], block_spec("mxfp4"), stochastic=True, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(q1.values, q2.values)   # seeded: reproducible


def test_int4b_block_and_scale_options():
    x = np.arange(1, 9, dtype=np.float64)[None] * 0.5
    q = quantize_blocks(x, block_spec("int4b", block=8, scale="fp16"), axis=-1)
    scale = np.float16(4.0 / 7)
    scale = float(scale) if float(scale) >= 4 / 7 else float(np.nextafter(scale, np.float16(1)))
    np.testing.assert_array_equal(q.values[0], (np.rint(x[0] / scale) * scale).astype(np.float32))


def test_hadamard_is_orthogonal_and_cancels_in_the_product():
    rng = np.random.default_rng(4)
    signs = np.where(rng.random(16) < 0.5, -1.0, 1.0)
    a, b = rng.standard_normal((5, 40)), rng.standard_normal((40, 3))
    ta, tb = hadamard(a, signs, axis=-1), hadamard(b, signs, axis=-2)
    np.testing.assert_allclose(ta @ tb, a @ b, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ta[:, 32:], a[:, 32:])   # the last partial block is left as it is
    np.testing.assert_allclose(np.linalg.norm(ta, axis=1), np.linalg.norm(a, axis=1), rtol=1e-13)
    e0 = np.zeros((1, 16))
    e0[0, 0] = 1.0
    np.testing.assert_allclose(np.abs(hadamard(e0, signs, axis=-1)), 0.25)   # spreads one outlier evenly
    with pytest.raises(ValueError, match="power of two"):
        hadamard(a, np.ones(12), axis=-1)


def test_gemm_on_block_operands_applies_the_tensor_scales_once():
    rng = np.random.default_rng(5)
    a = quantize_blocks(rng.standard_normal((4, 32)), block_spec("nvfp4"), axis=-1)
    b = quantize_blocks(rng.standard_normal((32, 3)), block_spec("nvfp4"), axis=-2)
    y = gemm(a, b, acc_format="fp32", out_format="fp32")
    exact = float_matmul(a.values, b.values) * (a.scale * b.scale)
    np.testing.assert_array_equal(y, round_accumulator(exact, "fp32"))
    assert isinstance(a, Scaled) and a.T.shape == (32, 4)
