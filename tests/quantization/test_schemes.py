"""Schemes: round trips, zero exactly representable, per-channel axes, saturation, bias."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npuc.errors import QuantizationError
from npuc.quantization.bias import quantize_bias
from npuc.quantization.schemes import (MIN_RANGE_WIDTH, Scheme, adjust_range, asymmetric_params, dequantize,
                                      params_from_range, power_of_two_params, quantize, representable_range,
                                      symmetric_params)

# (scheme, bits, signed) for every supported combination
COMBOS = [(Scheme.ASYMMETRIC, b, s) for b in (8, 16) for s in (False, True)] + \
         [(Scheme.SYMMETRIC, b, s) for b in (4, 8, 16) for s in (True, False)] + \
         [(Scheme.POWER_OF_TWO, b, True) for b in (4, 8, 16)]


@pytest.mark.parametrize("scheme,bits,signed", COMBOS)
def test_round_trip_error_at_most_half_step(scheme, bits, signed):
    rng = np.random.default_rng(bits)
    x = rng.uniform(-3.0, 5.0, size=1000)
    qp = params_from_range(x.min(), x.max(), scheme, bits, signed)
    q = quantize(x, qp)
    assert q.dtype == qp.dtype.numpy
    lo, hi = representable_range(qp)
    inside = (x >= lo[0]) & (x <= hi[0])
    back = dequantize(q, qp, np.float64)
    assert np.all(np.abs(back[inside] - x[inside]) <= qp.scale[0] / 2 * (1 + 1e-9))
    # re-quantizing a dequantized value is the identity
    assert np.array_equal(quantize(back, qp), q)


@pytest.mark.parametrize("scheme,bits,signed", COMBOS)
@settings(max_examples=40, deadline=None)
@given(lo=st.floats(-1e4, 1e4), width=st.floats(0.0, 1e4))
def test_zero_is_exactly_representable(scheme, bits, signed, lo, width):
    hi = lo + width
    if scheme == Scheme.POWER_OF_TWO and not signed and lo < 0:
        return
    qp = params_from_range(lo, hi, scheme, bits, signed)
    q0 = quantize(np.array([0.0]), qp)
    assert dequantize(q0, qp, np.float64)[0] == 0.0
    rlo, rhi = representable_range(qp)
    assert rhi[0] - rlo[0] >= MIN_RANGE_WIDTH * (1 - 1e-9)


def test_asymmetric_nudge_matches_hand_values():
    qp = asymmetric_params(-1.0, 1.0, 8, signed=False)
    assert qp.zero_point == (128,)  # 127.5 rounds half to even
    assert qp.scale[0] == pytest.approx(2.0 / 255)
    qp = asymmetric_params(0.5, 2.0, 8, signed=False)  # widened to include 0
    assert qp.zero_point == (0,) and qp.scale[0] == pytest.approx(2.0 / 255)


def test_symmetric_uses_narrow_range_and_power_of_two_scales():
    qp = symmetric_params(-1.0, 3.0, 8)
    assert qp.scale[0] == pytest.approx(3.0 / 127) and qp.zero_point == (0,)
    assert quantize(np.array([-3.0, 3.0]), qp).tolist() == [-127, 127]
    p2 = power_of_two_params(-1.0, 1.0, 8)
    assert p2.scale == (2.0 ** -6,)
    assert power_of_two_params(0.0, 127 * 2.0 ** -3, 8).scale == (2.0 ** -3,)
    assert power_of_two_params(-128 * 2.0 ** -3, 0.0, 8).scale == (2.0 ** -3,)
    with pytest.raises(QuantizationError):
        power_of_two_params(-1.0, 1.0, 8, signed=False)


def test_minimum_width_and_degenerate_ranges():
    lo, hi = adjust_range(np.array([0.0, 2.0, -3e-6]), np.array([0.0, 2.0, 0.0]))
    assert lo.tolist() == [0.0, 0.0, -3e-6 - (MIN_RANGE_WIDTH - 3e-6)]
    assert hi.tolist() == [MIN_RANGE_WIDTH, 2.0, 0.0]
    qp = asymmetric_params(0.0, 0.0)
    assert qp.scale[0] == pytest.approx(MIN_RANGE_WIDTH / 255)
    with pytest.raises(QuantizationError):
        asymmetric_params(1.0, 0.0)
    with pytest.raises(QuantizationError):
        asymmetric_params(0.0, float("inf"))


def test_saturation():
    qp = asymmetric_params(-1.0, 1.0, 8, signed=True)
    q = quantize(np.array([-100.0, 100.0, -np.inf, np.inf]), qp)
    assert q.tolist() == [-128, 127, -128, 127]
    q16 = quantize(np.array([1e9, -1e9]), symmetric_params(-1, 1, 16))
    assert q16.tolist() == [32767, -32768]
    with pytest.raises(QuantizationError):
        quantize(np.array([np.nan]), qp)


@pytest.mark.parametrize("axis", [0, 1, -1, 3])
@pytest.mark.parametrize("scheme", list(Scheme))
def test_per_channel_axes(axis, scheme):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 3, 5, 6)) * np.array([0.1, 1.0, 3.0, 0.01, 7.0, 2.0]).reshape(1, 1, 1, 6)
    w = np.moveaxis(w, 3, axis)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    qp = params_from_range(moved.min(1), moved.max(1), scheme, 8, True, axis=axis)
    assert qp.axis == axis and len(qp.scale) == w.shape[axis]
    q = quantize(w, qp)
    back = dequantize(q, qp, np.float64)
    step = qp.scale_array(w.ndim)
    assert np.all(np.abs(back - w) <= step / 2 * (1 + 1e-9) + 0.0)
    wrong = list(w.shape)
    wrong[axis] += 1
    with pytest.raises(QuantizationError):
        quantize(np.zeros(wrong), qp)


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_bias_single_word(bits):
    bias = np.array([0.1, -3.0, 7.5, 0.0])
    qb = quantize_bias(bias, 0.02, [0.001, 0.002, 0.0005, 0.01], bits=bits)
    assert qb.words[0].dtype == {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    assert np.array_equal(qb.values, qb.words[0].astype(np.int64) << qb.shift)
    step = qb.scale * 2.0 ** qb.shift
    assert np.all(np.abs(qb.dequantize() - bias) <= step / 2 * (1 + 1e-9))
    if bits == 32:
        assert qb.shift == 0 and qb.values.tolist() == [5000, -75000, 750000, 0]


def test_bias_double_scale_is_exact_31_bit():
    bias = np.array([0.1, -3.0, 7.5, -1e9])
    qb = quantize_bias(bias, 0.02, [0.001, 0.002, 0.0005, 0.01], bits=16, mode="double_scale")
    hi, lo = (w.astype(np.int64) for w in qb.words)
    assert qb.shift == 15 and np.all((lo >= 0) & (lo < 1 << 15))
    assert np.array_equal(hi * (1 << 15) + lo, qb.values)
    assert qb.values[:3].tolist() == [5000, -75000, 750000]
    assert qb.values[3] == -(1 << 30)  # saturated
    with pytest.raises(QuantizationError):
        quantize_bias(bias, 0.02, [0.001] * 4, bits=32, mode="double_scale")
