"""Chunked fp16 accumulation emulation of a matrix product."""

import numpy as np
import pytest

from accelsim.numerics.quant import matmul_accumulate, quantize_fp4r4, quantize_int


def test_chunking_changes_fp16_rounding_by_hand():
    """a = [1,1,1,1], b = [2048,1,1,1]: the fp16 ulp at 2048 is 2.
    chunk 1: 2048+1 = 2049 -> 2048 (tie to even), again 2048, again 2048;
    chunk 2: fp16(2048+1) = 2048, fp16(1+1) = 2, 2048+2 = 2050;
    chunk 4: fp16(2051) = 2052 (tie between 2050 and 2052 -> even mantissa);  fp32: 2051."""
    a = np.ones((1, 4), dtype=np.float32)
    b = np.array([[2048.0], [1.0], [1.0], [1.0]], dtype=np.float32)
    assert matmul_accumulate(a, b, "fp16", chunk=1)[0, 0] == 2048
    assert matmul_accumulate(a, b, "fp16", chunk=2)[0, 0] == 2050
    assert matmul_accumulate(a, b, "fp16", chunk=4)[0, 0] == 2052
    assert matmul_accumulate(a, b, "fp32")[0, 0] == 2051


def test_fp16_overflows_to_inf():
    a = np.ones((1, 2), dtype=np.float32)
    b = np.array([[60000.0], [60000.0]], dtype=np.float32)
    assert matmul_accumulate(a, b, "fp16", chunk=1)[0, 0] == np.inf


def reference_fp16(a, b, chunk):
    """Slow reference: exact chunk sums (float64), rounded to numpy float16, float16 additions."""
    acc = None
    for k0 in range(0, a.shape[1], chunk):
        part = (a[:, k0:k0 + chunk].astype(np.float64) @ b[k0:k0 + chunk].astype(np.float64))
        part = part.astype(np.float16)
        acc = part if acc is None else (acc + part).astype(np.float16)
    return acc.astype(np.float32)


@pytest.mark.parametrize("chunk", [1, 7, 64, 512])
def test_fp16_chunked_matches_slow_reference_on_4bit_operands(chunk):
    """int4 activations (power-of-two scale) x fp4r4 gradients: products and chunk sums are
    exact in float32, so the result is bit-exact whatever the BLAS summation order."""
    rng = np.random.default_rng(chunk)
    a = quantize_int(rng.standard_normal((9, 300)), 0.25, "int4").values
    b = quantize_fp4r4(rng.standard_normal((300, 5)) * 0.1, 0.5).values
    got = matmul_accumulate(a, b, "fp16", chunk=chunk)
    np.testing.assert_array_equal(got, reference_fp16(a, b, chunk))
    assert got.dtype == np.float32 and got.shape == (9, 5)


def test_codes_times_scales_is_the_hardware_order():
    """Accumulating int4 codes and applying the scale afterwards equals accumulating the values
    when the scale is a power of two."""
    rng = np.random.default_rng(3)
    qa = quantize_int(rng.standard_normal((4, 200)), 0.125, "int4")
    b = quantize_fp4r4(rng.standard_normal((200, 3)), 2.0).values
    via_codes = qa.scale * matmul_accumulate(qa.codes, b, "fp16", chunk=32)
    np.testing.assert_array_equal(via_codes, matmul_accumulate(qa.values, b, "fp16", chunk=32))


def test_fp32_is_plain_matmul_and_batched_shapes_work():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3, 10)).astype(np.float32)
    b = rng.standard_normal((10, 4)).astype(np.float32)
    np.testing.assert_array_equal(matmul_accumulate(a, b), a @ b)
    out = matmul_accumulate(a, b, "fp16", chunk=3)
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out, a @ b, rtol=0, atol=1e-2)


def test_bad_arguments():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match="acc_format must be one of fp32, fp16, int32, int16, got 'int4'"):
        matmul_accumulate(a, a.T, "int4")
    with pytest.raises(ValueError, match=r"cannot multiply shapes \(2, 3\) and \(2, 3\)"):
        matmul_accumulate(a, a)
    with pytest.raises(ValueError, match="chunk must be a positive integer, got 0"):
        matmul_accumulate(a, a.T, "fp16", chunk=0)


def test_int32_accumulation_is_exact_beyond_float32():
    """int4 codes x fp4r4 integer grid (values / smallest level, 1..4**6): K = 8000 products up
    to 8*4096 = 2**15 sum past 2**24, where float32 would round; int32 stays exact."""
    rng = np.random.default_rng(5)
    a = quantize_int(rng.standard_normal((6, 8000)) + 3, 0.5, "int4").codes   # mostly 5..7
    g = quantize_fp4r4(4.0 ** rng.uniform(-6, 0, (8000, 4)), 1.0)             # every level
    b = g.values / np.float32(g.scale * 4.0**-6)          # integers 4**(c-1)
    got = matmul_accumulate(a, b, "int32")
    expected = a.astype(np.int64) @ b.astype(np.int64)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
    assert np.abs(expected).max() > 2**24                  # the case float32 cannot hold
    assert not np.array_equal(a.astype(np.float32) @ b, expected)


def test_int16_saturates():
    """40 x 1000 = 40000 > 32767: the int16 register clamps; int32 does not."""
    a = np.ones((1, 40), dtype=np.float32)
    b = np.full((40, 2), 1000.0, dtype=np.float32)
    b[:, 1] = -1000.0
    np.testing.assert_array_equal(matmul_accumulate(a, b, "int16"), [[32767, -32768]])
    np.testing.assert_array_equal(matmul_accumulate(a, b, "int32"), [[40000, -40000]])


def test_int_accumulation_needs_integer_operands():
    with pytest.raises(ValueError, match="int32 accumulation needs integer-valued operands"):
        matmul_accumulate(np.full((1, 2), 0.5), np.ones((2, 1)), "int32")
