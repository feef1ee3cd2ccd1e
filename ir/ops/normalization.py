"""Normalisations and softmax."""
from __future__ import annotations

from npuc.ir.op_spec import OpSpec, register_op
from npuc.ir.ops._infer import norm_axis, same_as_input


def _infer_batchnorm(op, ins):
    x = ins[0]
    if len(x.shape) < 2:
        raise ValueError(f"BatchNormalization needs rank >= 2, got {x.shape}")
    for t in ins[1:]:
        if t.shape != (x.shape[1],):
            raise ValueError(f"parameter '{t.name}' has shape {t.shape}, expected ({x.shape[1]},)")
    return [(x.shape, x.dtype)]


def _infer_softmax(op, ins):
    norm_axis(op.attrs["axis"], len(ins[0].shape))
    return same_as_input(op, ins)


register_op(OpSpec(
    "BatchNormalization", ("x", "scale", "bias", "mean", "var"), _infer_batchnorm, {"epsilon": 1e-5},
    doc="inference batch norm over axis 1 (folded by fold_batchnorm)",
))
register_op(OpSpec("Softmax", ("x",), _infer_softmax, {"axis": -1}, doc="softmax along one axis"))
register_op(OpSpec("LogSoftmax", ("x",), _infer_softmax, {"axis": -1}, doc="log softmax along one axis"))
