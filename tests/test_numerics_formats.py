"""Golden vectors for every number format, worked out by hand (see the comment on each case).

Tie rules pinned here: integer formats round half to even (numpy ``rint``); IEEE-like floats
round half to even on the mantissa; radix-4 FP4 rounds ties towards the larger magnitude
(including the flush threshold: exactly half the smallest level becomes the smallest level).
"""

import numpy as np
import pytest

from accelsim.numerics.formats import FORMAT_NAMES, FORMATS, get_format
from accelsim.numerics.quant import (
    Quantized,
    decode,
    encode,
    fp4r4_levels,
    fp4r4_scale_for,
    max_abs,
    quantize,
    quantize_float,
    quantize_fp4r4,
    quantize_int,
    representable_values,
    two_phase_fp4r4,
)
from accelsim.numerics.rescale import quantize_input

f32 = np.float32


def below(v):
    """The float32 just below v."""
    return np.nextafter(f32(v), f32(-np.inf))


def test_every_format_in_the_table_has_a_quantizer():
    """The dispatcher covers every element format and returns float32 values of the input's shape
    whose codes decode back to them; block-scaled and scale formats are sent to quantize_blocks."""
    x = np.linspace(-1, 1, 12, dtype=f32).reshape(3, 4)
    for name in FORMAT_NAMES:
        if get_format(name).kind in ("block", "scale"):
            with pytest.raises(ValueError, match="quantize_blocks"):
                quantize(x, name)
            continue
        q = quantize(x, name)
        assert isinstance(q, Quantized) and q.format == name
        assert q.values.dtype == np.float32 and q.values.shape == (3, 4)
        np.testing.assert_array_equal(decode(q.codes, name, q.scale), q.values)


# ---------------------------------------------------------------------------- int4 / uint4


def test_int4_nearest_golden():
    """int4, s = 0.5: x/s rounded half to even and clipped to [-8, 7]."""
    x = [0.26, 0.25, 0.75, -0.75, 1.25, 3.49, 3.75, 100.0, -3.9, -4.25, -100.0]
    # x/s = 0.52  0.5  1.5  -1.5  2.5  6.98  7.5   200   -7.8  -8.5   -200
    # q   = 1     0    2    -2    2    7     7(8)  7     -8    -8     -8     (ties to even)
    q = quantize_int(x, 0.5, "int4")
    np.testing.assert_array_equal(q.codes, [1, 0, 2, -2, 2, 7, 7, 7, -8, -8, -8])
    np.testing.assert_array_equal(q.values, 0.5 * q.codes.astype(f32))
    assert q.codes.dtype == np.int8 and q.scale == 0.5


def test_int4_symmetric_golden():
    """Symmetric int4 uses [-7, 7]: the -8 cases of the plain golden vector clip to -7."""
    q = quantize_int([-3.9, -4.25, -100.0, 3.75], 0.5, "int4", symmetric=True)
    np.testing.assert_array_equal(q.codes, [-7, -7, -7, 7])


def test_uint4_golden():
    """uint4, s = 0.25: x/s = -4, 0, 0.5, 1.5, 15, 15.6, 40 -> 0, 0, 0 (tie even), 2, 15, 15, 15."""
    q = quantize_int([-1.0, 0.0, 0.125, 0.375, 3.75, 3.9, 10.0], 0.25, "uint4")
    np.testing.assert_array_equal(q.codes, [0, 0, 0, 2, 15, 15, 15])
    assert q.codes.dtype == np.uint8
    np.testing.assert_array_equal(q.values, [0, 0, 0, 0.5, 3.75, 3.75, 3.75])


def test_int4_saturates_infinities_and_keeps_nan():
    """±inf saturate to the end codes; NaN stays NaN in the values."""
    q = quantize_int([np.inf, -np.inf, np.nan], 1.0, "int4")
    assert q.values[0] == 7 and q.values[1] == -8 and np.isnan(q.values[2])


