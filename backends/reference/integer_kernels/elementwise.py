"""Integer Add/Sub (TFLite-style rescaled sum), Mul, Div by a scalar constant, Max/Min, PRelu."""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.fixed_point import requantize
from npuc.quantization.integer_ops import AddParams, quantized_add, quantized_mul, quantized_prelu


def rescale_to_output(q: np.ndarray, params: dict, i: int | None = None) -> np.ndarray:
    """``clamp(zp_out + R(q - zp_in, M, n))`` with the op's rescale constants (input i of a select op)."""
    if i is None:
        zp, M, n = params["input_zero_point"][0], params["multiplier"][0], params["shift"][0]
    else:
        zp, M, n = params["input_zero_point"][i], params["input_multiplier"][i], params["input_shift"][i]
    return requantize(q.astype(np.int64) - zp, M, n, params["output_zero_point"][0],
                      params["clamp_min"][0], params["clamp_max"][0])


@integer_kernel("Add", "Sub")
def add(op, inputs, params, outs):
    a, b = inputs
    p = AddParams(int(params["left_shift"][0]), int(params["input_multiplier"][0]), int(params["input_shift"][0]),
                  int(params["input_multiplier"][1]), int(params["input_shift"][1]),
                  int(params["multiplier"][0]), int(params["shift"][0]))
    zp = params["input_zero_point"]
    y = quantized_add(a, int(zp[0]), b, int(zp[1]), p, int(params["output_zero_point"][0]),
                      int(params["clamp_min"][0]), int(params["clamp_max"][0]), subtract=op.kind == "Sub")
    return [y.astype(outs[0][1])]


@integer_kernel("Mul")
def mul(op, inputs, params, outs):
    a, b = inputs
    zp = params["input_zero_point"]
    y = quantized_mul(a, int(zp[0]), b, int(zp[1]), int(params["multiplier"][0]), int(params["shift"][0]),
                      int(params["output_zero_point"][0]), int(params["clamp_min"][0]), int(params["clamp_max"][0]))
    return [y.astype(outs[0][1])]


@integer_kernel("Div")
def div(op, inputs, params, outs):
    """Division by a positive scalar constant: a rescale by s_a / (b * s_out)."""
    return [rescale_to_output(inputs[0], params).astype(outs[0][1])]


@integer_kernel("Max", "Min")
def max_min(op, inputs, params, outs):
    """Both inputs rescaled to the output encoding, then the elementwise max/min (monotonic: exact)."""
    ra = rescale_to_output(inputs[0], params, 0)
    rb = rescale_to_output(inputs[1], params, 1)
    fn = np.maximum if op.kind == "Max" else np.minimum
    return [fn(ra, rb).astype(outs[0][1])]


@integer_kernel("PRelu")
def prelu(op, inputs, params, outs):
    """Two-branch requantization: ``s_in/s_out`` where ``q >= zp_in``, ``a s_in/s_out`` per slope value below."""
    y = quantized_prelu(inputs[0], int(params["input_zero_point"][0]), int(params["multiplier"][0]),
                        int(params["shift"][0]), params["negative_multiplier"], params["negative_shift"],
                        params["negative_sign"], int(params["output_zero_point"][0]),
                        int(params["clamp_min"][0]), int(params["clamp_max"][0]))
    return [y.astype(outs[0][1])]
