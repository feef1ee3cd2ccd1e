"""Integer softmax along the last axis (docs/numerics.md, "Softmax").

``d = max(q) - q``, ``e = exp_table[d]`` (Q20), ``S = sum e`` (int64),
``q_out = clamp(zp_out + rounding_divide(e << bits_out, S))``; the input zero point cancels.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.fixed_point import rounding_divide, saturate


@integer_kernel("Softmax")
def softmax(op, inputs, params, outs):
    q = inputs[0].astype(np.int64)
    axis = int(op.attrs["axis"])
    d = np.max(q, axis=axis, keepdims=True) - q
    e = params["exp_table"][d]
    s = np.sum(e, axis=axis, keepdims=True)
    y = rounding_divide(np.left_shift(e, params["output_bits"][0]), s)
    return [saturate(y + params["output_zero_point"][0], params["clamp_min"][0], params["clamp_max"][0])
            .astype(outs[0][1])]
