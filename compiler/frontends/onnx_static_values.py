"""Import-time numpy evaluation of the ONNX nodes that compute static values.

Exporters compute Reshape targets, Slice bounds, Resize sizes, ... with small
subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape). Once input shapes
are fixed these are constants: the importer evaluates them here, with numpy,
and they never reach the IR. `Shape`/`Size` only look at their input's shape,
so the importer may pass a zero-cost broadcast array for an activation.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from npuc.errors import ModelImportError
from npuc.frontends.onnx_node import NodeView, attr_or_input, axes_arg, dtype_from_onnx, normalize_axes
from npuc.frontends.onnx_shape_rules import (flatten_shape, pad_args, reshape_target, slice_args, split_sizes,
                                             squeeze_shape, unsqueeze_shape)

Arrays = list["np.ndarray | None"]
Evaluator = Callable[[NodeView, Arrays], list[np.ndarray]]

#: ONNX op type -> numpy evaluator returning every output.
STATIC_EVALUATORS: dict[str, Evaluator] = {}

#: ops whose output depends only on their input's *shape* (their input may be an activation)
SHAPE_ONLY_OPS = frozenset({"Shape", "Size"})


def _register(*op_types: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        for t in op_types:
            STATIC_EVALUATORS[t] = fn
        return fn
    return deco


def evaluate(node: NodeView, inputs: Arrays) -> list[np.ndarray]:
    """Outputs of `node` on static inputs; numpy failures become a ModelImportError naming the node."""
    fn = STATIC_EVALUATORS[node.op_type]
    try:
        with np.errstate(all="ignore"):
            return [np.asarray(v) for v in fn(node, inputs)]
    except ModelImportError:
        raise
    except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
        shapes = [None if a is None else tuple(a.shape) for a in inputs]
        raise node.error(f"cannot be evaluated at import time on inputs of shapes {shapes}: {exc}") from None


def _getter(inputs: Arrays):
    return lambda i: inputs[i] if i < len(inputs) else None


@_register("Constant")
def _constant(node, ins):
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        value = node.attr(key)
        if value is not None:
            return [np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)]
    kinds = [a.name for a in node.proto.attribute]
    raise node.error(f"constant of kind {kinds or 'none'} is not supported (numeric tensors only)")


@_register("Shape")
def _shape(node, ins):
    shape = np.array(ins[0].shape, dtype=np.int64)
    start, end = int(node.attr("start", 0)), node.attr("end")
    return [shape[slice(start, None if end is None else int(end))]]


@_register("Size")
def _size(node, ins):
    return [np.array(ins[0].size, dtype=np.int64)]


@_register("Identity", "Dropout")
def _identity(node, ins):
    return [ins[0]]


@_register("Cast")
def _cast(node, ins):
    return [ins[0].astype(dtype_from_onnx(int(node.attr("to")), node.describe()).numpy)]


@_register("Gather")
def _gather(node, ins):
    axis = normalize_axes([int(node.attr("axis", 0))], ins[0].ndim, node)[0]
    return [np.take(ins[0], ins[1].astype(np.int64), axis=axis)]


@_register("Concat")
def _concat(node, ins):
    arrays = [a for a in ins if a is not None]
    axis = int(node.attr("axis"))
    if all(a.ndim == 0 for a in arrays):
        arrays = [a.reshape(1) for a in arrays]
    return [np.concatenate(arrays, axis=axis)]


@_register("Unsqueeze")
def _unsqueeze(node, ins):
    return [ins[0].reshape(unsqueeze_shape(node, ins[0].shape, _getter(ins)))]


@_register("Squeeze")
def _squeeze(node, ins):
    return [ins[0].reshape(squeeze_shape(node, ins[0].shape, _getter(ins)))]


@_register("Reshape")
def _reshape(node, ins):
    return [ins[0].reshape(reshape_target(node, ins[0].shape, ins[1]))]


@_register("Flatten")
def _flatten(node, ins):
    return [ins[0].reshape(flatten_shape(node, ins[0].shape))]


@_register("Transpose")
def _transpose(node, ins):
    perm = node.ints("perm")
    return [np.transpose(ins[0], perm)]


@_register("Slice")
def _slice(node, ins):
    starts, ends, axes, steps = slice_args(node, ins[0].shape, _getter(ins))
    index = [slice(None)] * ins[0].ndim
    for s, e, a, p in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, p)
    return [ins[0][tuple(index)]]


@_register("Split")
def _split(node, ins):
    axis, sizes = split_sizes(node, ins[0].shape, _getter(ins))
    return np.split(ins[0], np.cumsum(sizes)[:-1], axis=axis)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C semantics, as ONNX runtimes do)."""
    q = np.abs(a) // np.abs(b)
    return (q * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))


