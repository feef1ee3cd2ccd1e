"""Integer average pooling and mean/sum reductions.

``acc = sum over the window of (q - zp_in)`` (int64; padding adds 0, the centered zero point),
``q_out = clamp(zp_out + R(acc, M, n))`` with M, n for ``s_in / (s_out * count)``: one multiplier
per output position when border windows count fewer inputs (the pooling divisor is folded into
the multiplier, no integer division).
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.conv_kernels import pad_spatial
from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.fixed_point import requantize


def _finish(acc: np.ndarray, params: dict, out_dtype: np.dtype) -> np.ndarray:
    return requantize(acc, params["multiplier"], params["shift"], params["output_zero_point"][0],
                      params["clamp_min"][0], params["clamp_max"][0]).astype(out_dtype)


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
