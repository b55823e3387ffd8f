"""Properties of the quantizers (hypothesis), and fast paths against slow reference paths.

Slow references here are written from the format definitions, independently of the library:
fp8 and fp4r4 pick the nearest value from a table of every representable value (brute force);
fp16 is numpy's own float16 cast.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelsim.numerics.quant import (
    decode,
    quantize,
    quantize_float,
    quantize_fp4r4,
    quantize_int,
    representable_values,
    two_phase_fp4r4,
)

f32 = np.float32
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
arrays32 = hnp.arrays(np.float32, st.integers(1, 32), elements=finite32)
# values of moderate magnitude, where the 4-bit grids live
moderate = hnp.arrays(
    np.float32, st.integers(1, 32),
    elements=st.floats(-100, 100, width=32) | st.floats(-(2.0**-10), 2.0**-10, width=32),
)
int_scales = st.floats(2.0**-10, 100.0, width=32)
pow2_scales = st.integers(-20, 20).map(lambda e: 2.0**e)
int_formats = st.sampled_from([("int4", False), ("int4", True), ("uint4", False)])


# ---------------------------------------------------------------------------- slow references


def fp8_table(e_bits, m_bits, bias, fn):
    """(value, code) of every finite code, by looping over the bit fields."""
    table = []
    for code in range(256):
        sign = -1.0 if code >> 7 else 1.0
        e = (code >> m_bits) & ((1 << e_bits) - 1)
        m = code & ((1 << m_bits) - 1)
        top = (1 << e_bits) - 1
        if fn and e == top and m == (1 << m_bits) - 1:
            continue                                # e4m3fn: the only NaN code
        if not fn and e == top:
            continue                                # IEEE-like: inf / NaN
        if e == 0:
            v = m * 2.0 ** (1 - bias - m_bits)
        else:
            v = (1 + m / 2**m_bits) * 2.0 ** (e - bias)
        table.append((sign * v, code))
    return np.array([t[0] for t in table]), np.array([t[1] for t in table])


FP8 = {"fp8e4m3": fp8_table(4, 3, 7, True), "fp8e5m2": fp8_table(5, 2, 15, False)}


def fp8_reference(x, fmt):
    """Nearest table value; ties to the even code; beyond ±max saturate."""
    values, codes = FP8[fmt]
    top = values.max()
    out = np.empty(len(x), dtype=np.float64)
    for i, xi in enumerate(np.asarray(x, dtype=np.float64)):
        if abs(xi) >= top:
            out[i] = np.copysign(top, xi)
            continue
        d = np.abs(values - xi)
        best = np.flatnonzero(d == d.min())
        even = [j for j in best if codes[j] % 2 == 0]
        out[i] = values[(even or best)[0]]
    return out


def fp4r4_reference(x, scale):
    """Nearest of {0, ±scale*4**(c-7)} by brute force; ties to the larger magnitude."""
    grid = np.array([0.0] + [scale * 4.0 ** (c - 7) for c in range(1, 8)])
    out = np.empty(len(x), dtype=np.float64)
    for i, xi in enumerate(np.asarray(x, dtype=np.float64)):
        d = np.abs(grid - abs(xi))
        best = np.flatnonzero(d == d.min())
        out[i] = np.copysign(grid[best[-1]], xi)    # last = larger magnitude
    return out


# ---------------------------------------------------------------------------- integer formats


@SETTINGS
@given(moderate, int_scales, int_formats)
def test_int_idempotent_on_grid_monotone(x, scale, fmt_sym):
    """q(q(x)) == q(x); values = decode(codes) with codes in range; x <= y -> q(x) <= q(y)."""
    fmt, sym = fmt_sym
    q = quantize_int(x, scale, fmt, symmetric=sym)
    np.testing.assert_array_equal(quantize_int(q.values, scale, fmt, symmetric=sym).values, q.values)
    np.testing.assert_array_equal(decode(q.codes, fmt, q.scale), q.values)
    lo = -7 if sym else (-8 if fmt == "int4" else 0)
    hi = 15 if fmt == "uint4" else 7
    assert q.codes.min() >= lo and q.codes.max() <= hi
    s = np.sort(x)
    assert np.all(np.diff(quantize_int(s, scale, fmt, symmetric=sym).values) >= 0)


@SETTINGS
@given(moderate, int_scales)
def test_int_nearest_is_nearest(x, scale):
    """No grid point is closer than the chosen one (within the clipping range)."""
    q = quantize_int(x, scale, "int4")
    grid = representable_values("int4", q.scale).astype(f32)
    d_best = np.abs(grid[None, :].astype(np.float64) - x[:, None]).min(axis=1)
    np.testing.assert_allclose(np.abs(q.values.astype(np.float64) - x), d_best, rtol=1e-6, atol=0)


def test_stochastic_int_is_unbiased():
    """E[q(x)] = x inside the range: mean of 40000 draws within 5 standard errors (fixed seed)."""
    rng = np.random.default_rng(12345)
    s = 0.25
    for x in (0.1, -0.3, 1.234, -1.99, 0.0625, 1.75):
        q = quantize_int(np.full(40_000, x, f32), s, "int4", rounding="stochastic", rng=rng)
        assert set(np.unique(q.values)) <= {np.floor(x / s) * s, np.ceil(x / s) * s}
        assert abs(q.values.mean() - x) <= 5 * (s / 2) / np.sqrt(40_000)


def test_stochastic_is_reproducible_with_the_same_seed():
    x = np.linspace(-1, 1, 101, dtype=f32)
    kw = dict(rounding="stochastic")
    a = quantize(x, "int4", rng=np.random.default_rng(7), **kw).values
    b = quantize(x, "int4", rng=np.random.default_rng(7), **kw).values
    c = quantize(x, "int4", rng=np.random.default_rng(8), **kw).values
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------------------- radix-4 FP4


@SETTINGS
@given(arrays32, pow2_scales, st.sampled_from([0, 1]))
def test_fp4r4_matches_brute_force(x, scale, phase):
    """The bit-trick fast path equals the nearest grid value found by brute force."""
    q = quantize_fp4r4(x, scale, phase=phase)
    np.testing.assert_array_equal(q.values, fp4r4_reference(x, scale * 2**phase))


@pytest.mark.parametrize("scale,phase", [(1.0, 0), (1.0, 1), (2.0**-113, 0), (2.0**125, 1)])
def test_fp4r4_at_every_threshold(scale, phase):
    """At every rounding threshold (m/2 and 2.5L) and one ulp either side, both signs."""
    top = scale * 2**phase
    levels = [top * 4.0 ** (c - 7) for c in range(1, 8)]
    thresholds = [levels[0] / 2] + [2.5 * lv for lv in levels[:-1]] + levels
    t = np.array(thresholds, dtype=f32)
    x = np.concatenate([t, np.nextafter(t, f32(0)), np.nextafter(t, f32(np.inf))])
    x = np.concatenate([x, -x])
    np.testing.assert_array_equal(
        quantize_fp4r4(x, scale, phase=phase).values, fp4r4_reference(x, top)
    )


@SETTINGS
@given(moderate, pow2_scales, st.sampled_from([0, 1]))
def test_fp4r4_idempotent_on_grid_monotone(x, scale, phase):
    q = quantize_fp4r4(x, scale, phase=phase)
    np.testing.assert_array_equal(quantize_fp4r4(q.values, scale, phase=phase).values, q.values)
    grid = representable_values("fp4r4", scale, phase=phase)
    assert np.isin(q.values, grid).all()
    np.testing.assert_array_equal(decode(q.codes, "fp4r4", q.scale), q.values)
    s = np.sort(x)
    assert np.all(np.diff(quantize_fp4r4(s, scale, phase=phase).values) >= 0)


@SETTINGS
@given(moderate, st.integers(-10, 10))
def test_fp4r4_scale_equivariance_and_phases(x, k):
    """q(x*2**k, s*2**k) = q(x, s)*2**k, and phase 1 at s is phase 0 at 2s."""
    base = quantize_fp4r4(x, 1.0).values
    scaled = quantize_fp4r4(x * f32(2.0**k), 2.0**k).values
    np.testing.assert_array_equal(scaled, base * f32(2.0**k))
    q0, q1 = two_phase_fp4r4(x, 0.5)
    np.testing.assert_array_equal(q1.values, quantize_fp4r4(x, 1.0).values)
    np.testing.assert_array_equal(q0.values, quantize_fp4r4(x, 0.5).values)


def test_fp4r4_stochastic_is_unbiased():
    """Both stochastic modes: E[q(x)] = x (5 standard errors of 40000 draws), only neighbours."""
    rng = np.random.default_rng(2024)
    n = 40_000
    m = 4.0**-6
    cases = [  # (x, lower neighbour, upper neighbour)
        (0.1, 1 / 16, 1 / 4), (0.7, 1 / 4, 1.0), (-0.3, -1 / 4, -1.0),
        (3 * m, m, 4 * m), (0.3 * m, 0.0, m), (0.6 * m, 0.0, m), (1.0, 1.0, 1.0),
    ]
    for x, lo, hi in cases:
        q = quantize_fp4r4(np.full(n, x, f32), 1.0, rounding="stochastic", rng=rng).values
        assert set(np.unique(q)) <= {f32(lo), f32(hi)}
        assert abs(q.mean() - x) <= 5 * abs(hi - lo) / 2 / np.sqrt(n) + 1e-12
    for x in (0.3 * m, 0.6 * m, -0.9 * m, 0.01 * m):
        q = quantize_fp4r4(np.full(n, x, f32), 1.0, underflow="stochastic", rng=rng).values
        assert set(np.abs(np.unique(q))) <= {f32(0), f32(m)}
        assert abs(q.mean() - x) <= 5 * m / 2 / np.sqrt(n)


def test_fp4r4_stochastic_underflow_leaves_larger_values_alone():
    x = np.array([1e-6, 0.3, 1 / 4096, -0.7, 2.0], dtype=f32)
    a = quantize_fp4r4(x, 1.0, underflow="stochastic", rng=np.random.default_rng(0)).values
    np.testing.assert_array_equal(a[1:], quantize_fp4r4(x[1:], 1.0).values)


# ---------------------------------------------------------------------------- floats


@SETTINGS
@given(arrays32, st.sampled_from(["fp8e4m3", "fp8e5m2"]))
def test_fp8_matches_slow_reference(x, fmt):
    np.testing.assert_array_equal(quantize_float(x, fmt).values, fp8_reference(x, fmt))


@pytest.mark.parametrize("fmt", ["fp8e4m3", "fp8e5m2"])
def test_fp8_at_every_midpoint(fmt):
    """Every midpoint of adjacent fp8 values (the ties) and one float32 ulp either side."""
    grid = np.unique(FP8[fmt][0])
    mid = ((grid[:-1] + grid[1:]) / 2).astype(f32)          # exact: m+2 bits
    x = np.concatenate([mid, np.nextafter(mid, f32(-np.inf)), np.nextafter(mid, f32(np.inf))])
    np.testing.assert_array_equal(quantize_float(x, fmt).values, fp8_reference(x, fmt))


@SETTINGS
@given(arrays32, st.sampled_from(["fp8e4m3", "fp8e5m2", "fp16"]))
def test_float_idempotent_and_monotone(x, fmt):
    q = quantize_float(x, fmt)
    np.testing.assert_array_equal(quantize_float(q.values, fmt).values, q.values)
    np.testing.assert_array_equal(decode(q.codes, fmt), q.values)
    s = np.sort(x)
    v = quantize_float(s, fmt).values
    assert np.all(np.diff(v[np.isfinite(v)]) >= 0)


@SETTINGS
@given(
    hnp.arrays(np.float32, st.integers(1, 64), elements=finite32)
    | hnp.arrays(np.float64, st.integers(1, 64), elements=st.floats(allow_nan=False, allow_infinity=False))
)
def test_fp16_identical_to_numpy(x):
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16).astype(f32)
    np.testing.assert_array_equal(quantize_float(x, "fp16").values, expected)


def test_fp16_identical_to_numpy_dense_sweep():
    """A sweep over float32 bit patterns (every 4099th) and every fp16 tie ± one ulp."""
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(f32)
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(f32)
    h = np.unique(h[np.isfinite(h)])
    mid = ((h[:-1].astype(np.float64) + h[1:]) / 2).astype(f32)
    x = np.concatenate([x, mid, np.nextafter(mid, f32(-np.inf)), np.nextafter(mid, f32(np.inf))])
    with np.errstate(over="ignore", invalid="ignore"):
        expected = x.astype(np.float16).astype(f32)
    np.testing.assert_array_equal(quantize_float(x, "fp16").values, expected)


def test_fp8_stochastic_is_unbiased():
    rng = np.random.default_rng(99)
    n = 40_000
    for fmt, x, quantum in (("fp8e4m3", 1.03, 0.125), ("fp8e5m2", -3.3, 0.5), ("fp8e4m3", 3e-3, 2.0**-9)):
        q = quantize_float(np.full(n, x, f32), fmt, rounding="stochastic", rng=rng).values
        assert len(np.unique(q)) == 2
        assert abs(q.mean() - x) <= 5 * quantum / 2 / np.sqrt(n)


@SETTINGS
@given(arrays32)
def test_fp32_identical_to_float32(x):
    np.testing.assert_array_equal(quantize(x, "fp32").values, x.astype(f32))
