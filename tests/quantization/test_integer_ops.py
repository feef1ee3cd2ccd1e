"""Add/mul/average/rescale/float16 conversions and fused clamps follow the spec."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.errors import QuantizationError
from npuc.quantization.fixed_point import multiply_by_quantized_multiplier, quantize_multiplier
from npuc.quantization.integer_ops import (accumulator_dtype, activation_clamp, add_params, check_accumulator,
                                          from_float16, mul_multiplier, quantized_add, quantized_mean,
                                          quantized_mul, rescale, to_float16)
from npuc.quantization.schemes import asymmetric_params, dequantize, quantize, symmetric_params


def exact_R(acc: int, M: int, n: int) -> int:
    s = 31 + n
    return max(-(1 << 32), min(1 << 32, (acc * M + (1 << (s - 1))) >> s))


def test_add_matches_python_int_reference_and_float():
    qa, qb, qo = asymmetric_params(-1, 1), asymmetric_params(-2, 3), asymmetric_params(-3, 4)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, 500), rng.integers(0, 256, 500)
    p = add_params(qa.scale[0], qb.scale[0], qo.scale[0])
    got = quantized_add(a, qa.zero_point[0], b, qb.zero_point[0], p, qo.zero_point[0], 0, 255)
    for x, y, g in zip(a.tolist(), b.tolist(), got.tolist()):
        ra = exact_R((x - qa.zero_point[0]) << 20, p.M_a, p.n_a)
        rb = exact_R((y - qb.zero_point[0]) << 20, p.M_b, p.n_b)
        assert g == max(0, min(255, qo.zero_point[0] + exact_R(ra + rb, p.M_out, p.n_out)))
    real = dequantize(a.astype(np.uint8), qa, np.float64) + dequantize(b.astype(np.uint8), qb, np.float64)
    assert np.all(np.abs(dequantize(got.astype(np.uint8), qo, np.float64) - real) <= qo.scale[0] * 0.51)
    diff = quantized_add(a, qa.zero_point[0], b, qb.zero_point[0], p, qo.zero_point[0], 0, 255, subtract=True)
    real = dequantize(a.astype(np.uint8), qa, np.float64) - dequantize(b.astype(np.uint8), qb, np.float64)
    inside = np.abs(real) < 3
    assert np.all(np.abs(dequantize(diff.astype(np.uint8), qo, np.float64) - real)[inside] <= qo.scale[0] * 0.51)


def test_mul_and_mean():
    qa, qb, qo = symmetric_params(-2, 2), symmetric_params(-1, 1), symmetric_params(-2, 2)
    a, b = np.arange(-127, 128), np.arange(127, -128, -1)
    M, n = mul_multiplier(qa.scale[0], qb.scale[0], qo.scale[0])
    got = quantized_mul(a, 0, b, 0, M, n, 0, -128, 127)
    assert got.tolist() == [max(-128, min(127, exact_R(int(x) * int(y), M, n))) for x, y in zip(a, b)]
    qi, qm = asymmetric_params(0, 6), asymmetric_params(0, 3)
    x = np.random.default_rng(1).integers(0, 256, size=(2, 4, 7, 7))
    got = quantized_mean(x, qi, qm, (2, 3))
    assert got.shape == (2, 4, 1, 1)
    Mm, nm = quantize_multiplier(qi.scale[0] / (qm.scale[0] * 49))
    want = [[max(0, min(255, exact_R(int(v), int(Mm), int(nm)))) for v in row] for row in x.sum(axis=(2, 3))]
    assert got[:, :, 0, 0].tolist() == want


def test_rescale_identity_and_conversion():
    qp = asymmetric_params(-1, 1)
    q = np.arange(256)
    assert np.array_equal(rescale(q, qp, qp), q)
    q16 = symmetric_params(-1, 1, 16)
    up = rescale(q, qp, q16)
    real = dequantize(q.astype(np.uint8), qp, np.float64)
    err = np.abs(dequantize(up.astype(np.int16), q16, np.float64) - real)
    inside = np.abs(real) <= 1.0
    assert np.all(err[inside] <= q16.scale[0] / 2 + 1e-12)
    assert up[0] == -32768  # -1.0039 saturates
    # per-channel input to per-tensor output
    pc = symmetric_params(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), 8, axis=0)
    w = np.array([[127, -127], [64, 1]])
    out = rescale(w, pc, symmetric_params(-2, 2))
    assert out.tolist() == [[64, -63], [64, 1]]  # 63.5 -> 64, -63.5 -> -63 (half up)


def test_activation_clamp():
    qp = asymmetric_params(-2, 10)
    assert activation_clamp(qp, "none") == (0, 255)
    lo, hi = activation_clamp(qp, "relu6")
    assert lo == qp.zero_point[0] and hi == int(quantize(np.array(6.0), qp))
    with pytest.raises(QuantizationError):
        activation_clamp(qp, "sigmoid")


def test_float16_conversions():
    qp = asymmetric_params(-1, 1, 16)
    q = np.arange(0, 65536, 97).astype(np.uint16)
    h = to_float16(q, qp)
    assert h.dtype == np.float16
    assert np.array_equal(h, dequantize(q, qp, np.float64).astype(np.float16))
    back = from_float16(h, qp)
    assert np.all(np.abs(back.astype(np.int64) - q.astype(np.int64)) <= 16)


def test_accumulator_sizing():
    assert accumulator_dtype(8, 8) == np.int32 and accumulator_dtype(16, 8) == np.int64
    check_accumulator(3 * 3 * 512, 8, 8)
    check_accumulator(1 << 16, 16, 16)
    with pytest.raises(QuantizationError):
        check_accumulator(1 << 20, 8, 8)
    assert int(multiply_by_quantized_multiplier(np.int64(1 << 47), *quantize_multiplier(2.0 ** -30))) == 1 << 17
