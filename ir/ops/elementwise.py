"""Elementwise ops: binary arithmetic with numpy broadcasting, and unary activations."""
from __future__ import annotations

from npuc.ir.dtypes import DType
from npuc.ir.op_spec import OpSpec, register_op
from npuc.ir.ops._infer import broadcast, same_as_input


def _infer_binary(op, ins):
    a, b = ins[0], ins[1]
    return [(broadcast(a.shape, b.shape), a.dtype if a.dtype.is_float or not b.dtype.is_float else b.dtype)]


def _infer_compare(op, ins):
    return [(broadcast(ins[0].shape, ins[1].shape), DType.BOOL)]


def _infer_where(op, ins):
    return [(broadcast(ins[0].shape, ins[1].shape, ins[2].shape), ins[1].dtype)]


BINARY_KINDS = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min")
for _kind in BINARY_KINDS:
    register_op(OpSpec(_kind, ("a", "b"), _infer_binary, doc=f"elementwise {_kind.lower()} with numpy broadcasting"))
for _kind in ("Equal", "Less", "Greater"):
    register_op(OpSpec(_kind, ("a", "b"), _infer_compare, doc=f"elementwise {_kind.lower()} comparison (bool)"))
register_op(OpSpec("Where", ("condition", "a", "b"), _infer_where, doc="select a where condition else b"))

#: unary kind -> (attrs, doc)
UNARY_KINDS = {
    "Relu": ({}, "max(x, 0)"),
    "Clip": ({"min": None, "max": None}, "clamp to [min, max] (None = unbounded); Relu6 is Clip(0, 6)"),
    "LeakyRelu": ({"alpha": 0.01}, "x if x >= 0 else alpha * x"),
    "Sigmoid": ({}, "1 / (1 + exp(-x))"),
    "HardSigmoid": ({"alpha": 0.2, "beta": 0.5}, "clip(alpha * x + beta, 0, 1)"),
    "HardSwish": ({}, "x * clip(x / 6 + 0.5, 0, 1)  (x * relu6(x + 3) / 6)"),
    "SiLU": ({}, "x * sigmoid(x)"),
    "Tanh": ({}, "tanh(x)"),
    "Exp": ({}, "exp(x)"),
    "Log": ({}, "natural log"),
    "Sqrt": ({}, "square root"),
    "Reciprocal": ({}, "1 / x"),
    "Neg": ({}, "-x"),
    "Abs": ({}, "|x|"),
    "Erf": ({}, "error function"),
    "Floor": ({}, "floor"),
    "Ceil": ({}, "ceil"),
    "Identity": ({}, "copy (removed by remove_identity)"),
    "Dropout": ({}, "identity at inference (removed by remove_identity)"),
}
for _kind, (_attrs, _doc) in UNARY_KINDS.items():
    register_op(OpSpec(_kind, ("x",), same_as_input, dict(_attrs), doc=_doc))


def _infer_prelu(op, ins):
    x, slope = ins
    broadcast(x.shape, slope.shape)
    return [(x.shape, x.dtype)]


register_op(OpSpec("PRelu", ("x", "slope"), _infer_prelu, doc="x if x >= 0 else slope * x (slope broadcasts)"))


def _infer_cast(op, ins):
    return [(ins[0].shape, op.attrs["to"])]


register_op(OpSpec("Cast", ("x",), _infer_cast, {"to": None}, doc="convert element type (attr `to` is a DType)"))
