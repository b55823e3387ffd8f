"""Per-iteration rescaling: SAWB weights, max mode, PACT forward/backward, worked out by hand."""

import math

import numpy as np
import pytest

from accelsim.numerics.rescale import (
    SAWB_COEFFS,
    max_scale,
    pact_backward,
    pact_forward,
    quantize_max,
    quantize_sawb,
    sawb_clip,
    sawb_scale,
)

f32 = np.float32


def test_sawb_coefficients_at_4_bits():
    assert SAWB_COEFFS[4] == (12.68, -12.80)


def test_sawb_clip_by_hand():
    """w = [4, 0, 0, 0, 1, -1, 0, 0]: E[w²] = 18/8 = 2.25 (sqrt 1.5), E|w| = 6/8 = 0.75,
    clip = 12.68*1.5 - 12.80*0.75 = 19.02 - 9.60 = 9.42, s = 9.42/7 = 1.345714...;
    w/s = 2.972, 0.743 -> q = 3, ±1."""
    w = np.array([4, 0, 0, 0, 1, -1, 0, 0], dtype=f32)
    assert sawb_clip(w) == pytest.approx(9.42, rel=1e-12)
    assert sawb_scale(w) == pytest.approx(9.42 / 7, rel=1e-12)
    q = quantize_sawb(w)
    np.testing.assert_array_equal(q.codes, [3, 0, 0, 0, 1, -1, 0, 0])
    s = f32(9.42 / 7)
    np.testing.assert_array_equal(q.values, np.array([3, 0, 0, 0, 1, -1, 0, 0], f32) * s)


def test_sawb_single_spike():
    """w = [2, 0, 0, 0]: E[w²] = 1, E|w| = 0.5, clip = 12.68 - 6.40 = 6.28 < max|w| = 2? no:
    6.28 > 2, so nothing clips; s = 6.28/7 = 0.8971, 2/s = 2.229 -> q = 2."""
    q = quantize_sawb([2.0, 0.0, 0.0, 0.0])
    assert q.scale == pytest.approx(6.28 / 7, rel=1e-6)
    np.testing.assert_array_equal(q.codes, [2, 0, 0, 0])


def test_sawb_falls_back_to_max_when_clip_not_positive():
    """w = ±0.5: E[w²] = 0.25 (sqrt 0.5), E|w| = 0.5, clip = 6.34 - 6.40 = -0.06 <= 0
    -> clip = max|w| = 0.5, s = 0.5/7, q = ±7 (values ±0.5 up to float32 rounding)."""
    w = np.array([0.5, -0.5, 0.5, -0.5], dtype=f32)
    assert sawb_clip(w) == pytest.approx(-0.06, abs=1e-12)
    assert sawb_scale(w) == 0.5 / 7
    q = quantize_sawb(w)
    np.testing.assert_array_equal(q.codes, [7, -7, 7, -7])
    np.testing.assert_allclose(q.values, [0.5, -0.5, 0.5, -0.5], rtol=1e-7)


def test_sawb_of_zero_weights():
    assert sawb_scale(np.zeros(5)) == 1.0
    np.testing.assert_array_equal(quantize_sawb(np.zeros(5)).values, 0)


def test_sawb_gaussian_clip_is_about_2_46_sigma():
    """For Gaussian weights clip = E|w|*(12.68*sqrt(pi/2) - 12.80) ~ 2.46 sigma."""
    w = np.random.default_rng(0).standard_normal(200_000).astype(f32)
    expected = math.sqrt(2 / math.pi) * (12.68 * math.sqrt(math.pi / 2) - 12.80)
    assert sawb_clip(w) == pytest.approx(expected, rel=0.01)


def test_max_mode():
    """int4: s = max|x|/7 = 1.75/7 = 0.25 (symmetric); uint4: s = max|x|/15 = 3.75/15 = 0.25."""
    x = np.array([0.5, -1.75, 0.25, 1.0], dtype=f32)
    assert max_scale(x) == 0.25
    q = quantize_max(x)
    np.testing.assert_array_equal(q.codes, [2, -7, 1, 4])
    y = np.array([0.0, 3.75, 1.25, -1.0], dtype=f32)
    assert max_scale(y, "uint4") == 0.25
    np.testing.assert_array_equal(quantize_max(y, "uint4").codes, [0, 15, 5, 0])
    assert max_scale(np.zeros(3)) == 1.0
    with pytest.raises(ValueError, match="max scaling applies to int4 and uint4, not 'fp16'"):
        max_scale(x, "fp16")


# PACT, alpha = 3.75 -> s = 0.25
X = np.array([-1.0, 0.0, 0.1, 0.125, 0.375, 1.0, 3.75, 5.0], dtype=f32)
# x/s =        -4    0    0.4  0.5    1.5    4    15    20
# q   =         0    0    0    0(tie) 2      4    15    15


def test_pact_forward_by_hand():
    q = pact_forward(X, 3.75)
    assert q.format == "uint4" and q.scale == 0.25
    np.testing.assert_array_equal(q.codes, [0, 0, 0, 0, 2, 4, 15, 15])
    np.testing.assert_array_equal(q.values, [0, 0, 0, 0, 0.5, 1.0, 3.75, 3.75])


def test_pact_backward_by_hand():
    """grad_x passes where 0 < x < alpha; x = alpha and above feed alpha (7 + 8 = 15);
    x <= 0 gets nothing."""
    g = np.arange(1, 9, dtype=f32)
    grad_x, grad_alpha = pact_backward(g, X, 3.75)
    np.testing.assert_array_equal(grad_x, [0, 0, 3, 4, 5, 6, 0, 0])
    assert grad_alpha == 15.0
    assert grad_x.dtype == np.float32


def test_pact_rejects_bad_alpha():
    with pytest.raises(ValueError, match="PACT alpha must be a positive finite number, got -1"):
        pact_forward(X, -1)
    with pytest.raises(ValueError, match="does not match"):
        pact_backward(np.ones(3), X, 1.0)
