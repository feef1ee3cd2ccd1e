"""Integer average pooling and mean/sum reductions.

``acc = sum over the window of (q - zp_in)`` (int64; padding adds 0, the centered zero point),
``q_out = clamp(zp_out + R(acc, M, n))`` with M, n for ``s_in / (s_out * count)``: one multiplier
per output position when border windows count fewer inputs (the pooling divisor is folded into
the multiplier, no integer division).

``rounding = 1`` (an AveragePool imported from an int8 TFLite model, docs/numerics.md section 8):
``q_out = clamp(rounding_divide_away(zp_out * count + R(acc, M, n), count))`` with M, n for
``s_in / s_out`` and ``count`` the parameter ``divisor``: TFLite's ``(sum + count/2) / count``
on the output codes, ties away from zero.

``rounding = 2`` (a ReduceMean imported from an int8 TFLite model): TFLite's MEAN kernels,
``q_out = clamp(zp_out + tflite_multiply(sat32(acc + sum_offset), M, n))``.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.conv_kernels import pad_spatial
from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.fixed_point import multiply_by_quantized_multiplier, requantize


def rounding_divide_away(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b rounded to nearest, ties away from zero, for b > 0: ``sign(a) * ((|a| + b // 2) // b)``."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    mag = (np.abs(a) + b // 2) // b
    return np.where(a < 0, -mag, mag)


_I32 = (-(1 << 31), (1 << 31) - 1)


def tflite_multiply(x: np.ndarray, M: int, n: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier on int32, two roundings (docs/numerics.md section 8):
    ``rounding_divide_by_pot(srdhm(sat32(x * 2**max(-n, 0)), M), max(n, 0))``, x saturated to int32;
    srdhm rounds ties towards +inf, rounding_divide_by_pot away from zero."""
    left, right = max(-int(n), 0), max(int(n), 0)
    a = np.clip(np.clip(np.asarray(x, np.int64), *_I32) << left, *_I32)
    ab = a * np.int64(M)
    v = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = np.where(v >= 0, v >> 31, -((-v) >> 31))  # C division: truncates towards zero
    mask = np.int64((1 << right) - 1)
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def _finish(acc: np.ndarray, params: dict, out_dtype: np.dtype) -> np.ndarray:
    zo, lo, hi = params["output_zero_point"][0], params["clamp_min"][0], params["clamp_max"][0]
    if int(params.get("rounding", [0])[0]) == 2:
        t = np.asarray(acc, np.int64) + params["sum_offset"][0]
        return np.clip(zo + tflite_multiply(t, params["multiplier"][0], params["shift"][0]), lo, hi).astype(out_dtype)
    if int(params.get("rounding", [0])[0]) == 1:
        count = np.asarray(params["divisor"], np.int64)  # [1] or [OH, OW]: broadcasts over (N, C, OH, OW)
        t = multiply_by_quantized_multiplier(np.asarray(acc, np.int64), params["multiplier"], params["shift"])
        return np.clip(rounding_divide_away(zo * count + t, count), lo, hi).astype(out_dtype)
    return requantize(acc, params["multiplier"], params["shift"], zo, lo, hi).astype(out_dtype)


@integer_kernel("AveragePool")
def average_pool(op, inputs, params, outs):
    x = inputs[0].astype(np.int64) - params["input_zero_point"][0]
    _, _, h, w = x.shape
    (_, _, oh, ow), out_dtype = outs[0]
    kh, kw = op.attrs["kernel"]
    sh, sw = op.attrs["strides"]
    pt, pl, pb, pr = op.attrs["pads"]
    need_h, need_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    xp = pad_spatial(x, (pt, pl, max(pb, need_h - h - pt), max(pr, need_w - w - pl)))
    acc = np.zeros(x.shape[:2] + (oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += xp[:, :, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
    return [_finish(acc, params, out_dtype)]


@integer_kernel("GlobalAveragePool")
def global_average_pool(op, inputs, params, outs):
    x = inputs[0].astype(np.int64) - params["input_zero_point"][0]
    acc = x.sum(axis=tuple(range(2, x.ndim)), keepdims=True)
    return [_finish(acc, params, outs[0][1])]


@integer_kernel("ReduceMean", "ReduceSum")
def reduce_mean_sum(op, inputs, params, outs):
    x = inputs[0].astype(np.int64) - params["input_zero_point"][0]
    axes = op.attrs["axes"]
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
    acc = x.sum(axis=axes, keepdims=bool(op.attrs["keepdims"]))
    # the parameters are 1-element arrays: a full reduction to a scalar must keep the declared shape
    return [_finish(np.asarray(acc), params, outs[0][1]).reshape(outs[0][0])]
