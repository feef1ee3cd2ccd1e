"""Quantize (float -> integer), Dequantize (integer -> float) and Cast between float types.

Quantize: ``clamp(round_half_even(x / scale) + zp, qmin, qmax)`` in float64 (schemes.quantize);
Dequantize: ``scale * (q - zp)`` in float64, rounded once to the target float type.
Requantize (integer -> integer) is in the rescale family (data_movement.py).
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.integer_kernels import integer_kernel


@integer_kernel("Quantize")
def quantize(op, inputs, params, outs):
    x = np.asarray(inputs[0], dtype=np.float64)
    q = np.rint(x / params["scale"][0]) + params["zero_point"][0]
    return [np.clip(q, params["qmin"][0], params["qmax"][0]).astype(outs[0][1])]


@integer_kernel("Dequantize")
def dequantize(op, inputs, params, outs):
    real = (inputs[0].astype(np.int64) - params["zero_point"][0]).astype(np.float64) * params["scale"][0]
    return [real.astype(outs[0][1])]


@integer_kernel("Cast")
def cast(op, inputs, params, outs):
    return [np.asarray(inputs[0]).astype(outs[0][1])]