def test_input_mapping_golden():
    """Pixels in [0, 1] -> rint(fl32(fl32(x*15) - 8)) in [-8, 7], ties to even."""
    x = [0.0, 1.0, 0.3, 0.5, 0.7, 0.9, 0.1, 1 / 30, -0.2, 1.5]
    # x*15-8 = -8, 7, -3.5, -0.5, 2.5, 5.5, -6.5, -7.5, -11, 14.5
    # rint   = -8, 7, -4,   -0,   2,   6,   -6,   -8,   -8 (clip), 7 (clip)
    q = quantize_input(x)
    np.testing.assert_array_equal(q.values, [-8, 7, -4, 0, 2, 6, -6, -8, -8, 7])
    np.testing.assert_array_equal(q.codes, [-8, 7, -4, 0, 2, 6, -6, -8, -8, 7])
    assert q.format == "int4" and q.scale == 1.0
    # the famous example holds for float32 and float64 pixels alike
    assert quantize_input(np.float32(0.3)).values == -4
    assert quantize_input(np.array([0.3], dtype=np.float64)).values[0] == -4


# ---------------------------------------------------------------------------- radix-4 FP4


def test_fp4r4_levels():
    """s = 1: phase 0 grid 4**-6..1, phase 1 grid 2*4**-6..2."""
    np.testing.assert_array_equal(
        fp4r4_levels(1.0, 0), [1 / 4096, 1 / 1024, 1 / 256, 1 / 64, 1 / 16, 1 / 4, 1]
    )
    np.testing.assert_array_equal(
        fp4r4_levels(1.0, 1), [1 / 2048, 1 / 512, 1 / 128, 1 / 32, 1 / 8, 1 / 2, 2]
    )


# phase 0, s = 1: levels 1/4096 ... 1; midpoints 1/8192 (flush), 2.5*L between L and 4L
FP4_PHASE0 = [
    (0.0, 0.0, 0),
    (1 / 8192, 1 / 4096, 1),            # exactly m/2: tie goes up to m
    (below(1 / 8192), 0.0, 0),          # just below m/2: flushed
    (0.3 / 4096, 0.0, 0),
    (1 / 4096, 1 / 4096, 1),
    (0.7 / 4096, 1 / 4096, 1),          # above m/2 -> m
    (2.5 / 4096, 1 / 1024, 2),          # tie between 1/4096 and 1/1024 -> larger
    (below(2.5 / 4096), 1 / 4096, 1),
    (0.15, 1 / 16, 5),                  # 0.15 < 2.5/16 = 0.15625
    (0.15625, 0.25, 6),                 # tie -> 1/4
    (0.6, 0.25, 6),                     # 0.6 < 0.625
    (0.625, 1.0, 7),                    # tie -> 1
    (1.0, 1.0, 7),
    (1.5, 1.0, 7),                      # saturate
    (1e30, 1.0, 7),
    (np.inf, 1.0, 7),
    (-0.2, -0.25, -6),                  # sign kept; 0.2 >= 0.15625
    (-np.inf, -1.0, -7),
    (-1 / 16384, -0.0, 0),
]

# phase 1, s = 1: levels 2/4096 ... 2; flush threshold 1/4096, midpoints 2.5*L
FP4_PHASE1 = [
    (1 / 4096, 1 / 2048, 1),            # exactly half the smallest level -> up
    (below(1 / 4096), 0.0, 0),
    (1 / 8192, 0.0, 0),
    (5 / 4096, 1 / 512, 2),             # tie between 2/4096 and 8/4096
    (0.15625, 0.125, 5),                # 0.15625 < 2.5/8 = 0.3125
    (0.3, 0.125, 5),
    (0.3125, 0.5, 6),                   # tie -> 1/2
    (1.0, 0.5, 6),                      # 1 < 1.25
    (1.25, 2.0, 7),                     # tie -> 2
    (3.0, 2.0, 7),                      # saturate at 2s
    (-0.4, -0.5, -6),
]


@pytest.mark.parametrize("phase,cases", [(0, FP4_PHASE0), (1, FP4_PHASE1)])
def test_fp4r4_golden(phase, cases):
    """Nearest by linear distance, ties to the larger magnitude, saturation, flush below m/2."""
    x = np.array([c[0] for c in cases], dtype=f32)
    q = quantize_fp4r4(x, 1.0, phase=phase)
    np.testing.assert_array_equal(q.values, [c[1] for c in cases])
    np.testing.assert_array_equal(q.codes, [c[2] for c in cases])
    assert q.scale == 2.0**phase
    np.testing.assert_array_equal(decode(q.codes, "fp4r4", q.scale), q.values)


def test_fp4r4_nan_stays_nan():
    """NaN is not silently turned into a number."""
    q = quantize_fp4r4([np.nan, 0.7, -np.nan], 1.0)
    assert np.isnan(q.values[0]) and np.isnan(q.values[2]) and q.values[1] == 1.0


