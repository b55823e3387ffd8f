"""GradScale: the whole sequence of per-layer scales over several steps, for each rule."""

import numpy as np
import pytest

from accelsim.numerics.gradscale import GradScale, fp4r4_scale_for
from accelsim.numerics.quant import quantize_fp4r4


def run(gs, maxima):
    scales, actions = [], []
    for m in maxima:
        scales.append(gs.update(m))
        actions.append(gs.last_action)
    return scales, actions


def test_default_rule_sequence():
    """Defaults (step 4, overflow above s, underflow below s/4): overflow -> up until it fits,
    unused top bin -> down one step, otherwise keep; zero and NaN keep."""
    scales, actions = run(GradScale(), [0.5, 3.0, 3.0, 0.9, 0.5, 0.1, 0.01, 0.0, np.nan, 100.0])
    # 0.5 in [1/4, 1] keep; 3 > 1 -> 4; 3 in [1, 4] keep; 0.9 < 1 -> 1; 0.5 keep;
    # 0.1 < 1/4 -> 1/4; 0.01 < 1/16 -> 1/16; 0 keep; nan keep; 100 -> 1/4, 1, 4, 16, 64, 256
    assert scales == [1, 4, 4, 1, 1, 0.25, 0.0625, 0.0625, 0.0625, 256]
    assert actions == ["keep", "up", "keep", "down", "keep", "down", "down", "keep", "keep", "up"]


def test_step_two_sequence():
    """step=2: raise by powers of two; lower by one power of two per step."""
    scales, _ = run(GradScale(step=2), [3, 3, 0.9, 0.5, 0.1, 0.1, 0.1])
    # 3 -> 2 -> 4; keep; 0.9 < 1 -> 2; 0.5 = 2/4 is not below -> keep; 0.1 -> 1 -> 0.5 -> 0.25
    assert scales == [4, 4, 2, 2, 1, 0.5, 0.25]


def test_custom_thresholds():
    """overflow=0.5, underflow=0.125 (step 2): the band is [s/8, s/2]."""
    scales, _ = run(GradScale(step=2, overflow=0.5, underflow=0.125), [0.6, 0.6, 0.2, 0.1])
    # 0.6 > 0.5 -> 2; 0.6 in [0.25, 1] keep; 0.2 < 0.25 -> 1; 0.1 < 0.125 -> 0.5
    assert scales == [2, 2, 1, 0.5]


def test_never_lowers_into_an_overflow():
    """step=16: 0.2 < 1/4 would lower to 1/16 < 0.2, which overflows: keep instead."""
    scales, actions = run(GradScale(step=16), [0.2, 0.01, 0.01])
    # 0.2 keep; 0.01 < 1/4 and 0.01 <= 1/16 -> 1/16; 0.01 >= 1/64 keep
    assert scales == [1, 0.0625, 0.0625]
    assert actions == ["keep", "down", "keep"]


def test_from_bins_matches_policy_terms():
    """step_log2=2, underflow_bins=2: step 4, lower when max|g| < s/16."""
    scales, _ = run(GradScale.from_bins(step_log2=2, underflow_bins=2), [0.2, 0.05, 0.01])
    assert scales == [1, 0.25, 0.0625]


def test_bounds_clamp_the_scale():
    gs = GradScale(step=2, max_scale=8.0, min_scale=0.5)
    assert run(gs, [100, 100, 0.001, 0.001])[0] == [8, 8, 4, 2]
    gs = GradScale(step=2, min_scale=0.5)
    assert run(gs, [0.01, 0.01])[0] == [0.5, 0.5]


def test_observe_then_quantize_does_not_saturate():
    """The scale chosen for this step's gradient holds its maximum without saturation."""
    gs = GradScale(init_scale=2.0**-20)
    rng = np.random.default_rng(0)
    for magnitude in (1e-3, 1e2, 1e2, 1e-6):
        g = (rng.standard_normal(1000) * magnitude).astype(np.float32)
        s = gs.observe(g)
        assert np.abs(g).max() <= s
        assert np.abs(quantize_fp4r4(g, s).values).max() <= s


def test_stateless_helper_agrees_with_a_fresh_overflow():
    """Raising with step 2 from a tiny scale lands on fp4r4_scale_for(max)."""
    for m in (0.3, 1.0, 5.0, 1e-4):
        assert GradScale(2.0**-60, step=2).update(m) == fp4r4_scale_for(m)


def test_bad_options():
    with pytest.raises(ValueError, match="step must be a power of two >= 2, got 3"):
        GradScale(step=3)
    with pytest.raises(ValueError, match="init_scale must be a positive power of two, got 3.0"):
        GradScale(3.0)
    with pytest.raises(ValueError, match="underflow must satisfy 0 <= underflow < overflow"):
        GradScale(underflow=1.0)