_BINARY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
}


@_register(*_BINARY)
def _binary(node, ins):
    out = _BINARY[node.op_type](ins[0], ins[1])
    if node.op_type == "Pow":
        out = out.astype(ins[0].dtype)
    return [out]


@_register("Div")
def _div(node, ins):
    a, b = ins
    if np.issubdtype(a.dtype, np.integer):
        return [_int_div(a, b)]
    return [(a / b).astype(a.dtype)]


@_register("Mod")
def _mod(node, ins):
    a, b = ins
    return [np.fmod(a, b) if int(node.attr("fmod", 0)) else np.mod(a, b)]


_VARIADIC = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add}


@_register(*_VARIADIC)
def _variadic(node, ins):
    out = ins[0]
    for a in ins[1:]:
        out = _VARIADIC[node.op_type](out, a)
    return [out]


_UNARY = {
    "Neg": np.negative, "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt,
    "Exp": np.exp, "Log": np.log, "Reciprocal": np.reciprocal, "Not": np.logical_not,
    "Relu": lambda x: np.maximum(x, 0), "Sign": np.sign, "Round": np.round,
}


@_register(*_UNARY)
def _unary(node, ins):
    return [np.asarray(_UNARY[node.op_type](ins[0])).astype(ins[0].dtype)]


@_register("Where")
def _where(node, ins):
    return [np.where(ins[0], ins[1], ins[2])]


@_register("Expand")
def _expand(node, ins):
    shape = tuple(int(d) for d in ins[1].reshape(-1))
    return [ins[0] * np.ones(shape, dtype=ins[0].dtype)]


@_register("Tile")
def _tile(node, ins):
    return [np.tile(ins[0], tuple(int(r) for r in ins[1].reshape(-1)))]


@_register("ConstantOfShape")
def _constant_of_shape(node, ins):
    value = node.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    shape = tuple(int(d) for d in ins[0].reshape(-1))
    return [np.full(shape, value[0], dtype=value.dtype)]


@_register("Range")
def _range(node, ins):
    start, limit, delta = (a.reshape(()) for a in ins[:3])
    return [np.arange(start, limit, delta).astype(ins[0].dtype)]


@_register("Clip")
def _clip(node, ins):
    lo = attr_or_input(node, "min", 1, 11, _getter(ins))
    hi = attr_or_input(node, "max", 2, 11, _getter(ins))
    x = ins[0]
    if lo is not None:
        x = np.maximum(x, lo.astype(x.dtype))
    if hi is not None:
        x = np.minimum(x, hi.astype(x.dtype))
    return [x]


_REDUCE = {"ReduceProd": np.prod, "ReduceSum": np.sum, "ReduceMin": np.min, "ReduceMax": np.max,
           "ReduceMean": np.mean}
#: the opset in which each reduction's `axes` moved from attribute to input
REDUCE_AXES_INPUT_OPSET = {"ReduceSum": 13, "ReduceProd": 18, "ReduceMin": 18, "ReduceMax": 18, "ReduceMean": 18}


@_register(*_REDUCE)
def _reduce(node, ins):
    axes = axes_arg(node, REDUCE_AXES_INPUT_OPSET[node.op_type], _getter(ins))
    keep = bool(node.attr("keepdims", 1))
    if not axes:
        if int(node.attr("noop_with_empty_axes", 0)):
            return [ins[0]]
        axes = None
    else:
        axes = normalize_axes(axes, ins[0].ndim, node)
    return [np.asarray(_REDUCE[node.op_type](ins[0], axis=axes, keepdims=keep)).astype(ins[0].dtype)]


@_register("Pad")
def _pad(node, ins):
    pads, mode, value = pad_args(node, ins[0].ndim, _getter(ins))
    rank = ins[0].ndim
    if any(p < 0 for p in pads):
        raise node.error("negative pads are not evaluated at import time")
    width = [(pads[i], pads[i + rank]) for i in range(rank)]
    if mode == "constant":
        return [np.pad(ins[0], width, mode="constant", constant_values=value)]
    return [np.pad(ins[0], width, mode={"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode])]


@_register("NonZero")
def _nonzero(node, ins):
    return [np.array(np.nonzero(ins[0]), dtype=np.int64)]