def test_fp4r4_scaled_grid():
    """s = 2**-10 shifts the golden vector by 2**-10 exactly."""
    x = np.array([c[0] for c in FP4_PHASE0], dtype=f32)
    q = quantize_fp4r4(x * f32(2.0**-10), 2.0**-10)
    np.testing.assert_array_equal(q.values, np.array([c[1] for c in FP4_PHASE0], f32) * f32(2.0**-10))


def test_two_phase_gives_both_copies():
    """Two-Phase Rounding: phase 0 on even powers of two, phase 1 on odd powers (relative to s)."""
    x = np.array([0.3, 1.0, -0.15625, 1 / 4096], dtype=f32)
    q0, q1 = two_phase_fp4r4(x, 1.0)
    # phase 0: 0.3 -> 1/4, 1 -> 1, 0.15625 (tie) -> 1/4, 1/4096 -> 1/4096
    np.testing.assert_array_equal(q0.values, [0.25, 1.0, -0.25, 1 / 4096])
    # phase 1: 0.3 -> 1/8, 1 -> 1/2, 0.15625 -> 1/8, 1/4096 (tie at half of 1/2048) -> 1/2048
    np.testing.assert_array_equal(q1.values, [0.125, 0.5, -0.125, 1 / 2048])
    assert (q0.scale, q1.scale) == (1.0, 2.0)
    # every non-zero value of phase 0 is an even power of two, of phase 1 an odd one
    e0 = np.log2(np.abs(q0.values))
    e1 = np.log2(np.abs(q1.values))
    assert np.all(e0 % 2 == 0) and np.all(e1 % 2 == 1)


def test_fp4r4_scale_must_be_power_of_two():
    with pytest.raises(ValueError, match="fp4r4 scale must be a positive power of two, got 0.3"):
        quantize_fp4r4([1.0], 0.3)
    with pytest.raises(ValueError, match="outside the supported range"):
        quantize_fp4r4([1.0], 2.0**-120)
    with pytest.raises(ValueError, match="phase must be 0 or 1, got 2"):
        quantize_fp4r4([1.0], 1.0, phase=2)


