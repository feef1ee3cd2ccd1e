"""Integer data movement, max pooling, Relu/Clip, Requantize and Concat.

Moving or selecting values commutes with the rescale ``zp_out + R(q - zp_in)`` because
R is monotonic non-decreasing, so the float kernel moves the integer codes and the
rescale (skipped when the encodings are equal) runs once on the result.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.backends.reference.integer_kernels.elementwise import rescale_to_output
from npuc.backends.reference.kernels import kernel_for
from npuc.quantization.integer_ops import interpolate_linear
from npuc.quantization.op_params import PASS_THROUGH_KINDS


def apply_rescale(q: np.ndarray, params: dict, out_dtype: np.dtype) -> np.ndarray:
    """The rescale of the rescale family, or a plain copy/cast when the encodings are equal."""
    if params["identity"][0]:
        return q.astype(out_dtype, copy=False)
    return rescale_to_output(q, params).astype(out_dtype)


def move(op, inputs, params, outs):
    """Run the op's (dtype-agnostic) float kernel on integer codes, then rescale."""
    if op.kind == "Pad":
        op = dataclasses.replace(op, attrs={**op.attrs, "value": int(params["pad_value"][0])})
    moved = kernel_for(op.kind)(op, list(inputs))
    return [apply_rescale(np.asarray(m), params, spec[1]) for m, spec in zip(moved, outs)]


for _kind in PASS_THROUGH_KINDS:
    if _kind != "Resize":
        integer_kernel(_kind)(move)


@integer_kernel("Resize")
def resize(op, inputs, params, outs):
    """Nearest: moved codes (then rescaled). Linear: fixed-point bilinear taps (docs/numerics.md section 8)."""
    if op.attrs["mode"] == "nearest":
        return move(op, inputs, params, outs)
    p = {k: params[k] for k in ("row_index", "row_weight", "col_index", "col_weight")}
    y = interpolate_linear(inputs[0], int(params["input_zero_point"][0]), frac_bits=int(params["frac_bits"][0]),
                           M=int(params["multiplier"][0]), n=int(params["shift"][0]),
                           zp_out=int(params["output_zero_point"][0]), qmin=int(params["clamp_min"][0]),
                           qmax=int(params["clamp_max"][0]),
                           rounding=int(params["rounding"][0]) if "rounding" in params else 0, **p)
    return [y.astype(outs[0][1])]


@integer_kernel("Relu", "Clip", "Requantize")
def rescale_clamp(op, inputs, params, outs):
    """``clamp(zp_out + R(q - zp_in), lo, hi)``; the activation is entirely in the clamp bounds."""
    return [rescale_to_output(inputs[0], params).astype(outs[0][1])]


@integer_kernel("Concat")
def concat(op, inputs, params, outs):
    """Each input rescaled to the output encoding (copied when equal), then concatenated."""
    dt = outs[0][1]
    parts = [q.astype(dt, copy=False) if params["identity"][i] else rescale_to_output(q, params, i).astype(dt)
             for i, q in enumerate(inputs)]
    return [np.concatenate(parts, axis=int(op.attrs["axis"]))]
