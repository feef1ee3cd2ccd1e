"""Data-type conversion ops of the quantized IR (docs/quantized-ir.md).

They are inserted by `insert_dtype_conversions` wherever a tensor crosses from
one data type (or integer encoding) to another, so every conversion is visible
in dumps and priced by the timing model. The encoding of an integer tensor is
its `Tensor.quant`; the ops carry only the target element type.
"""
from __future__ import annotations

from npuc.ir.dtypes import DType
from npuc.ir.op_spec import REQUIRED, OpSpec, register_op


def _infer_to(op, ins):
    to = op.attrs["to"]
    if not isinstance(to, DType):
        raise ValueError(f"attribute 'to' must be a DType, got {to!r}")
    return [(ins[0].shape, to)]


def _verify_quantize(op, ins):
    problems = []
    if not ins[0].dtype.is_float:
        problems.append(f"input '{ins[0].name}' is {ins[0].dtype}, Quantize takes float32/float16")
    if not op.attrs["to"].is_integer:
        problems.append(f"target type {op.attrs['to']} is not an integer type")
    return problems


def _verify_dequantize(op, ins):
    problems = []
    if not ins[0].dtype.is_integer:
        problems.append(f"input '{ins[0].name}' is {ins[0].dtype}, Dequantize takes an integer tensor")
    elif ins[0].quant is None:
        problems.append(f"input '{ins[0].name}' has no quantization parameters")
    if not op.attrs["to"].is_float:
        problems.append(f"target type {op.attrs['to']} is not float32/float16")
    return problems


def _verify_requantize(op, ins):
    problems = []
    if not ins[0].dtype.is_integer or ins[0].quant is None:
        problems.append(f"input '{ins[0].name}' must be an integer tensor with quantization parameters")
    if not op.attrs["to"].is_integer:
        problems.append(f"target type {op.attrs['to']} is not an integer type")
    return problems


register_op(OpSpec(
    "Quantize", ("x",), _infer_to, {"to": REQUIRED}, verify=_verify_quantize,
    doc="float32/float16 -> integer `to`: q = clamp(round(x / scale) + zero_point); encoding is the output's quant",
))
register_op(OpSpec(
    "Dequantize", ("x",), _infer_to, {"to": DType.FLOAT32}, verify=_verify_dequantize,
    doc="integer -> float32/float16: x = scale * (q - zero_point) with the input's quant",
))
register_op(OpSpec(
    "Requantize", ("x",), _infer_to, {"to": REQUIRED}, verify=_verify_requantize,
    doc="integer -> integer with the output's quant (other scale/zero point and/or width, e.g. i8 -> i16)",
))
