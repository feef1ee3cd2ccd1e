"""LUT activations within 1 LSB of float math; fixed-point softmax; weight range modes."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.errors import QuantizationError
from npuc.quantization.lut import (LUT_BUILDERS, apply_lut, build_lut, hard_sigmoid, hard_swish, leaky_relu_lut,
                                   lut_inputs, sigmoid, silu)
from npuc.quantization.schemes import (asymmetric_params, dequantize, quantize, representable_range,
                                      symmetric_params)
from npuc.quantization.softmax import EXP_BITS, exp_table, softmax, softmax_output_params
from npuc.quantization.weights import weight_range

FLOAT_FNS = {
    "sigmoid": (sigmoid, (0.0, 1.0)),
    "tanh": (np.tanh, (-1.0, 1.0)),
    "silu": (silu, (-0.3, 8.0)),
    "hard_swish": (hard_swish, (-0.4, 8.0)),
    "hard_sigmoid": (hard_sigmoid, (0.0, 1.0)),
    "exp": (np.exp, (0.0, 50.0)),
}


@pytest.mark.parametrize("name", sorted(FLOAT_FNS))
@pytest.mark.parametrize("bits", [8, 16])
def test_lut_within_one_lsb_of_float(name, bits):
    fn, (olo, ohi) = FLOAT_FNS[name]
    qp_in = asymmetric_params(-8.0, 3.9, bits, signed=bits == 16)
    qp_out = asymmetric_params(olo, ohi, bits, signed=bits == 16)
    table = LUT_BUILDERS[name](qp_in, qp_out)
    assert table.shape == (1 << bits,) and table.dtype == qp_out.dtype.numpy
    x = lut_inputs(qp_in)
    lo, hi = representable_range(qp_out)
    y = np.clip(fn(x), lo[0], hi[0])
    err = np.abs(dequantize(table, qp_out, np.float64) - y)
    assert err.max() <= qp_out.scale[0] * 1.0
    # applying the table to quantized inputs == quantizing float outputs of dequantized inputs
    q = quantize(np.linspace(-9, 5, 301), qp_in)
    assert np.array_equal(apply_lut(q, table, qp_in), quantize(fn(dequantize(q, qp_in, np.float64)), qp_out))


def test_leaky_relu_and_generic_callable():
    qp = symmetric_params(-4, 4, 8)
    t = leaky_relu_lut(qp, qp, alpha=0.25)
    assert t[qp.zero_point[0] - qp.qmin] == 0
    assert t[-1] == 127 and t[0] == round(-128 * 0.25)
    t2 = build_lut(lambda x: x * x, qp, asymmetric_params(0, 16))
    assert int(t2[0]) == 255
    with pytest.raises(QuantizationError):
        build_lut(lambda x: x[:3], qp, qp)
    with pytest.raises(QuantizationError):
        apply_lut(np.array([0]), t[:10], qp)


@pytest.mark.parametrize("bits_in,bits_out,signed", [(8, 8, False), (8, 8, True), (16, 16, True), (16, 8, False)])
def test_softmax_fixed_point(bits_in, bits_out, signed):
    qp_in = symmetric_params(-10, 10, bits_in)
    qp_out = softmax_output_params(bits_out, signed)
    table = exp_table(qp_in)
    assert table[0] == 1 << EXP_BITS and table.shape == (1 << bits_in,)
    rng = np.random.default_rng(bits_in + bits_out)
    x = rng.normal(size=(16, 10)) * 3
    q = quantize(x, qp_in)
    got = softmax(q, qp_in, table, qp_out, axis=-1)
    xr = dequantize(q, qp_in, np.float64)
    ref = np.exp(xr - xr.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    err = np.abs(dequantize(got.astype(qp_out.dtype.numpy), qp_out, np.float64) - np.minimum(ref, qp_out.scale[0] * (qp_out.qmax - qp_out.zero_point[0])))
    assert err.max() <= qp_out.scale[0]
    # exact spec: integer division of table entries by their sum, half up
    d = q.astype(np.int64).max(-1, keepdims=True) - q
    e = table[d]
    want = np.clip(qp_out.zero_point[0] + (2 * (e << bits_out) + e.sum(-1, keepdims=True)) // (2 * e.sum(-1, keepdims=True)),
                   qp_out.qmin, qp_out.qmax)
    assert np.array_equal(got, want)
    with pytest.raises(QuantizationError):
        softmax(q, qp_in, table, asymmetric_params(0, 1, bits_out), axis=-1)


def test_weight_range_modes():
    rng = np.random.default_rng(4)
    w = rng.laplace(size=(6, 3, 3, 32)) * np.array([0.1, 1, 2, 0.5, 3, 0.01])[:, None, None, None]
    w[0, 0, 0, 0] = 5.0  # one outlier weight in channel 0
    lo, hi = weight_range(w, "minmax", axis=0)
    assert np.allclose(hi, w.reshape(6, -1).max(1)) and np.allclose(lo, w.reshape(6, -1).min(1))
    mlo, mhi = weight_range(w, "mse", 8, axis=0)
    assert np.all(mhi <= hi) and np.all(mlo >= lo)
    qp_mm = symmetric_params(lo, hi, 4, axis=0)
    qp_mse = symmetric_params(*weight_range(w, "mse", 4, axis=0), 4, axis=0)
    mse = [np.mean((dequantize(quantize(w, qp), qp, np.float64) - w) ** 2) for qp in (qp_mm, qp_mse)]
    assert mse[1] < mse[0]
    alo, ahi = weight_range(w, "adjusted", 8, signed=False, symmetric=False, axis=0)
    assert np.all(alo <= np.minimum(lo, 0)) and np.all(ahi >= np.maximum(hi, 0))
    qp = asymmetric_params(alo, ahi, 8, signed=False, axis=0)
    back = dequantize(quantize(w, qp), qp, np.float64)
    assert np.all(np.abs(back - w) <= qp.scale_array(4) / 2 * (1 + 1e-9))  # nothing clipped by the nudge
    assert weight_range(w, "adjusted", symmetric=True) == weight_range(w, "minmax", symmetric=True)
    with pytest.raises(QuantizationError):
        weight_range(w, "kl")
