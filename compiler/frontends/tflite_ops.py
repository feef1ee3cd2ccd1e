"""Converters from TFLite builtin operators to IR ops, one function per operator.

Each converter takes the Lowering state and one TflOperator, asks for its
inputs in the layout it needs (NCHW for spatial ops, TFLite's order for
Reshape and friends, whatever the input already has for elementwise ops) and
binds its outputs. TFLite semantics are mapped onto the IR's ONNX-style
attributes here: SAME/VALID padding -> explicit pads, OHWI weights -> OIHW,
align_corners/half_pixel_centers -> ONNX coordinate modes, masks of
STRIDED_SLICE -> Slice + Reshape.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from npuc.errors import ModelImportError
from npuc.frontends.tflite import NCHW, Lowering, Value, identity
from npuc.frontends.tflite_reader import TflOperator
from npuc.ir.tensor import Tensor

Converter = Callable[[Lowering, TflOperator], None]

#: TFLite builtin operator name -> converter
CONVERTERS: dict[str, Converter] = {}

_SAME, _VALID = 0, 1


def converter(*names: str) -> Callable[[Converter], Converter]:
    """Register a converter for one or more TFLite builtin operator names."""

    def deco(fn: Converter) -> Converter:
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


# ----------------------------------------------------------------- helpers
def _opt(op: TflOperator, key: str, default: Any) -> Any:
    return op.options.get(key, default)


def _has(op: TflOperator, port: int) -> bool:
    return len(op.inputs) > port and op.inputs[port] >= 0


def same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding for one spatial dim: (before, after), the extra pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def spatial_pads(op: TflOperator, hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int] = (1, 1)) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from TFLite's padding enum."""
    if min(*kernel, *strides, *dilations) < 1:
        raise ModelImportError(f"{op.opcode} (operator {op.index}): kernel {tuple(kernel)}, strides "
                               f"{tuple(strides)} and dilations {tuple(dilations)} must be positive")
    padding = _opt(op, "Padding", _SAME)
    if padding == _VALID:
        return (0, 0, 0, 0)
    if padding != _SAME:
        raise ModelImportError(f"{op.opcode} (operator {op.index}) has unknown padding code {padding}")
    t, b = same_pads(hw[0], kernel[0], strides[0], dilations[0])
    l, r = same_pads(hw[1], kernel[1], strides[1], dilations[1])
    return (t, l, b, r)


def operand(lw: Lowering, op: TflOperator, port: int, perm: Sequence[int]) -> Tensor:
    """Input `port` laid out as perm, broadcast up to len(perm) dims first (numpy rules)."""
    idx = op.inputs[port]
    if lw.is_const(idx):
        return lw.const_in_perm(idx, perm, op)
    v = lw.value(idx, op)
    rank = len(perm)
    if len(v.perm) < rank:
        flat = lw.convert(v, identity(len(v.perm)))
        shape = (1,) * (rank - len(v.perm)) + flat.shape
        name = lw.graph.unique_tensor_name(f"{flat.name}/rank{rank}")
        r = lw.graph.add_op("Reshape", [flat], {"shape": shape}, name=name, outputs=[name])
        v = Value(lw.graph.outputs_of(r)[0], identity(rank))
    return lw.convert(v, tuple(perm))


def common_perm(lw: Lowering, op: TflOperator, ports: Sequence[int]) -> tuple[int, ...]:
    """The layout for an op over several inputs: the first non-trivial layout of a full-rank activation."""
    rank = len(lw.src(op.outputs[0]).shape)
    for p in ports:
        idx = op.inputs[p]
        if idx >= 0 and not lw.is_const(idx):
            v = lw.value(idx, op)
            if len(v.perm) == rank and v.perm != identity(rank):
                return v.perm
    return identity(rank)


def _weights(lw: Lowering, op: TflOperator, port: int, perm: Sequence[int]) -> Tensor:
    idx = op.inputs[port]
    arr = lw.array(idx, op, "weight").transpose(perm)
    return lw.const(lw.src(idx).name, arr, lw.quant_of(idx, perm))