def test_fp4r4_scale_for_puts_max_in_top_bin():
    """Smallest power of two >= max|g| (so s/2 < max <= s); 1 for an all-zero tensor."""
    assert fp4r4_scale_for(1.0) == 1.0
    assert fp4r4_scale_for(0.75) == 1.0
    assert fp4r4_scale_for(0.5) == 0.5
    assert fp4r4_scale_for(3.0) == 4.0
    assert fp4r4_scale_for(1e-5) == 2.0**-16       # 2**-17 = 7.6e-6 < 1e-5 <= 1.5e-5 = 2**-16
    assert fp4r4_scale_for(0.0) == 1.0
    with pytest.raises(ValueError, match="finite and >= 0"):
        fp4r4_scale_for(-1.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        fp4r4_scale_for(np.inf)


# ---------------------------------------------------------------------------- fp8 / fp16 / fp32

FP8_E4M3 = [
    (1.0, 1.0, 0x38),                   # exponent field 7, mantissa 000
    (1.0625, 1.0, 0x38),                # 1 + 1/16: tie between 1 and 1.125 -> even mantissa 000
    (1.1875, 1.25, 0x3A),               # tie between 1.125 (001) and 1.25 (010) -> 010
    (0.3, 0.3125, 0x2A),                # 0.3 = 1.2*2**-2, quantum 2**-5: 9.6 -> 10 -> 0.3125
    (448.0, 448.0, 0x7E),               # max: S.1111.110
    (464.0, 448.0, 0x7E),               # saturate (464 is the midpoint to the missing 480)
    (1e6, 448.0, 0x7E),
    (-np.inf, -448.0, 0xFE),
    (2.0**-6, 2.0**-6, 0x08),           # smallest normal
    (2.0**-9, 2.0**-9, 0x01),           # smallest subnormal
    (2.0**-10, 0.0, 0x00),              # tie between 0 and 2**-9 -> even (0)
    (3 * 2.0**-10, 2.0**-8, 0x02),      # tie between 1 and 2 (x 2**-9) -> 2
    (-0.3, -0.3125, 0xAA),
]

FP8_E5M2 = [
    (1.0, 1.0, 0x3C),                   # exponent field 15, mantissa 00
    (1.125, 1.0, 0x3C),                 # tie between 1 (00) and 1.25 (01) -> 00
    (1.375, 1.5, 0x3E),                 # tie between 1.25 (01) and 1.5 (10) -> 10
    (0.3, 0.3125, 0x35),                # quantum 2**-4: 4.8 -> 5
    (57344.0, 57344.0, 0x7B),           # max: S.11110.11
    (61440.0, 57344.0, 0x7B),           # saturate (not inf)
    (np.inf, 57344.0, 0x7B),
    (2.0**-14, 2.0**-14, 0x04),         # smallest normal
    (2.0**-16, 2.0**-16, 0x01),         # smallest subnormal
    (2.0**-17, 0.0, 0x00),              # tie -> even (0)
    (3 * 2.0**-17, 2.0**-15, 0x02),     # tie between 1 and 2 (x 2**-16) -> 2
]


@pytest.mark.parametrize("fmt,cases", [("fp8e4m3", FP8_E4M3), ("fp8e5m2", FP8_E5M2)])
def test_fp8_golden(fmt, cases):
    """HFP8: round half to even, subnormals, saturation to ±max."""
    x = np.array([c[0] for c in cases], dtype=f32)
    q = quantize_float(x, fmt)
    np.testing.assert_array_equal(q.values, [c[1] for c in cases])
    np.testing.assert_array_equal(q.codes, [c[2] for c in cases])
    assert q.codes.dtype == np.uint8


def test_fp8_tables_match_the_format_table():
    """Largest and smallest representable values agree with formats.py."""
    for fmt, smallest in (("fp8e4m3", 2.0**-9), ("fp8e5m2", 2.0**-16)):
        vals = representable_values(fmt)
        assert vals[-1] == get_format(fmt).max_value and vals[0] == -vals[-1]
        assert vals[vals > 0][0] == smallest
    assert len(representable_values("fp8e4m3")) == 253   # 256 - 2 NaN - (+0/-0 merged)
    assert len(representable_values("fp8e5m2")) == 247   # 256 - 2 inf - 6 NaN - merged zero


def test_fp8_nan():
    q = quantize_float([np.nan], "fp8e4m3")
    assert np.isnan(q.values[0]) and q.codes[0] & 0x7F == 0x7F


FP16 = [
    (1.0 + 2.0**-11, 1.0),              # tie -> even mantissa
    (1.0 + 3 * 2.0**-11, 1.0 + 2.0**-9),  # tie between ...01 and ...10 -> ...10
    (0.1, 0.0999755859375),
    (65504.0, 65504.0),
    (65519.0, 65504.0),
    (65520.0, np.inf),                  # IEEE: overflow to inf (fp16 does not saturate)
    (2.0**-24, 2.0**-24),               # smallest subnormal
    (2.0**-25, 0.0),                    # tie -> 0
    (-3 * 2.0**-25, -2.0**-23),
]


def test_fp16_golden_and_numpy_identity():
    x = np.array([c[0] for c in FP16], dtype=f32)
    q = quantize_float(x, "fp16")
    np.testing.assert_array_equal(q.values, [c[1] for c in FP16])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(q.values, x.astype(np.float16).astype(f32))
        np.testing.assert_array_equal(q.codes, x.astype(np.float16).view(np.uint16))


def test_fp16_of_float64_is_numpys_direct_cast():
    """float64 input is cast directly (no double rounding through float32)."""
    # 1 + 2**-11 + 2**-40: just above an fp16 tie; float32 would round it onto the tie (-> 1.0)
    x = np.array([1 + 2.0**-11 + 2.0**-40])
    assert quantize_float(x, "fp16").values[0] == x.astype(np.float16)[0] == 1 + 2.0**-10


def test_fp32_is_float32_cast():
    x = np.array([0.1, 1e-50, 1e40, -2.5])
    q = quantize_float(x, "fp32")
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(q.values, x.astype(f32))
        np.testing.assert_array_equal(q.codes, x.astype(f32).view(np.uint32))


# ---------------------------------------------------------------------------- codes and dispatcher


def test_encode_decode_round_trip_on_every_grid():
    """decode(encode(v)) == v for every representable value of every 4- and 8-bit format."""
    for fmt, kw in [("int4", {}), ("uint4", {}), ("fp8e4m3", {}), ("fp8e5m2", {}), ("fp16", {})]:
        v = representable_values(fmt, 1.0 if fmt.startswith("fp") else 0.375, **kw).astype(f32)
        s = 1.0 if fmt.startswith("fp") else 0.375
        np.testing.assert_array_equal(decode(encode(v, fmt, s), fmt, s), v)
    for phase in (0, 1):
        v = representable_values("fp4r4", 0.5, phase=phase).astype(f32)
        top = 0.5 * 2**phase
        codes = encode(v, "fp4r4", top)
        np.testing.assert_array_equal(codes, np.arange(-7, 8))
        np.testing.assert_array_equal(decode(codes, "fp4r4", top), v)


def test_dispatcher_default_scales():
    """scale=None: max scaling for int4/uint4, power-of-two top bin for fp4r4."""
    x = np.array([0.5, -1.75, 0.25, 1.0], dtype=f32)
    q = quantize(x, "int4")                  # s = 1.75/7 = 0.25
    assert q.scale == 0.25
    np.testing.assert_array_equal(q.codes, [2, -7, 1, 4])
    q = quantize(np.array([0.0, 3.75, 1.25]), "uint4")   # s = 3.75/15 = 0.25
    np.testing.assert_array_equal(q.codes, [0, 15, 5])
    q = quantize(x, "fp4r4")                 # max 1.75 -> s = 2
    assert q.scale == 2.0
    np.testing.assert_array_equal(q.values, [0.5, -2.0, 0.125, 0.5])
    assert quantize(np.zeros(3), "int4").scale == 1.0


def test_dispatcher_rejects_options_that_do_not_apply():
    with pytest.raises(ValueError, match="phase and underflow apply to fp4r4 only, not 'int4'"):
        quantize([1.0], "int4", phase=1)
    with pytest.raises(ValueError, match="symmetric=True applies to signed integer formats only, not 'uint4'"):
        quantize([1.0], "uint4", symmetric=True)
    with pytest.raises(ValueError, match="fp16 takes no scale"):
        quantize([1.0], "fp16", scale=2.0)
    with pytest.raises(KeyError, match="unknown number format 'int3'"):
        quantize([1.0], "int3")
    with pytest.raises(ValueError, match="unknown rounding 'up'; allowed: nearest, stochastic"):
        quantize([1.0], "int4", rounding="up")
    with pytest.raises(ValueError, match="stochastic rounding needs rng=numpy.random.Generator"):
        quantize([1.0], "fp4r4", rounding="stochastic")
    with pytest.raises(ValueError, match="fp16 supports nearest rounding only"):
        quantize([1.0], "fp16", rounding="stochastic", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="scale must be a positive finite number, got 0"):
        quantize_int([1.0], 0.0)


def test_shapes_and_scalars():
    """0-d, 2-d and non-contiguous inputs keep their shape."""
    assert quantize_fp4r4(np.float32(0.3), 1.0).values.shape == ()
    x = np.arange(24, dtype=f32).reshape(4, 6)[:, ::2] / 24
    for name in FORMAT_NAMES:
        if get_format(name).kind not in ("block", "scale"):   # those: test_numerics_blocks.py
            assert quantize(x, name).values.shape == (4, 3)


def test_max_abs():
    assert max_abs([-3.0, 2.0]) == 3.0 and max_abs([]) == 0.0 and np.isnan(max_abs([1, np.nan]))


def test_format_table_unchanged():
    """The quantizers rely on these table entries."""
    assert (FORMATS["int4"].qmin, FORMATS["int4"].qmax) == (-8, 7)
    assert (FORMATS["uint4"].qmin, FORMATS["uint4"].qmax) == (0, 15)
    assert (FORMATS["fp4r4"].radix, FORMATS["fp4r4"].levels) == (4, 7)
    assert (FORMATS["fp8e4m3"].bias, FORMATS["fp8e4m3"].max_value) == (7, 448.0)
    assert (FORMATS["fp8e5m2"].bias, FORMATS["fp8e5m2"].max_value) == (15, 57344.0)
    assert (FORMATS["bf16"].bias, FORMATS["bf16"].mantissa_bits) == (127, 7)
    assert (FORMATS["fp4e2m1"].bias, FORMATS["fp4e2m1"].max_value) == (1, 6.0)
    assert (FORMATS["fp6e2m3"].bias, FORMATS["fp6e2m3"].max_value) == (1, 7.5)
    assert (FORMATS["fp6e3m2"].bias, FORMATS["fp6e3m2"].max_value) == (3, 28.0)


# ---------------------------------------------------------------------------- OCP small floats, bf16


def test_ocp_small_float_grids_golden():
    """Every finite value of the OCP element formats (OCP MX v1.0, section 5.3), by hand."""
    assert list(representable_values("fp4e2m1")) == [
        -6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]
    e2m3 = representable_values("fp6e2m3")
    assert (e2m3[-1], e2m3[-2], e2m3[e2m3 > 0][0], len(e2m3)) == (7.5, 7.0, 0.125, 63)
    e3m2 = representable_values("fp6e3m2")
    assert (e3m2[-1], e3m2[-2], e3m2[e3m2 > 0][0], len(e3m2)) == (28.0, 24.0, 0.0625, 63)


def test_small_float_codes_golden():
    """E2M1 codes S.EE.M: 0x7 = 6, 0x1 = 0.5 (subnormal), 0xA = -1; round trips for every code."""
    np.testing.assert_array_equal(decode(np.array([0x7, 0x1, 0xA, 0x8]), "fp4e2m1"), f32([6, 0.5, -1, -0.0]))
    np.testing.assert_array_equal(encode(f32([6, 0.5, -1, 1.5]), "fp4e2m1"), [0x7, 0x1, 0xA, 0x3])
    for fmt in ("fp4e2m1", "fp6e2m3", "fp6e3m2"):
        codes = np.arange(1 << get_format(fmt).bits)
        np.testing.assert_array_equal(encode(decode(codes, fmt), fmt), codes)
    with pytest.raises(ValueError, match="codes must lie"):
        decode(np.array([16]), "fp4e2m1")


def test_bf16_rounding_golden():
    """bf16 keeps 7 mantissa bits: 1 + 2**-8 is a tie (to even: 1), 1 + 3*2**-8 rounds up to
    1 + 2**-6; 2**-133 is the smallest subnormal; codes are the float32 pattern's top half."""
    x = f32([1 + 2**-8, 1 + 3 * 2**-8, 2.0**-133, -3.0])
    q = quantize(x, "bf16")
    np.testing.assert_array_equal(q.values, f32([1.0, 1 + 2**-6, 2.0**-133, -3.0]))
    np.testing.assert_array_equal(q.codes, [0x3F80, 0x3F82, 0x0001, 0xC040])
    assert quantize(f32([3.4e38, np.nan]), "bf16").values[0] == np.inf
    # stochastic: 1 + 2**-9 is a quarter of the way from 1 to 1 + 2**-7
    sr = quantize(np.full(40000, 1 + 2**-9, f32), "bf16", rounding="stochastic", rng=np.random.default_rng(3)).values
    assert set(np.unique(sr)) == {f32(1.0), f32(1 + 2**-7)}
    assert np.mean(sr == f32(1 + 2**-7)) == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("fmt", ["fp4e2m1", "fp6e2m3", "fp6e3m2", "fp8e4m3", "fp8e5m2", "bf16"])
def test_float_rounding_matches_ml_dtypes(fmt):
    """Round to nearest even agrees bit for bit with ml_dtypes' casts (an independent
    implementation) on values spread over the whole range, inside the saturation bound."""
    import ml_dtypes

    dtype = {"fp4e2m1": ml_dtypes.float4_e2m1fn, "fp6e2m3": ml_dtypes.float6_e2m3fn,
             "fp6e3m2": ml_dtypes.float6_e3m2fn, "fp8e4m3": ml_dtypes.float8_e4m3fn,
             "fp8e5m2": ml_dtypes.float8_e5m2, "bf16": ml_dtypes.bfloat16}[fmt]
    top = min(get_format(fmt).max_value, 1e30)
    rng = np.random.default_rng(7)
    x = (rng.choice([-1, 1], 20000) * np.exp(rng.uniform(np.log(1e-3 * top), np.log(top), 20000))).astype(f32)
    x = np.concatenate([x, representable_values(fmt)[:: max(1, len(representable_values(fmt)) // 200)].astype(f32)])
    np.testing.assert_array_equal(quantize(x, fmt).values, x.astype(dtype).astype(f32))


def test_e8m0_codes_golden():
    """E8M0 is 2**(e - 127): code 127 = 1, 130 = 8, 0 = 2**-127; 0xFF is NaN."""
    np.testing.assert_array_equal(encode(f32([1.0, 8.0, 2.0**-127]), "e8m0"), [127, 130, 0])
    v = decode(np.array([127, 130, 0, 0xFF]), "e8m0")
    assert v[0] == 1.0 and v[1] == 8.0 and v[2] == f32(2.0**-127) and np.isnan(v[3])
