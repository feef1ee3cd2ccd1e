"""IR op kinds -> standard ONNX nodes (float semantics), shared by the float and the QDQ exporter.

`emit_op(builder, op, ins, outs)` writes the ONNX nodes computing `op` from the
ONNX value names `ins` (one per IR input port, None for an absent optional
input) into the value names `outs`. Fused activations of Conv/ConvTranspose/
Gemm/MatMul are written back as a separate Relu or Clip node, so the exported
graph only uses standard ONNX operators (opset `OPSET`). Conversion kinds
(Quantize, Dequantize, Requantize, Cast) are the exporters' business.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from npuc.export.onnx_builder import OnnxBuilder
from npuc.ir.op import Op

Emitter = Callable[[OnnxBuilder, Op, list, list], None]

#: IR kinds written as the ONNX op of the same name with no attributes
_SAME_NAME = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "Where", "PRelu",
              "Relu", "Sigmoid", "HardSwish", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Erf",
              "Floor", "Ceil", "Identity", "GlobalAveragePool", "GlobalMaxPool")

_REDUCE = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")


def _i64(b: OnnxBuilder, op: Op, what: str, values: Sequence[int]) -> str:
    return b.const(f"{op.name}.{what}", np.asarray([int(v) for v in values], dtype=np.int64))


def _f32(b: OnnxBuilder, op: Op, what: str, value: float) -> str:
    return b.const(f"{op.name}.{what}", np.asarray(value, dtype=np.float32))


def _args(ins: list) -> list[str]:
    """ONNX input list: absent optional inputs in the middle become '', trailing ones are dropped."""
    names = ["" if i is None else i for i in ins]
    while names and names[-1] == "":
        names.pop()
    return names


def _with_activation(b: OnnxBuilder, op: Op, op_type: str, ins: list, outs: list, **attrs) -> None:
    """The main node, then the fused activation (if any) as its own node."""
    act = op.attrs.get("activation")
    if act is None:
        b.node(op_type, _args(ins), outs, name=op.name, **attrs)
        return
    (pre,) = b.node(op_type, _args(ins), [b.fresh(f"{outs[0]}_preact")], name=op.name, **attrs)
    if act == "relu":
        b.node("Relu", [pre], outs, name=f"{op.name}/relu")
        return
    lo, hi = op.attrs.get("clip_min"), op.attrs.get("clip_max")
    if any(isinstance(v, (tuple, list)) for v in (lo, hi)):
        _per_channel_clip(b, op, pre, outs, lo, hi)
        return
    bounds = ["" if lo is None else _f32(b, op, "clip_min", lo)]
    if hi is not None:
        bounds.append(_f32(b, op, "clip_max", hi))
    b.node("Clip", [pre] + bounds, outs, name=f"{op.name}/clip")


def _per_channel_clip(b: OnnxBuilder, op: Op, pre: str, outs: list, lo, hi) -> None:
    """A fused clip with per-output-channel bounds: ONNX Clip takes scalar bounds only, so it is
    written as Max(pre, lo) then Min(., hi) with constants broadcasting along the channel axis
    ((C, 1, 1) for convs, (C,) for Gemm/MatMul)."""
    conv = op.kind in ("Conv", "ConvTranspose")
    value = pre
    steps = [(k, v) for k, v in (("clip_min", lo), ("clip_max", hi)) if v is not None]
    for i, (what, v) in enumerate(steps):
        arr = np.asarray(v, dtype=np.float32)
        if arr.ndim == 1 and conv:
            arr = arr.reshape(-1, 1, 1)
        dst = outs if i == len(steps) - 1 else [b.fresh(f"{outs[0]}_{what}")]
        (value,) = b.node("Max" if what == "clip_min" else "Min", [value, b.const(f"{op.name}.{what}", arr)], dst,
                          name=f"{op.name}/{what}")
    if not steps:
        b.node("Identity", [pre], outs, name=f"{op.name}/clip")


def _conv(b: OnnxBuilder, op: Op, ins: list, outs: list, kernel: Sequence[int]) -> None:
    a = op.attrs
    extra = {"output_padding": list(a["output_padding"])} if op.kind == "ConvTranspose" else {}
    _with_activation(b, op, op.kind, ins, outs, kernel_shape=list(kernel), strides=list(a["strides"]),
                     pads=list(a["pads"]), dilations=list(a["dilations"]), group=int(a["group"]), **extra)


def _unary_with_attrs(b: OnnxBuilder, op: Op, ins: list, outs: list) -> None:
    a = op.attrs
    if op.kind == "LeakyRelu":
        b.node("LeakyRelu", ins[:1], outs, name=op.name, alpha=float(a["alpha"]))
    elif op.kind == "HardSigmoid":
        b.node("HardSigmoid", ins[:1], outs, name=op.name, alpha=float(a["alpha"]), beta=float(a["beta"]))
    elif op.kind == "Clip":
        bounds = ["" if a["min"] is None else _f32(b, op, "min", a["min"])]
        if a["max"] is not None:
            bounds.append(_f32(b, op, "max", a["max"]))
        b.node("Clip", _args([ins[0]] + bounds), outs, name=op.name)
    elif op.kind == "SiLU":  # no Swish below opset 24: x * sigmoid(x)
        (sig,) = b.node("Sigmoid", ins[:1], None, name=f"{op.name}/sigmoid")
        b.node("Mul", [ins[0], sig], outs, name=op.name)
    elif op.kind == "Dropout":
        b.node("Identity", ins[:1], outs, name=op.name)


def _data_movement(b: OnnxBuilder, op: Op, ins: list, outs: list) -> None:
    a, k = op.attrs, op.kind
    if k == "Reshape":
        b.node("Reshape", [ins[0], _i64(b, op, "shape", a["shape"])], outs, name=op.name)
    elif k == "Transpose":
        b.node("Transpose", ins[:1], outs, name=op.name, perm=[int(p) for p in a["perm"]])
    elif k == "Concat":
        b.node("Concat", _args(ins), outs, name=op.name, axis=int(a["axis"]))
    elif k == "Split":
        b.node("Split", [ins[0], _i64(b, op, "split", a["split"])], outs, name=op.name, axis=int(a["axis"]))
    elif k == "Slice":
        args = [ins[0], _i64(b, op, "starts", a["starts"]), _i64(b, op, "ends", a["ends"])]
        args.append("" if a["axes"] is None else _i64(b, op, "axes", a["axes"]))
        args.append("" if a["steps"] is None else _i64(b, op, "steps", a["steps"]))
        b.node("Slice", _args(args), outs, name=op.name)
    elif k == "Pad":
        args = [ins[0], _i64(b, op, "pads", a["pads"])]
        if a["mode"] == "constant":
            args.append(_f32(b, op, "value", float(a["value"] or 0.0)))
        b.node("Pad", args, outs, name=op.name, mode=a["mode"])
    elif k == "Resize":
        mode = "linear" if a["mode"] == "linear" else a["mode"]
        extra = {"nearest_mode": a["nearest_mode"]} if mode == "nearest" else {}
        b.node("Resize", [ins[0], "", "", _i64(b, op, "sizes", a["size"])], outs, name=op.name, mode=mode,
               coordinate_transformation_mode=a["coordinate_transformation_mode"], **extra)
    elif k == "Gather":
        b.node("Gather", ins[:2], outs, name=op.name, axis=int(a["axis"]))
    elif k == "Expand":
        b.node("Expand", [ins[0], _i64(b, op, "shape", a["shape"])], outs, name=op.name)
    elif k == "Tile":
        b.node("Tile", [ins[0], _i64(b, op, "repeats", a["repeats"])], outs, name=op.name)
    elif k == "DepthToSpace":
        b.node("DepthToSpace", ins[:1], outs, name=op.name, blocksize=int(a["blocksize"]), mode=a["mode"])
    elif k == "SpaceToDepth":
        b.node("SpaceToDepth", ins[:1], outs, name=op.name, blocksize=int(a["blocksize"]))
    elif k == "Shape":
        b.node("Shape", ins[:1], outs, name=op.name, start=int(a["start"]),
               end=None if a["end"] is None else int(a["end"]))


def _pool_or_reduce(b: OnnxBuilder, op: Op, ins: list, outs: list) -> None:
    a, k = op.attrs, op.kind
    if k in ("MaxPool", "AveragePool"):
        attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["strides"]), pads=list(a["pads"]),
                     ceil_mode=int(bool(a["ceil_mode"])))
        if k == "MaxPool":
            attrs["dilations"] = list(a.get("dilations", (1, 1)))
        else:
            attrs["count_include_pad"] = int(bool(a["count_include_pad"]))
        b.node(k, ins[:1], outs, name=op.name, **attrs)
    elif k in _REDUCE:
        args = [ins[0]] if a["axes"] is None else [ins[0], _i64(b, op, "axes", a["axes"])]
        b.node(k, args, outs, name=op.name, keepdims=int(bool(a["keepdims"])))
    elif k in ("Softmax", "LogSoftmax"):
        b.node(k, ins[:1], outs, name=op.name, axis=int(a["axis"]))
    elif k == "BatchNormalization":
        b.node(k, ins[:5], outs, name=op.name, epsilon=float(a["epsilon"]))


def emit_op(b: OnnxBuilder, op: Op, ins: list, outs: list, weight_shape: Sequence[int] | None = None) -> None:
    """Write `op` as ONNX nodes. `weight_shape`: the IR weight's shape (kernel size of convolutions)."""
    k = op.kind
    if k in ("Conv", "ConvTranspose"):
        _conv(b, op, ins, outs, tuple(weight_shape or ())[2:])
    elif k == "Gemm":
        _with_activation(b, op, "Gemm", ins, outs, transB=1)
    elif k == "MatMul":
        _with_activation(b, op, "MatMul", ins[:2], outs)
    elif k in _SAME_NAME:
        b.node(k, _args(ins), outs, name=op.name)
    elif k in _UNARY_ATTR:
        _unary_with_attrs(b, op, ins, outs)
    elif k in _DATA:
        _data_movement(b, op, ins, outs)
    elif k in _POOL:
        _pool_or_reduce(b, op, ins, outs)
    else:  # callers check supported() first
        raise KeyError(k)


_UNARY_ATTR = ("LeakyRelu", "HardSigmoid", "Clip", "SiLU", "Dropout")
_DATA = ("Reshape", "Transpose", "Concat", "Split", "Slice", "Pad", "Resize", "Gather", "Expand", "Tile",
         "DepthToSpace", "SpaceToDepth", "Shape")
_POOL = ("MaxPool", "AveragePool", *_REDUCE, "Softmax", "LogSoftmax", "BatchNormalization")

#: every IR kind emit_op writes (the exporters add the conversion kinds)
SUPPORTED_KINDS = frozenset(("Conv", "ConvTranspose", "Gemm", "MatMul", *_SAME_NAME, *_UNARY_ATTR, *_DATA, *_POOL))


def supported(kind: str) -> bool:
    """True when emit_op can write this IR kind."""
    return kind in SUPPORTED_KINDS