def _bias(lw: Lowering, op: TflOperator, port: int) -> Tensor | None:
    if not _has(op, port):
        return None
    idx = op.inputs[port]
    arr = lw.array(idx, op, "bias").reshape(-1)
    return lw.const(lw.src(idx).name, arr, lw.quant_of(idx, (0,)))


# ------------------------------------------------------------ convolutions
def _emit_conv(lw: Lowering, op: TflOperator, x, w, group: int) -> None:
    """A Conv (NCHW input, OIHW weight, optional bias at input 2) with the operator's strides,
    dilations, padding and fused activation."""
    strides = (_opt(op, "StrideH", 1), _opt(op, "StrideW", 1))
    dil = (_opt(op, "DilationHFactor", 1), _opt(op, "DilationWFactor", 1))
    pads = spatial_pads(op, x.shape[2:], w.shape[2:], strides, dil)
    attrs = {"strides": strides, "dilations": dil, "pads": pads, "group": group}
    lw.emit(op, "Conv", [x, w, _bias(lw, op, 2)], attrs, NCHW, _opt(op, "FusedActivationFunction", 0),
            fusable=True)


@converter("CONV_2D")
def conv_2d(lw: Lowering, op: TflOperator) -> None:
    x = lw.get(op.inputs[0], NCHW, op)
    w = _weights(lw, op, 1, (0, 3, 1, 2))  # OHWI -> OIHW
    group = x.shape[1] // max(w.shape[1], 1)
    if group < 1 or x.shape[1] != group * w.shape[1]:
        raise ModelImportError(
            f"CONV_2D (operator {op.index}): input has {x.shape[1]} channels, filter {w.shape[1]} per group")
    _emit_conv(lw, op, x, w, group)


