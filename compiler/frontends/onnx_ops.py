"""The per-op lowering table: how each ONNX operator becomes IR ops.

A rule reads its node through `NodeView`, its run-time inputs with
`ctx.tensor`/`ctx.input_tensor` and its import-time arguments with
`ctx.static_input` (ports listed in `static_ports`), and emits IR ops with
`ctx.emit`. Attribute conventions are those of npuc.ir.ops (NCHW, OIHW,
pads = (top, left, bottom, right), static shapes). `check` reports variants
npuc does not implement, so they are listed with the unsupported ops before
any work starts.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from npuc.frontends.onnx_context import ImportContext
from npuc.frontends.onnx_node import NodeView, attr_or_input, auto_pads, axes_arg, dtype_from_onnx, normalize_axes
from npuc.frontends.onnx_shape_rules import (flatten_shape, pad_args, reshape_target, slice_args, split_sizes,
                                             squeeze_shape, unsqueeze_shape)
from npuc.frontends.onnx_static_values import REDUCE_AXES_INPUT_OPSET
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

LowerFn = Callable[[ImportContext, NodeView], None]
CheckFn = Callable[[NodeView], "str | None"]


@dataclass(frozen=True)
class Lowering:
    """How one ONNX op type is imported.

    static_ports: inputs needed as import-time values (IR attributes), never as tensors.
    ignored_ports: inputs the rule never reads (e.g. Dropout's ratio).
    check: returns a short description of an unsupported variant of this node, or None.
    """

    op_type: str
    fn: LowerFn
    static_ports: frozenset[int] = frozenset()
    ignored_ports: frozenset[int] = frozenset()
    check: CheckFn | None = None


#: ONNX op type (default domain) -> lowering rule.
LOWERINGS: dict[str, Lowering] = {}


def lowering(*op_types: str, static: tuple[int, ...] = (), ignored: tuple[int, ...] = (),
             check: CheckFn | None = None) -> Callable[[LowerFn], LowerFn]:
    """Register `fn` as the lowering rule of each op type."""
    def deco(fn: LowerFn) -> LowerFn:
        for t in op_types:
            LOWERINGS[t] = Lowering(t, fn, frozenset(static), frozenset(ignored), check)
        return fn
    return deco


def _spatial_only(what: str) -> CheckFn:
    def check(node: NodeView) -> str | None:
        k = node.ints("kernel_shape")
        if k is not None and len(k) != 2:
            return f"{len(k)}-D {what}"
        return None
    return check


# ------------------------------------------------------------------ elementwise
_UNARY = {
    "Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt",
    "Reciprocal": "Reciprocal", "Neg": "Neg", "Abs": "Abs", "Erf": "Erf", "Floor": "Floor", "Ceil": "Ceil",
    "HardSwish": "HardSwish", "Identity": "Identity",
}


@lowering(*_UNARY)
def _unary(ctx: ImportContext, node: NodeView) -> None:
    ctx.emit_one(node, _UNARY[node.op_type], [ctx.input_tensor(node, 0)])


@lowering("Dropout", ignored=(1, 2))
def _dropout(ctx, node):
    if len(node.outputs) > 1 and node.outputs[1]:
        log.debug("Dropout '%s': mask output is not imported", node.name)
    ctx.emit_one(node, "Dropout", [ctx.input_tensor(node, 0)])


@lowering("LeakyRelu")
def _leaky_relu(ctx, node):
    ctx.emit_one(node, "LeakyRelu", [ctx.input_tensor(node, 0)], {"alpha": float(node.attr("alpha", 0.01))})


@lowering("HardSigmoid")
def _hard_sigmoid(ctx, node):
    ctx.emit_one(node, "HardSigmoid", [ctx.input_tensor(node, 0)],
                 {"alpha": float(node.attr("alpha", 0.2)), "beta": float(node.attr("beta", 0.5))})


@lowering("PRelu")
def _prelu(ctx, node):
    ctx.emit_one(node, "PRelu", [ctx.input_tensor(node, 0), ctx.input_tensor(node, 1)])


def _bound(value) -> float | None:
    """A Clip bound as float; absent or beyond float32 range means unbounded (None)."""
    if value is None or np.asarray(value).size == 0:
        return None
    v = float(np.asarray(value).reshape(-1)[0])
    return None if not math.isfinite(v) or abs(v) >= 3.4e38 else v


@lowering("Clip", static=(1, 2))
def _clip(ctx, node):
    get = ctx.getter(node, "bound")
    lo = _bound(attr_or_input(node, "min", 1, 11, get))
    hi = _bound(attr_or_input(node, "max", 2, 11, get))
    ctx.emit_one(node, "Clip", [ctx.input_tensor(node, 0)], {"min": lo, "max": hi})


_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow",
           "Equal": "Equal", "Less": "Less", "Greater": "Greater"}


@lowering(*_BINARY)
def _binary(ctx, node):
    ctx.emit_one(node, _BINARY[node.op_type], [ctx.input_tensor(node, 0), ctx.input_tensor(node, 1)])


_VARIADIC = {"Max": "Max", "Min": "Min", "Sum": "Add"}


@lowering(*_VARIADIC)
def _variadic(ctx, node):
    ins = [ctx.tensor(n) for n in node.inputs if n]
    if len(ins) == 1:
        ctx.emit_one(node, "Identity", ins)
        return
    acc = ins[0]
    for i, t in enumerate(ins[1:], start=1):
        last = i == len(ins) - 1
        acc = ctx.emit_one(node, _VARIADIC[node.op_type], [acc, t], suffix=None if last else f"part{i}", final=last)


@lowering("Where")
def _where(ctx, node):
    ctx.emit_one(node, "Where", [ctx.input_tensor(node, i) for i in range(3)])


@lowering("Cast")
def _cast(ctx, node):
    to = dtype_from_onnx(int(node.attr("to")), node.describe())
    ctx.emit_one(node, "Cast", [ctx.input_tensor(node, 0)], {"to": to})


@lowering("Softmax", "LogSoftmax")
def _softmax(ctx, node):
    x = ctx.input_tensor(node, 0)
    rank = len(x.shape)
    axis = normalize_axes([int(node.attr("axis", 1 if node.opset < 13 else -1))], rank, node)[0]
    if node.opset >= 13 or axis == rank - 1:
        ctx.emit_one(node, node.op_type, [x], {"axis": axis})
        return
    # opset < 13: softmax over the input flattened to 2-D at `axis`
    flat = (int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis:], dtype=np.int64)))
    y = ctx.emit_one(node, "Reshape", [x], {"shape": flat}, suffix="flatten", final=False)
    y = ctx.emit_one(node, node.op_type, [y], {"axis": 1}, final=False)
    ctx.emit_one(node, "Reshape", [y], {"shape": x.shape}, suffix="unflatten")


@lowering("LayerNormalization")
def _layer_norm(ctx, node):
    x = ctx.input_tensor(node, 0)
    rank = len(x.shape)
    axis = normalize_axes([int(node.attr("axis", -1))], rank, node)[0]
    eps = float(node.attr("epsilon", 1e-5))
    axes = tuple(range(axis, rank))
    mean = ctx.emit_one(node, "ReduceMean", [x], {"axes": axes}, suffix="mean", final=False)
    d = ctx.emit_one(node, "Sub", [x, mean], suffix="center", final=False)
    sq = ctx.emit_one(node, "Mul", [d, d], suffix="square", final=False)
    var = ctx.emit_one(node, "ReduceMean", [sq], {"axes": axes}, suffix="var", final=False)
    var = ctx.emit_one(node, "Add", [var, ctx.const(f"{node.name}/epsilon", np.float32(eps), x.dtype)],
                       suffix="add_eps", final=False)
    std = ctx.emit_one(node, "Sqrt", [var], suffix="std", final=False)
    y = ctx.emit_one(node, "Div", [d, std], suffix="normalize", final=False)
    bias = ctx.input_tensor(node, 2)
    y = ctx.emit_one(node, "Mul", [y, ctx.input_tensor(node, 1)], final=bias is None)
    if bias is not None:
        ctx.emit_one(node, "Add", [y, bias], suffix="bias")


def _gelu_check(node: NodeView) -> str | None:
    approx = node.attr("approximate", "none")
    return None if approx == "none" else f"approximate={approx}"


@lowering("Gelu", check=_gelu_check)
def _gelu(ctx, node):
    x = ctx.input_tensor(node, 0)
    scaled = ctx.emit_one(node, "Mul", [x, ctx.const(f"{node.name}/inv_sqrt2", np.float32(1 / math.sqrt(2)), x.dtype)],
                          suffix="scale", final=False)
    e = ctx.emit_one(node, "Erf", [scaled], suffix="erf", final=False)
    e = ctx.emit_one(node, "Add", [e, ctx.const(f"{node.name}/one", np.float32(1), x.dtype)], suffix="add_one",
                     final=False)
    h = ctx.emit_one(node, "Mul", [x, ctx.const(f"{node.name}/half", np.float32(0.5), x.dtype)], suffix="half",
                     final=False)
    ctx.emit_one(node, "Mul", [h, e])


# ------------------------------------------------------------------ conv / dense
def _conv_check(node: NodeView) -> str | None:
    k = node.ints("kernel_shape")
    if k is not None and len(k) not in (1, 2):
        return f"{len(k)}-D kernel"
    return None


def _to_2d(ctx: ImportContext, node: NodeView, t: Tensor, what: str) -> Tensor:
    """A 3-D (N, C, L) tensor / weight viewed as 4-D (N, C, 1, L) for 1-D convolutions."""
    shape = t.shape[:2] + (1,) + t.shape[2:]
    if t.is_const:
        return ctx.const(f"{t.name}/2d", t.data.reshape(shape))
    return ctx.emit_one(node, "Reshape", [t], {"shape": shape}, suffix=f"{what}_2d", final=False)


@lowering("Conv", check=_conv_check)
def _conv(ctx, node):
    x, w, b = (ctx.input_tensor(node, i) for i in range(3))
    one_d = len(w.shape) == 3
    if len(w.shape) not in (3, 4) or len(x.shape) != len(w.shape):
        raise node.error(f"only 1-D and 2-D convolutions are supported (input {x.shape}, weight {w.shape})")
    if one_d:
        x, w = _to_2d(ctx, node, x, "input"), _to_2d(ctx, node, w, "weight")
    kernel = w.shape[2:]
    nd = 1 if one_d else 2

    def pair(name, default):
        v = node.ints(name, (default,) * nd)
        return ((1,) + v) if one_d and name != "pads" else v

    strides, dilations = pair("strides", 1), pair("dilations", 1)
    pads = node.ints("pads", (0,) * (2 * nd))
    if one_d:
        pads = (0, pads[0], 0, pads[1])
    ap = auto_pads(str(node.attr("auto_pad", "NOTSET")), x.shape[2:], kernel, strides, dilations, node)
    if ap is not None:
        pads = ap
    attrs = {"strides": strides, "dilations": dilations, "pads": pads, "group": int(node.attr("group", 1))}
    y = ctx.emit_one(node, "Conv", [x, w, b], attrs, final=not one_d)
    if one_d:
        ctx.emit_one(node, "Reshape", [y], {"shape": y.shape[:2] + y.shape[3:]}, suffix="output_1d")


@lowering("ConvTranspose", check=_spatial_only("transposed convolution"))
def _conv_transpose(ctx, node):
    x, w, b = (ctx.input_tensor(node, i) for i in range(3))
    if len(w.shape) != 4 or len(x.shape) != 4:
        raise node.error(f"only 2-D transposed convolutions are supported (input {x.shape}, weight {w.shape})")
    kernel = w.shape[2:]
    strides = node.ints("strides", (1, 1))
    dilations = node.ints("dilations", (1, 1))
    out_pad = list(node.ints("output_padding", (0, 0)))
    pads = node.ints("pads", (0, 0, 0, 0))
    auto_pad = str(node.attr("auto_pad", "NOTSET"))
    output_shape = node.ints("output_shape")
    if auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    elif output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        in_sizes = x.shape[2:]
        targets = output_shape[-2:] if output_shape is not None else tuple(i * s for i, s in zip(in_sizes, strides))
        begins, ends = [], []
        for i in range(2):
            full = strides[i] * (in_sizes[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1
            total = full - targets[i]
            if total < 0:  # the requested size needs extra rows at the end: that is output padding
                out_pad[i] -= total
                total = 0
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        pads = tuple(begins + ends)
    attrs = {"strides": strides, "dilations": dilations, "pads": pads, "group": int(node.attr("group", 1)),
             "output_padding": tuple(out_pad)}
    ctx.emit_one(node, "ConvTranspose", [x, w, b], attrs)


@lowering("Gemm")
def _gemm(ctx, node):
    a = ctx.input_tensor(node, 0)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    if trans_a:
        a = ctx.emit_one(node, "Transpose", [a], {"perm": (1, 0)}, suffix="transpose_a", final=False)
    b_name = node.input(1)
    c_name = node.input(2)
    n_out = ctx.shape_of(b_name)[0 if trans_b else 1]
    if ctx.is_dynamic(b_name):
        # a run-time right operand: a matrix product, not a layer with weights
        b = ctx.tensor(b_name)
        if trans_b:
            b = ctx.emit_one(node, "Transpose", [b], {"perm": (1, 0)}, suffix="transpose_b", final=False)
        y = ctx.emit_one(node, "MatMul", [a, b], final=alpha == 1.0 and c_name is None)
        if alpha != 1.0:
            y = ctx.emit_one(node, "Mul", [y, ctx.const(f"{node.name}/alpha", np.float32(alpha), y.dtype)],
                             suffix="alpha", final=c_name is None)
        bias = None
    else:
        if ctx.is_const(b_name):
            data = ctx.static[b_name]
            if trans_b and alpha == 1.0:
                weight = ctx.tensor(b_name)
            else:
                weight = ctx.const(f"{b_name}/gemm_weight", (data if trans_b else data.T) * np.float32(alpha))
        else:  # computed from constants (e.g. a Cast of float16 weights): fold_constants finishes it
            weight = ctx.tensor(b_name)
            if not trans_b:
                weight = ctx.emit_one(node, "Transpose", [weight], {"perm": (1, 0)}, suffix="transpose_b",
                                      final=False)
            if alpha != 1.0:
                weight = ctx.emit_one(node, "Mul", [weight, ctx.const(f"{node.name}/alpha", np.float32(alpha))],
                                      suffix="alpha", final=False)
        bias = None
        if c_name is not None and ctx.is_const(c_name):
            c = ctx.static[c_name]
            if c.size == 1 or c.shape in ((n_out,), (1, n_out)):
                if c.shape == (n_out,) and beta == 1.0:
                    bias = ctx.tensor(c_name)
                else:
                    bias = ctx.const(f"{c_name}/gemm_bias", np.broadcast_to(c.reshape(-1) * np.float32(beta),
                                                                           (n_out,)))
                c_name = None
        y = ctx.emit_one(node, "Gemm", [a, weight, bias], final=c_name is None)
    if c_name is not None:
        c = ctx.tensor(c_name)
        if beta != 1.0:
            c = ctx.emit_one(node, "Mul", [c, ctx.const(f"{node.name}/beta", np.float32(beta), c.dtype)],
                             suffix="beta", final=False)
        ctx.emit_one(node, "Add", [y, c], suffix="add_c")


@lowering("MatMul")
def _matmul(ctx, node):
    ctx.emit_one(node, "MatMul", [ctx.input_tensor(node, 0), ctx.input_tensor(node, 1)])


def _bn_check(node: NodeView) -> str | None:
    if int(node.attr("training_mode", 0)):
        return "training_mode=1"
    return None


@lowering("BatchNormalization", check=_bn_check)
def _batchnorm(ctx, node):
    ins = [ctx.input_tensor(node, i) for i in range(5)]
    ctx.emit(node, "BatchNormalization", ins, {"epsilon": float(node.attr("epsilon", 1e-5))},
             outputs=node.outputs[:1])


# ------------------------------------------------------------------ pooling / reductions
def _pool_check(node: NodeView) -> str | None:
    reason = _spatial_only("pooling")(node)
    if reason:
        return reason
    if node.op_type == "MaxPool" and len(node.outputs) > 1 and node.outputs[1]:
        return "Indices output"
    if node.op_type == "AveragePool" and any(d != 1 for d in node.ints("dilations", (1, 1))):
        return "dilations"
    return None


@lowering("MaxPool", "AveragePool", check=_pool_check)
def _pool(ctx, node):
    x = ctx.input_tensor(node, 0)
    kernel = node.ints("kernel_shape")
    if kernel is None or len(kernel) != 2 or len(x.shape) != 4:
        raise node.error(f"only 2-D pooling on NCHW input is supported (kernel {kernel}, input {x.shape})")
    strides = node.ints("strides", (1, 1))
    dilations = node.ints("dilations", (1, 1))
    pads = node.ints("pads", (0, 0, 0, 0))
    ap = auto_pads(str(node.attr("auto_pad", "NOTSET")), x.shape[2:], kernel, strides, dilations, node)
    attrs = {"kernel": kernel, "strides": strides, "pads": ap if ap is not None else pads,
             "ceil_mode": bool(node.attr("ceil_mode", 0))}
    if node.op_type == "MaxPool":
        attrs["dilations"] = dilations
    else:
        attrs["count_include_pad"] = bool(node.attr("count_include_pad", 0))
    ctx.emit(node, node.op_type, [x], attrs, outputs=node.outputs[:1])


@lowering("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, node):
    ctx.emit_one(node, node.op_type, [ctx.input_tensor(node, 0)])


@lowering("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", static=(1,))
def _reduce(ctx, node):
    x = ctx.input_tensor(node, 0)
    axes = axes_arg(node, REDUCE_AXES_INPUT_OPSET[node.op_type], ctx.getter(node, "axes"))
    if not axes and int(node.attr("noop_with_empty_axes", 0)):
        ctx.emit_one(node, "Identity", [x])
        return
    axes = None if not axes else normalize_axes(axes, len(x.shape), node)
    ctx.emit_one(node, node.op_type, [x], {"axes": axes, "keepdims": bool(node.attr("keepdims", 1))})


# ------------------------------------------------------------------ data movement
@lowering("Concat")
def _concat(ctx, node):
    ins = [ctx.tensor(n) for n in node.inputs if n]
    kept = [t for t in ins if t.size > 0] or ins[:1]  # exporters concatenate empty tensors
    ctx.emit_one(node, "Concat", kept, {"axis": int(node.attr("axis"))})


@lowering("Split", static=(1,))
def _split(ctx, node):
    x = ctx.input_tensor(node, 0)
    axis, sizes = split_sizes(node, x.shape, ctx.getter(node, "split"))
    ctx.emit(node, "Split", [x], {"axis": axis, "split": sizes}, outputs=node.outputs)


@lowering("Slice", static=(1, 2, 3, 4))
def _slice(ctx, node):
    x = ctx.input_tensor(node, 0)
    starts, ends, axes, steps = slice_args(node, x.shape, ctx.getter(node, "slice"))
    ctx.emit_one(node, "Slice", [x], {"starts": starts, "ends": ends, "axes": axes, "steps": steps})


@lowering("Reshape", static=(1,))
def _reshape(ctx, node):
    x = ctx.input_tensor(node, 0)
    target = node.attr("shape") if node.opset < 5 else ctx.static_input(node, 1, "target shape")
    if target is None:
        raise node.error("no target shape")
    ctx.emit_one(node, "Reshape", [x], {"shape": reshape_target(node, x.shape, np.asarray(target))})


@lowering("Flatten")
def _flatten(ctx, node):
    x = ctx.input_tensor(node, 0)
    ctx.emit_one(node, "Reshape", [x], {"shape": flatten_shape(node, x.shape)})


@lowering("Squeeze", static=(1,))
def _squeeze(ctx, node):
    x = ctx.input_tensor(node, 0)
    ctx.emit_one(node, "Reshape", [x], {"shape": squeeze_shape(node, x.shape, ctx.getter(node, "axes"))})


@lowering("Unsqueeze", static=(1,))
def _unsqueeze(ctx, node):
    x = ctx.input_tensor(node, 0)
    ctx.emit_one(node, "Reshape", [x], {"shape": unsqueeze_shape(node, x.shape, ctx.getter(node, "axes"))})


@lowering("Transpose")
def _transpose(ctx, node):
    x = ctx.input_tensor(node, 0)
    perm = node.ints("perm") or tuple(reversed(range(len(x.shape))))
    ctx.emit_one(node, "Transpose", [x], {"perm": normalize_axes(perm, len(x.shape), node)})


def _pad_check(node: NodeView) -> str | None:
    mode = node.attr("mode", "constant")
    return None if mode in ("constant", "reflect", "edge") else f"mode={mode}"


@lowering("Pad", static=(1, 2, 3), check=_pad_check)
def _pad(ctx, node):
    x = ctx.input_tensor(node, 0)
    rank = len(x.shape)
    pads, mode, value = pad_args(node, rank, ctx.getter(node, "pad"))
    grow = tuple(max(p, 0) for p in pads)
    crop = [min(p, 0) for p in pads]
    if not any(crop):
        ctx.emit_one(node, "Pad", [x], {"pads": grow, "mode": mode, "value": value})
        return
    if any(grow):
        x = ctx.emit_one(node, "Pad", [x], {"pads": grow, "mode": mode, "value": value}, final=False)
    # negative pads remove rows: a Slice
    axes = tuple(i for i in range(rank) if crop[i] or crop[i + rank])
    starts = tuple(-crop[i] for i in axes)
    ends = tuple(x.shape[i] + crop[i + rank] for i in axes)
    ctx.emit_one(node, "Slice", [x], {"starts": starts, "ends": ends, "axes": axes, "steps": (1,) * len(axes)},
                 suffix="crop" if any(grow) else None)


def _resize_check(node: NodeView) -> str | None:
    mode = str(node.attr("mode", "nearest"))
    if mode not in ("nearest", "linear", "bilinear"):
        return f"mode={mode}"
    ctm = node.attr("coordinate_transformation_mode")
    if ctm == "tf_crop_and_resize":
        return "coordinate_transformation_mode=tf_crop_and_resize"
    if int(node.attr("antialias", 0)) and mode != "nearest":
        return "antialias=1"
    policy = node.attr("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        return f"keep_aspect_ratio_policy={policy}"
    return None


@lowering("Resize", "Upsample", static=(1, 2, 3), check=_resize_check)
def _resize(ctx, node):
    x = ctx.input_tensor(node, 0)
    rank = len(x.shape)
    legacy = node.op_type == "Upsample" or node.opset < 11
    get = ctx.getter(node, "resize")
    if node.op_type == "Upsample":
        scales, sizes = attr_or_input(node, "scales", 1, 9, get), None
    elif node.opset < 11:
        scales, sizes = get(1), None
    else:
        scales, sizes = get(2), get(3)
    axes = node.ints("axes")
    axes = normalize_axes(axes, rank, node) if axes is not None else tuple(range(rank))
    size = list(x.shape)
    if sizes is not None and np.asarray(sizes).size:
        vals = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(vals) != len(axes):
            raise node.error(f"sizes {vals} do not match the {len(axes)} resized axes")
        for a, v in zip(axes, vals):
            size[a] = v
    elif scales is not None and np.asarray(scales).size:
        vals = [float(v) for v in np.asarray(scales).reshape(-1)]
        if len(vals) != len(axes):
            raise node.error(f"scales {vals} do not match the {len(axes)} resized axes")
        for a, s in zip(axes, vals):
            size[a] = int(math.floor(x.shape[a] * s + 1e-6))
            if abs(x.shape[a] * s - size[a]) > 1e-4:
                log.warning("%s: scale %g on size %d is not a whole output size; the IR resizes to %d "
                            "(sampling positions follow the size ratio)", node.describe(), s, x.shape[a], size[a])
    else:
        raise node.error("neither scales nor sizes given")
    mode = str(node.attr("mode", "nearest"))
    attrs = {
        "size": tuple(size),
        "mode": "linear" if mode == "bilinear" else mode,
        "coordinate_transformation_mode": "asymmetric" if legacy
        else str(node.attr("coordinate_transformation_mode", "half_pixel")),
        "nearest_mode": "floor" if legacy else str(node.attr("nearest_mode", "round_prefer_floor")),
        "cubic_coeff_a": float(node.attr("cubic_coeff_a", -0.75)),
    }
    ctx.emit_one(node, "Resize", [x], attrs)


@lowering("Gather")
def _gather(ctx, node):
    x = ctx.input_tensor(node, 0)
    axis = normalize_axes([int(node.attr("axis", 0))], len(x.shape), node)[0]
    idx_name = node.input(1)
    if ctx.is_const(idx_name):
        idx = ctx.static[idx_name].astype(np.int64)
        dim = x.shape[axis]
        if np.any(idx >= dim) or np.any(idx < -dim):
            raise node.error(f"indices out of range for axis {axis} of size {dim}")
        fixed = np.where(idx < 0, idx + dim, idx)
        indices = ctx.tensor(idx_name) if np.array_equal(fixed, ctx.static[idx_name]) \
            else ctx.const(f"{idx_name}/nonnegative", fixed)
    else:
        indices = ctx.tensor(idx_name)
    ctx.emit_one(node, "Gather", [x, indices], {"axis": axis})


@lowering("Expand", static=(1,))
def _expand(ctx, node):
    shape = ctx.static_input(node, 1, "target shape")
    ctx.emit_one(node, "Expand", [ctx.input_tensor(node, 0)], {"shape": tuple(int(d) for d in shape.reshape(-1))})


@lowering("Tile", static=(1,))
def _tile(ctx, node):
    reps = ctx.static_input(node, 1, "repeats")
    ctx.emit_one(node, "Tile", [ctx.input_tensor(node, 0)], {"repeats": tuple(int(r) for r in reps.reshape(-1))})


@lowering("DepthToSpace")
def _depth_to_space(ctx, node):
    ctx.emit_one(node, "DepthToSpace", [ctx.input_tensor(node, 0)],
                 {"blocksize": int(node.attr("blocksize")), "mode": str(node.attr("mode", "DCR"))})


@lowering("SpaceToDepth")
def _space_to_depth(ctx, node):
    ctx.emit_one(node, "SpaceToDepth", [ctx.input_tensor(node, 0)], {"blocksize": int(node.attr("blocksize"))})