@converter("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(lw: Lowering, op: TflOperator) -> None:
    x = lw.get(op.inputs[0], NCHW, op)
    w = _weights(lw, op, 1, (3, 0, 1, 2))  # (1, kh, kw, C*m) -> (C*m, 1, kh, kw)
    channels = x.shape[1]
    if w.shape[0] % channels:
        raise ModelImportError(
            f"DEPTHWISE_CONV_2D (operator {op.index}): {w.shape[0]} filters for {channels} input channels")
    _emit_conv(lw, op, x, w, channels)


@converter("TRANSPOSE_CONV")
def transpose_conv(lw: Lowering, op: TflOperator) -> None:
    out_shape = [int(d) for d in lw.array(op.inputs[0], op, "output shape").reshape(-1)]
    x = lw.get(op.inputs[2], NCHW, op)
    w = _weights(lw, op, 1, (3, 0, 1, 2))  # (Cout, kh, kw, Cin) -> (Cin, Cout, kh, kw)
    if len(out_shape) != 4 or out_shape[3] != w.shape[1]:
        raise ModelImportError(f"TRANSPOSE_CONV (operator {op.index}): output shape {out_shape} does not match "
                               f"filter {list(w.shape)}")
    strides = (_opt(op, "StrideH", 1), _opt(op, "StrideW", 1))
    begin, extra = [], []
    for i, out in enumerate(out_shape[1:3]):
        k, s, size = w.shape[2 + i], strides[i], x.shape[2 + i]
        if _opt(op, "Padding", _SAME) == _SAME:
            before = same_pads(out, k, s)[0]
        else:
            before = 0
        full = (size - 1) * s + k
        begin.append(before)
        extra.append(full - before - out)  # > 0: cropped at the end; < 0: output padding
    pads = (begin[0], begin[1], max(extra[0], 0), max(extra[1], 0))
    out_pad = (max(-extra[0], 0), max(-extra[1], 0))
    attrs = {"strides": strides, "pads": pads, "output_padding": out_pad}
    lw.emit(op, "ConvTranspose", [x, w, _bias(lw, op, 3)], attrs, NCHW,
            _opt(op, "FusedActivationFunction", 0), fusable=True)


@converter("FULLY_CONNECTED")
def fully_connected(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    src_shape = v.source_shape()
    w_idx = op.inputs[1]
    in_features = lw.src(w_idx).shape[-1]
    if int(np.prod(src_shape)) % in_features:
        raise ModelImportError(f"FULLY_CONNECTED (operator {op.index}): input {list(src_shape)} cannot be "
                               f"flattened to rows of {in_features}")
    x = lw.convert(v, identity(len(v.perm)))
    rows = int(np.prod(src_shape)) // in_features
    name = lw.src(op.outputs[0]).name
    if x.shape != (rows, in_features):
        r = lw.graph.add_op("Reshape", [x], {"shape": (rows, in_features)}, name=f"{name}/flatten",
                            outputs=[f"{name}/flatten"])
        x = lw.graph.outputs_of(r)[0]
    keep = bool(_opt(op, "KeepNumDims", False)) and len(src_shape) > 2
    fused = _opt(op, "FusedActivationFunction", 0)
    bias = _bias(lw, op, 2)
    if lw.is_const(w_idx):
        w = _weights(lw, op, 1, (0, 1))
        out = lw.emit(op, "Gemm", [x, w, bias], perm=(0, 1), fused=0 if keep else fused, fusable=True)
    else:
        wt = lw.graph.add_op("Transpose", [lw.get(w_idx, (0, 1), op)], {"perm": (1, 0)},
                             name=f"{name}/weight_t", outputs=[f"{name}/weight_t"])
        mm_in = [x, lw.graph.outputs_of(wt)[0]]
        if bias is None:
            out = lw.emit(op, "MatMul", mm_in, perm=(0, 1), fused=0 if keep else fused, fusable=True)
        else:
            mm = lw.graph.add_op("MatMul", mm_in, name=f"{name}/matmul", outputs=[f"{name}/matmul"])
            out = lw.emit(op, "Add", [lw.graph.outputs_of(mm)[0], bias], perm=(0, 1), fused=0 if keep else fused)
    if keep:
        shape = tuple(src_shape[:-1]) + (out.shape[1],)
        lw.graph.rename_tensor(out, lw.graph.unique_tensor_name(f"{name}/2d"))
        lw.values.pop(op.outputs[0])
        lw.emit(op, "Reshape", [out], {"shape": shape}, fused=fused)


# ----------------------------------------------------------- elementwise
def _binary(kind: str) -> Converter:
    def convert(lw: Lowering, op: TflOperator) -> None:
        perm = common_perm(lw, op, (0, 1))
        a, b = operand(lw, op, 0, perm), operand(lw, op, 1, perm)
        lw.emit(op, kind, [a, b], perm=perm, fused=_opt(op, "FusedActivationFunction", 0))

    convert.__name__ = f"convert_{kind.lower()}"
    convert.__doc__ = f"TFLite binary op -> {kind} (numpy broadcasting, fused activation explicit)."
    return convert


for _name, _kind in {"ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div",
                     "MAXIMUM": "Max", "MINIMUM": "Min"}.items():
    CONVERTERS[_name] = _binary(_kind)


def _unary(kind: str, attrs: dict[str, Any] | None = None) -> Converter:
    def convert(lw: Lowering, op: TflOperator) -> None:
        v = lw.value(op.inputs[0], op)
        lw.emit(op, kind, [v.tensor], attrs, perm=v.perm)

    convert.__name__ = f"convert_{kind.lower()}"
    convert.__doc__ = f"TFLite unary op -> {kind} (layout kept)."
    return convert


CONVERTERS.update({
    "RELU": _unary("Relu"),
    "RELU6": _unary("Clip", {"min": 0.0, "max": 6.0}),
    "RELU_N1_TO_1": _unary("Clip", {"min": -1.0, "max": 1.0}),
    "RELU_0_TO_1": _unary("Clip", {"min": 0.0, "max": 1.0}),
    "LOGISTIC": _unary("Sigmoid"),
    "TANH": _unary("Tanh"),
    "HARD_SWISH": _unary("HardSwish"),
    "EXP": _unary("Exp"),
    "ABS": _unary("Abs"),
    "NEG": _unary("Neg"),
    "SQRT": _unary("Sqrt"),
})


@converter("LEAKY_RELU")
def leaky_relu(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    lw.emit(op, "LeakyRelu", [v.tensor], {"alpha": float(_opt(op, "Alpha", 0.2))}, perm=v.perm)


@converter("PRELU")
def prelu(lw: Lowering, op: TflOperator) -> None:
    perm = common_perm(lw, op, (0,))
    x = operand(lw, op, 0, perm)
    slope = operand(lw, op, 1, perm)
    lw.emit(op, "PRelu", [x, slope], perm=perm)


# ------------------------------------------------------ pooling, reductions
def _pool(kind: str) -> Converter:
    def convert(lw: Lowering, op: TflOperator) -> None:
        x = lw.get(op.inputs[0], NCHW, op)
        kernel = (_opt(op, "FilterHeight", 1), _opt(op, "FilterWidth", 1))
        strides = (_opt(op, "StrideH", 1), _opt(op, "StrideW", 1))
        attrs: dict[str, Any] = {"kernel": kernel, "strides": strides,
                                 "pads": spatial_pads(op, x.shape[2:], kernel, strides)}
        if kind == "AveragePool":
            attrs["count_include_pad"] = False  # TFLite averages over the valid pixels only
            if lw.fixed_encodings:  # TFLite's int8 kernel: (sum + count/2) / count, ties away from zero
                attrs["rounding"] = "half_away_from_zero"
        lw.emit(op, kind, [x], attrs, NCHW, _opt(op, "FusedActivationFunction", 0))

    convert.__name__ = f"convert_{kind.lower()}"
    convert.__doc__ = f"TFLite 2-D pooling -> {kind} (SAME/VALID -> explicit pads)."
    return convert


CONVERTERS["MAX_POOL_2D"] = _pool("MaxPool")
CONVERTERS["AVERAGE_POOL_2D"] = _pool("AveragePool")


def _axes(lw: Lowering, op: TflOperator, port: int, rank: int) -> list[int]:
    raw = np.asarray(lw.array(op.inputs[port], op, "axes")).reshape(-1)
    out = []
    for a in raw:
        a = int(a)
        if not -rank <= a < rank:
            raise ModelImportError(f"{op.opcode} (operator {op.index}): axis {a} out of range for rank {rank}")
        out.append(a % rank)
    return sorted(set(out))


def _reduce(kind: str) -> Converter:
    def convert(lw: Lowering, op: TflOperator) -> None:
        v = lw.value(op.inputs[0], op)
        rank = len(v.perm)
        axes = _axes(lw, op, 1, rank)
        keep = bool(_opt(op, "KeepDims", False))
        ir_axes = tuple(sorted(v.perm.index(a) for a in axes))
        if keep:
            perm = v.perm
        else:
            rest = [d for d in range(rank) if d not in axes]
            perm = tuple(rest.index(p) for p in v.perm if p not in axes)
        attrs: dict[str, Any] = {"axes": ir_axes, "keepdims": keep}
        if kind == "ReduceMean" and lw.fixed_encodings and lw.src(op.inputs[0]).type_name == "INT8":
            # TFLite's int8 MEAN: the 4-D kernel over H, W with kept dims, else the generic one
            hw = keep and rank == 4 and axes == [1, 2]
            attrs["rounding"] = "tflite_mean_hw" if hw else "tflite_mean"
        lw.emit(op, kind, [v.tensor], attrs, perm=perm)

    convert.__name__ = f"convert_{kind.lower()}"
    convert.__doc__ = f"TFLite reduction -> {kind} (axes mapped to the IR layout)."
    return convert


CONVERTERS["MEAN"] = _reduce("ReduceMean")
CONVERTERS["SUM"] = _reduce("ReduceSum")
CONVERTERS["REDUCE_MAX"] = _reduce("ReduceMax")


@converter("SOFTMAX")
def softmax(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    rank = len(v.perm)
    x = v.tensor
    beta = float(_opt(op, "Beta", 1.0))
    if beta != 1.0:
        name = lw.src(op.outputs[0]).name
        scaled = lw.graph.add_op("Mul", [x, lw.const(f"{name}/beta", np.float32(beta))],
                                 name=f"{name}/beta_mul", origin=(name,), outputs=[f"{name}/beta_mul"])
        x = lw.graph.outputs_of(scaled)[0]
    lw.emit(op, "Softmax", [x], {"axis": v.perm.index(rank - 1)}, perm=v.perm)


# ----------------------------------------------------------- data movement
@converter("CONCATENATION")
def concatenation(lw: Lowering, op: TflOperator) -> None:
    ports = range(len(op.inputs))
    perm = common_perm(lw, op, ports)
    rank = len(perm)
    axis = int(_opt(op, "Axis", 0))
    if not -rank <= axis < rank:
        raise ModelImportError(f"CONCATENATION (operator {op.index}): axis {axis} out of range for rank {rank}")
    ins = [operand(lw, op, p, perm) for p in ports]
    lw.emit(op, "Concat", ins, {"axis": perm.index(axis % rank)}, perm=perm,
            fused=_opt(op, "FusedActivationFunction", 0))


def _target_shape(lw: Lowering, op: TflOperator, size: int) -> tuple[int, ...]:
    """RESHAPE's new shape: the shape operand, else the options, else the output tensor; -1 resolved."""
    if _has(op, 1) and lw.is_const(op.inputs[1]):
        shape = [int(d) for d in np.asarray(lw.array(op.inputs[1], op)).reshape(-1)]
    elif _opt(op, "NewShape", None):
        shape = [int(d) for d in op.options["NewShape"]]
    else:
        shape = list(lw.src(op.outputs[0]).shape)
    if shape.count(-1) > 1:
        raise ModelImportError(f"RESHAPE (operator {op.index}): new shape {shape} has more than one -1")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or size % known:
            raise ModelImportError(f"RESHAPE (operator {op.index}): cannot reshape {size} values to {shape}")
        shape[shape.index(-1)] = size // known
    if int(np.prod(shape)) != size:
        raise ModelImportError(f"RESHAPE (operator {op.index}): cannot reshape {size} values to {shape}")
    return tuple(shape)


@converter("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def reshape(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    x = lw.convert(v, identity(len(v.perm)))
    if op.opcode == "RESHAPE":
        shape = _target_shape(lw, op, int(np.prod(x.shape)))
    else:
        shape = tuple(lw.src(op.outputs[0]).shape)
    lw.emit(op, "Reshape", [x], {"shape": shape})


@converter("TRANSPOSE")
def transpose(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    rank = len(v.perm)
    perm = [int(p) % rank for p in np.asarray(lw.array(op.inputs[1], op, "permutation")).reshape(-1)]
    if sorted(perm) != list(range(rank)):
        raise ModelImportError(f"TRANSPOSE (operator {op.index}): {perm} is not a permutation of rank {rank}")
    # out_src = in_src.transpose(perm); in_src = ir.transpose(argsort(v.perm))
    inv = np.argsort(np.asarray(v.perm))
    ir_perm = tuple(int(inv[p]) for p in perm)
    lw.emit(op, "Transpose", [v.tensor], {"perm": ir_perm})


@converter("PAD", "PADV2")
def pad(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    rank = len(v.perm)
    pads = np.asarray(lw.array(op.inputs[1], op, "paddings")).astype(np.int64).reshape(-1, 2)
    if pads.shape[0] != rank or (pads < 0).any():
        raise ModelImportError(f"{op.opcode} (operator {op.index}): paddings {pads.tolist()} for rank {rank}")
    value = 0.0
    if op.opcode == "PADV2" and _has(op, 2):
        value = float(np.asarray(lw.array(op.inputs[2], op, "pad value")).reshape(-1)[0])
    ir_pads = tuple(int(pads[p, 0]) for p in v.perm) + tuple(int(pads[p, 1]) for p in v.perm)
    lw.emit(op, "Pad", [v.tensor], {"pads": ir_pads, "mode": "constant", "value": value}, perm=v.perm)


def strided_slice_plan(
    shape: Sequence[int], begin: Sequence[int], end: Sequence[int], strides: Sequence[int],
    begin_mask: int = 0, end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
    shrink_axis_mask: int = 0, offset: bool = False,
) -> tuple[list[tuple[int, int, int]], tuple[int, ...]]:
    """TFLite/TF STRIDED_SLICE semantics as one (start, end, step) per input dim plus the final shape.

    Bounds follow python slicing (negative indices wrap, then clamp), which is
    also ONNX Slice's rule; masked ends use +-2**31 so they reach the edge for
    either step sign.
    """
    rank, n = len(shape), len(begin)
    plan = [(0, int(d), 1) for d in shape]
    final: list[int] = []
    consuming = sum(1 for j in range(n) if not (ellipsis_mask >> j) & 1 and not (new_axis_mask >> j) & 1)
    d = 0
    for j in range(n):
        if (ellipsis_mask >> j) & 1:
            for _ in range(max(rank - consuming, 0)):
                final.append(int(shape[d]))
                d += 1
            continue
        if (new_axis_mask >> j) & 1:
            final.append(1)
            continue
        if d >= rank:
            raise ValueError(f"slice spec has more entries than the input's rank {rank}")
        dim, s = int(shape[d]), int(strides[j])
        if s == 0:
            raise ValueError("stride 0")
        b, e = int(begin[j]), int(end[j])
        if (shrink_axis_mask >> j) & 1:
            b = b + dim if b < 0 else b
            if not 0 <= b < dim:
                raise ValueError(f"index {begin[j]} out of range for dim {dim}")
            plan[d] = (b, b + 1, 1)
        else:
            if offset:
                e = b + e
            if (begin_mask >> j) & 1:
                b = 0 if s > 0 else dim - 1
            if (end_mask >> j) & 1:
                e = 2**31 - 1 if s > 0 else -(2**31)
            plan[d] = (b, e, s)
            final.append(len(range(dim)[slice(b, e, s)]))
        d += 1
    final.extend(int(x) for x in shape[d:])
    return plan, tuple(final)


@converter("STRIDED_SLICE")
def strided_slice(lw: Lowering, op: TflOperator) -> None:
    v = lw.value(op.inputs[0], op)
    shape = v.source_shape()
    b, e, s = (np.asarray(lw.array(op.inputs[i], op, n)).reshape(-1).astype(np.int64).tolist()
               for i, n in ((1, "begin"), (2, "end"), (3, "strides")))
    try:
        plan, final = strided_slice_plan(
            shape, b, e, s, _opt(op, "BeginMask", 0), _opt(op, "EndMask", 0), _opt(op, "EllipsisMask", 0),
            _opt(op, "NewAxisMask", 0), _opt(op, "ShrinkAxisMask", 0), bool(_opt(op, "Offset", False)))
    except ValueError as exc:
        raise ModelImportError(f"STRIDED_SLICE (operator {op.index}) on {list(shape)}: {exc}") from None
    sliced = tuple(len(range(d)[slice(*p)]) for d, p in zip(shape, plan))
    axes = [d for d, p in enumerate(plan) if p != (0, shape[d], 1)]
    attrs = {"starts": tuple(plan[d][0] for d in axes), "ends": tuple(plan[d][1] for d in axes),
             "axes": tuple(v.perm.index(d) for d in axes), "steps": tuple(plan[d][2] for d in axes)}
    if sliced == final:
        lw.emit(op, "Slice", [v.tensor], attrs, perm=v.perm)
        return
    name = lw.src(op.outputs[0]).name
    sl = lw.graph.add_op("Slice", [v.tensor], attrs, name=f"{name}/slice", origin=(name,),
                         outputs=[f"{name}/slice"])
    flat = lw.convert(Value(lw.graph.outputs_of(sl)[0], v.perm), identity(len(v.perm)))
    lw.emit(op, "Reshape", [flat], {"shape": final})


def _resize(mode: str) -> Converter:
    def convert(lw: Lowering, op: TflOperator) -> None:
        x = lw.get(op.inputs[0], NCHW, op)
        size = [int(d) for d in np.asarray(lw.array(op.inputs[1], op, "size")).reshape(-1)]
        if len(size) != 2 or min(size) <= 0:
            raise ModelImportError(f"{op.opcode} (operator {op.index}): size {size} is not (height, width)")
        align = bool(_opt(op, "AlignCorners", False))
        half = bool(_opt(op, "HalfPixelCenters", False))
        if align and half:
            raise ModelImportError(f"{op.opcode} (operator {op.index}): align_corners and half_pixel_centers "
                                   "cannot both be set")
        coord = "align_corners" if align else ("half_pixel" if half else "asymmetric")
        nearest = "floor" if not (align or half) else "round_prefer_ceil"
        attrs = {"size": (x.shape[0], x.shape[1], size[0], size[1]), "mode": mode,
                 "coordinate_transformation_mode": coord, "nearest_mode": nearest}
        if mode == "linear" and lw.fixed_encodings and lw.src(op.inputs[0]).type_name == "INT8":
            attrs["rounding"] = "tflite_bilinear"  # TFLite's int8 kernel: 10-bit coordinates, ties away from 0
        lw.emit(op, "Resize", [x], attrs, NCHW)

    convert.__name__ = f"convert_resize_{mode}"
    convert.__doc__ = f"TFLite resize -> Resize(mode={mode}) with the matching ONNX coordinate mode."
    return convert


CONVERTERS["RESIZE_BILINEAR"] = _resize("linear")
CONVERTERS["RESIZE_NEAREST_NEIGHBOR"] = _resize("nearest")


@converter("DEPTH_TO_SPACE")
def depth_to_space(lw: Lowering, op: TflOperator) -> None:
    x = lw.get(op.inputs[0], NCHW, op)
    # TF's NHWC channel order (block row, block col, channel) is ONNX's DCR.
    lw.emit(op, "DepthToSpace", [x], {"blocksize": int(_opt(op, "BlockSize", 2)), "mode": "DCR"}, NCHW)


@converter("SPACE_TO_DEPTH")
def space_to_depth(lw: Lowering, op: TflOperator) -> None:
    x = lw.get(op.inputs[0], NCHW, op)
    lw.emit(op, "SpaceToDepth", [x], {"blocksize": int(_opt(op, "BlockSize", 2))}, NCHW)


# ------------------------------------------------------------ quantization
@converter("DEQUANTIZE")
def dequantize(lw: Lowering, op: TflOperator) -> None:
    """float16 / int8 constants are folded to float32; on activations it is an identity of the float IR."""
    idx = op.inputs[0]
    if lw.is_const(idx):
        lw.fold(op, lw.array(idx, op).astype(np.float32), quant_from=idx)
    else:
        lw.alias(op, idx)


@converter("DENSIFY")
def densify(lw: Lowering, op: TflOperator) -> None:
    """Sparse constants are expanded by the reader; DENSIFY just passes the dense value on."""
    lw.fold(op, lw.array(op.inputs[0], op, "sparse weight"), quant_from=op.inputs[0])


@converter("QUANTIZE")
def quantize(lw: Lowering, op: TflOperator) -> None:
    """float -> int: the float IR keeps the value and records the encoding; int -> int: an Identity
    so both encodings survive (a requantization)."""
    idx = op.inputs[0]
    src = lw.src(idx)
    if lw.is_const(idx) or src.quant is None or src.type_name in ("FLOAT32", "FLOAT16"):
        if lw.is_const(idx):
            lw.fold(op, lw.array(idx, op).astype(np.float32))
            return
        lw.alias(op, idx)
        return
    v = lw.value(idx, op)
    lw.emit(op, "Identity", [v.tensor], perm=v.perm)
