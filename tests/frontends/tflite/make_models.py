"""Build tiny single-op .tflite models with the flatbuffers builder (no TensorFlow needed).

`MODELS` maps a case name to a function returning the model's bytes. The
tests build them in memory; `python make_models.py OUT_DIR` writes them as
files (to look at in Netron or run elsewhere).
"""
from __future__ import annotations

import importlib
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import flatbuffers
import numpy as np
import tflite

_TYPES = {"FLOAT32": 0, "FLOAT16": 1, "INT32": 2, "UINT8": 3, "INT64": 4, "INT16": 7, "INT8": 9}
_NUMPY = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
          "INT64": np.int64, "INT16": np.int16, "INT8": np.int8}
# activation codes of TFLite's ActivationFunctionType
NONE, RELU, RELU_N1_TO_1, RELU6, TANH = 0, 1, 2, 3, 4
SAME, VALID = 0, 1


@dataclass
class T:
    """A tensor of a test model; `data` makes it a constant."""

    name: str
    shape: Sequence[int]
    type: str = "FLOAT32"
    data: np.ndarray | None = None
    scale: Sequence[float] | None = None
    zero_point: Sequence[int] | None = None
    axis: int = 0


@dataclass
class Op:
    """An operator: builtin name (or CUSTOM with custom_code), tensor names, options table and fields."""

    name: str
    inputs: Sequence[str | None]
    outputs: Sequence[str]
    options: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    custom_code: str = ""


def _module(name: str):
    return importlib.import_module(f"tflite.{name}")


def _vector(b: flatbuffers.Builder, arr: np.ndarray) -> int:
    return b.CreateNumpyVector(np.ascontiguousarray(arr))


def _bytes(b: flatbuffers.Builder, data: bytes) -> int:
    b.StartVector(1, len(data), 16)  # 16-byte aligned like the converter writes
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


def _options(b: flatbuffers.Builder, name: str, fields: dict[str, Any]) -> int:
    mod = _module(name)
    vectors = {k: _vector(b, np.asarray(v, dtype=np.int32)) for k, v in fields.items() if isinstance(v, (list, tuple))}
    getattr(mod, f"{name}Start")(b)
    for key, value in fields.items():
        getattr(mod, f"{name}Add{key}")(b, vectors.get(key, value))
    return getattr(mod, f"{name}End")(b)


def build_model(tensors: Sequence[T], ops: Sequence[Op], inputs: Sequence[str], outputs: Sequence[str]) -> bytes:
    """Serialize one subgraph as a TFLite flatbuffer (schema version 3)."""
    b = flatbuffers.Builder(1024)
    index = {t.name: i for i, t in enumerate(tensors)}
    op_names = {k: v for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes: list[tuple[str, str]] = []
    for op in ops:
        if (op.name, op.custom_code) not in codes:
            codes.append((op.name, op.custom_code))

    # buffers: 0 is the empty sentinel, then one per constant
    buffer_data: list[bytes | None] = [None]
    tensor_buffer = []
    for t in tensors:
        if t.data is None:
            tensor_buffer.append(0)
        else:
            arr = np.asarray(t.data, dtype=_NUMPY[t.type]).reshape(tuple(t.shape))
            buffer_data.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
            tensor_buffer.append(len(buffer_data) - 1)
    buf_offsets = []
    for data in buffer_data:
        data_off = _bytes(b, data) if data else None
        _module("Buffer").BufferStart(b)
        if data_off is not None:
            _module("Buffer").BufferAddData(b, data_off)
        buf_offsets.append(_module("Buffer").BufferEnd(b))

    tensor_offsets = []
    for t, buf in zip(tensors, tensor_buffer):
        name = b.CreateString(t.name)
        shape = _vector(b, np.asarray(t.shape, dtype=np.int32))
        quant = None
        if t.scale is not None:
            qm = _module("QuantizationParameters")
            scale = _vector(b, np.asarray(t.scale, dtype=np.float32))
            zp = _vector(b, np.asarray(t.zero_point if t.zero_point is not None else [0] * len(t.scale),
                                       dtype=np.int64))
            qm.QuantizationParametersStart(b)
            qm.QuantizationParametersAddScale(b, scale)
            qm.QuantizationParametersAddZeroPoint(b, zp)
            qm.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = qm.QuantizationParametersEnd(b)
        tm = _module("Tensor")
        tm.TensorStart(b)
        tm.TensorAddShape(b, shape)
        tm.TensorAddType(b, _TYPES[t.type])
        tm.TensorAddBuffer(b, buf)
        tm.TensorAddName(b, name)
        if quant is not None:
            tm.TensorAddQuantization(b, quant)
        tensor_offsets.append(tm.TensorEnd(b))

    om = _module("Operator")
    op_offsets = []
    for op in ops:
        ins = _vector(b, np.asarray([-1 if n is None else index[n] for n in op.inputs], dtype=np.int32))
        outs = _vector(b, np.asarray([index[n] for n in op.outputs], dtype=np.int32))
        opts = _options(b, op.options, op.fields) if op.options else None
        om.OperatorStart(b)
        om.OperatorAddOpcodeIndex(b, codes.index((op.name, op.custom_code)))
        om.OperatorAddInputs(b, ins)
        om.OperatorAddOutputs(b, outs)
        if opts is not None:
            om.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options))
            om.OperatorAddBuiltinOptions(b, opts)
        op_offsets.append(om.OperatorEnd(b))

    def table_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    sm = _module("SubGraph")
    t_vec = table_vector(tensor_offsets)
    o_vec = table_vector(op_offsets)
    in_vec = _vector(b, np.asarray([index[n] for n in inputs], dtype=np.int32))
    out_vec = _vector(b, np.asarray([index[n] for n in outputs], dtype=np.int32))
    sg_name = b.CreateString("main")
    sm.SubGraphStart(b)
    sm.SubGraphAddTensors(b, t_vec)
    sm.SubGraphAddInputs(b, in_vec)
    sm.SubGraphAddOutputs(b, out_vec)
    sm.SubGraphAddOperators(b, o_vec)
    sm.SubGraphAddName(b, sg_name)
    subgraph = sm.SubGraphEnd(b)

    cm = _module("OperatorCode")
    code_offsets = []
    for name, custom in codes:
        code = op_names[name]
        custom_off = b.CreateString(custom) if custom else None
        cm.OperatorCodeStart(b)
        cm.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        cm.OperatorCodeAddBuiltinCode(b, code)
        cm.OperatorCodeAddVersion(b, 1)
        if custom_off is not None:
            cm.OperatorCodeAddCustomCode(b, custom_off)
        code_offsets.append(cm.OperatorCodeEnd(b))

    mm = _module("Model")
    codes_vec = table_vector(code_offsets)
    sg_vec = table_vector([subgraph])
    buf_vec = table_vector(buf_offsets)
    desc = b.CreateString("npuc test model")
    mm.ModelStart(b)
    mm.ModelAddVersion(b, 3)
    mm.ModelAddOperatorCodes(b, codes_vec)
    mm.ModelAddSubgraphs(b, sg_vec)
    mm.ModelAddDescription(b, desc)
    mm.ModelAddBuffers(b, buf_vec)
    model = mm.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


# ------------------------------------------------------------------ cases
_RNG = np.random.default_rng(1234)


def _w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


def single(op_name: str, in_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], options: str | None = None,
           fields: dict[str, Any] | None = None, consts: Sequence[T] = (), const_first: bool = False) -> bytes:
    """A model with one operator: activation inputs x0, x1, ... then constants, output y."""
    acts = [T(f"x{i}", s) for i, s in enumerate(in_shapes)]
    out = T("y", out_shape)
    names = [t.name for t in consts] + [t.name for t in acts] if const_first else \
        [t.name for t in acts] + [t.name for t in consts]
    return build_model([*acts, *consts, out], [Op(op_name, names, ["y"], options, fields or {})],
                       [t.name for t in acts], ["y"])


def conv(k: int, cin: int, cout: int, stride: int, padding: int, act: int, dil: int = 1, hw: int = 9) -> bytes:
    eff = dil * (k - 1) + 1
    out = -(-hw // stride) if padding == SAME else (hw - eff) // stride + 1
    return single("CONV_2D", [(1, hw, hw, cin)], (1, out, out, cout), "Conv2DOptions",
                  {"Padding": padding, "StrideW": stride, "StrideH": stride, "FusedActivationFunction": act,
                   "DilationWFactor": dil, "DilationHFactor": dil},
                  [T("w", (cout, k, k, cin), data=_w(cout, k, k, cin)), T("b", (cout,), data=_w(cout))])


def depthwise(k: int, c: int, mult: int, stride: int, padding: int, act: int, hw: int = 8) -> bytes:
    out = -(-hw // stride) if padding == SAME else (hw - k) // stride + 1
    return single("DEPTHWISE_CONV_2D", [(1, hw, hw, c)], (1, out, out, c * mult), "DepthwiseConv2DOptions",
                  {"Padding": padding, "StrideW": stride, "StrideH": stride, "DepthMultiplier": mult,
                   "FusedActivationFunction": act, "DilationWFactor": 1, "DilationHFactor": 1},
                  [T("w", (1, k, k, c * mult), data=_w(1, k, k, c * mult)), T("b", (c * mult,), data=_w(c * mult))])


def transpose_conv(k: int, stride: int, padding: int, hw: int = 5, cin: int = 3, cout: int = 4,
                   bias: bool = True) -> bytes:
    out = hw * stride if padding == SAME else (hw - 1) * stride + k
    tensors = [T("x0", (1, hw, hw, cin)), T("shape", (4,), "INT32", np.array([1, out, out, cout])),
               T("w", (cout, k, k, cin), data=_w(cout, k, k, cin)), T("y", (1, out, out, cout))]
    ins: list[str | None] = ["shape", "w", "x0"]
    if bias:
        tensors.append(T("b", (cout,), data=_w(cout)))
        ins.append("b")
    return build_model(tensors, [Op("TRANSPOSE_CONV", ins, ["y"], "TransposeConvOptions",
                                    {"Padding": padding, "StrideW": stride, "StrideH": stride})], ["x0"], ["y"])


def fully_connected(in_shape: Sequence[int], units: int, keep: bool, act: int = NONE) -> bytes:
    feat = in_shape[-1]
    out = (*in_shape[:-1], units) if keep else (int(np.prod(in_shape)) // feat, units)
    return single("FULLY_CONNECTED", [in_shape], out, "FullyConnectedOptions",
                  {"FusedActivationFunction": act, "KeepNumDims": keep},
                  [T("w", (units, feat), data=_w(units, feat)), T("b", (units,), data=_w(units))])


def binary(name: str, options: str | None, shape_b: Sequence[int] | None, const_b: Sequence[int] | None = None,
           act: int = NONE, shape: Sequence[int] = (1, 4, 5, 3)) -> bytes:
    fields = {"FusedActivationFunction": act} if options else {}
    if const_b is not None:
        data = _w(*const_b) + (2.0 if name == "DIV" else 0.0)
        return single(name, [shape], shape, options, fields, [T("c", const_b, data=data)])
    return single(name, [shape, shape_b], shape, options, fields)


def unary(name: str, options: str | None = None, fields: dict[str, Any] | None = None,
          shape: Sequence[int] = (1, 4, 5, 3)) -> bytes:
    return single(name, [shape], shape, options, fields)


def pool(name: str, k: int, stride: int, padding: int, act: int = NONE, hw: int = 9) -> bytes:
    out = -(-hw // stride) if padding == SAME else (hw - k) // stride + 1
    return single(name, [(1, hw, hw, 3)], (1, out, out, 3), "Pool2DOptions",
                  {"Padding": padding, "StrideW": stride, "StrideH": stride, "FilterWidth": k, "FilterHeight": k,
                   "FusedActivationFunction": act})


def reduce(name: str, axes: Sequence[int], keep: bool, shape: Sequence[int] = (1, 4, 5, 3)) -> bytes:
    out = [1 if i in [a % len(shape) for a in axes] else d for i, d in enumerate(shape)]
    if not keep:
        out = [d for i, d in enumerate(shape) if i not in [a % len(shape) for a in axes]]
    return single(name, [shape], out, "ReducerOptions", {"KeepDims": keep},
                  [T("axes", (len(axes),), "INT32", np.array(axes))])


def strided_slice(shape: Sequence[int], begin, end, strides, out_shape, **masks: int) -> bytes:
    n = len(begin)
    return single("STRIDED_SLICE", [shape], out_shape, "StridedSliceOptions", masks,
                  [T("begin", (n,), "INT32", np.array(begin)), T("end", (n,), "INT32", np.array(end)),
                   T("strides", (n,), "INT32", np.array(strides))])


def resize(name: str, size: Sequence[int], align: bool, half: bool, hw: Sequence[int] = (5, 7)) -> bytes:
    options = "ResizeBilinearOptions" if name == "RESIZE_BILINEAR" else "ResizeNearestNeighborOptions"
    return single(name, [(1, *hw, 3)], (1, *size, 3), options, {"AlignCorners": align, "HalfPixelCenters": half},
                  [T("size", (2,), "INT32", np.array(size))])


def float16_conv() -> bytes:
    """float16 weights behind DEQUANTIZE, as the MediaPipe models store them."""
    w = _w(4, 3, 3, 3).astype(np.float16)
    tensors = [T("x0", (1, 6, 6, 3)), T("w16", (4, 3, 3, 3), "FLOAT16", w), T("w", (4, 3, 3, 3)),
               T("b16", (4,), "FLOAT16", _w(4).astype(np.float16)), T("b", (4,)), T("y", (1, 6, 6, 4))]
    ops = [Op("DEQUANTIZE", ["w16"], ["w"]), Op("DEQUANTIZE", ["b16"], ["b"]),
           Op("CONV_2D", ["x0", "w", "b"], ["y"], "Conv2DOptions",
              {"Padding": SAME, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": RELU})]
    return build_model(tensors, ops, ["x0"], ["y"])


def int8_weight_dequantize() -> bytes:
    """int8 per-channel weights behind DEQUANTIZE (weight-only quantization)."""
    wf = _w(4, 3, 3, 3)
    scale = np.abs(wf).reshape(4, -1).max(axis=1) / 127
    q = np.clip(np.round(wf / scale[:, None, None, None]), -127, 127).astype(np.int8)
    tensors = [T("x0", (1, 6, 6, 3)), T("wq", (4, 3, 3, 3), "INT8", q, scale.tolist(), [0] * 4, 0),
               T("w", (4, 3, 3, 3)), T("b", (4,), data=_w(4)), T("y", (1, 6, 6, 4))]
    ops = [Op("DEQUANTIZE", ["wq"], ["w"]),
           Op("CONV_2D", ["x0", "w", "b"], ["y"], "Conv2DOptions",
              {"Padding": SAME, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": NONE})]
    return build_model(tensors, ops, ["x0"], ["y"])


#: int8 model parameters, shared with the tests that check the imported encodings
INT8_IN = (0.02, -3)
INT8_OUT = (0.05, 7)


def int8_conv() -> bytes:
    """A fully int8 model: QUANTIZE -> CONV_2D (int8 per-channel weights, int32 bias) -> DEQUANTIZE."""
    wf = _w(4, 3, 3, 3, scale=0.3)
    w_scale = np.abs(wf).reshape(4, -1).max(axis=1) / 127
    wq = np.clip(np.round(wf / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    b_scale = INT8_IN[0] * w_scale
    bq = np.round(_w(4) / b_scale).astype(np.int32)
    tensors = [
        T("x0", (1, 6, 6, 3)),
        T("xq", (1, 6, 6, 3), "INT8", None, [INT8_IN[0]], [INT8_IN[1]]),
        T("wq", (4, 3, 3, 3), "INT8", wq, w_scale.tolist(), [0] * 4, 0),
        T("bq", (4,), "INT32", bq, b_scale.tolist(), [0] * 4, 0),
        T("yq", (1, 6, 6, 4), "INT8", None, [INT8_OUT[0]], [INT8_OUT[1]]),
        T("y", (1, 6, 6, 4)),
    ]
    ops = [Op("QUANTIZE", ["x0"], ["xq"]),
           Op("CONV_2D", ["xq", "wq", "bq"], ["yq"], "Conv2DOptions",
              {"Padding": SAME, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": RELU}),
           Op("DEQUANTIZE", ["yq"], ["y"])]
    return build_model(tensors, ops, ["x0"], ["y"])


def custom_op() -> bytes:
    """A model with a custom operator between two builtins (import must name it)."""
    tensors = [T("x0", (1, 4, 4, 3)), T("a", (1, 4, 4, 3)), T("b", (1, 4, 4, 3)), T("y", (1, 4, 4, 3))]
    ops = [Op("RELU", ["x0"], ["a"]), Op("CUSTOM", ["a"], ["b"], custom_code="MyFancyOp"),
           Op("CUSTOM", ["b"], ["y"], custom_code="MyFancyOp")]
    return build_model(tensors, ops, ["x0"], ["y"])


def layout_chain() -> bytes:
    """conv -> reshape -> fully connected + mean/concat mixing layouts (exercises Transpose insertion)."""
    tensors = [T("x0", (1, 6, 6, 3)), T("w", (4, 3, 3, 3), data=_w(4, 3, 3, 3)), T("b", (4,), data=_w(4)),
               T("c", (1, 6, 6, 4)), T("shape", (2,), "INT32", np.array([1, 144])), T("flat", (1, 144)),
               T("fw", (5, 144), data=_w(5, 144, scale=0.1)), T("y", (1, 5)),
               T("axes", (2,), "INT32", np.array([1, 2])), T("m", (1, 4)), T("y2", (1, 9))]
    ops = [Op("CONV_2D", ["x0", "w", "b"], ["c"], "Conv2DOptions",
              {"Padding": SAME, "StrideW": 1, "StrideH": 1, "FusedActivationFunction": RELU6}),
           Op("RESHAPE", ["c", "shape"], ["flat"]),
           Op("FULLY_CONNECTED", ["flat", "fw", None], ["y"], "FullyConnectedOptions", {}),
           Op("MEAN", ["c", "axes"], ["m"], "ReducerOptions", {"KeepDims": False}),
           Op("CONCATENATION", ["y", "m"], ["y2"], "ConcatenationOptions", {"Axis": 1})]
    return build_model(tensors, ops, ["x0"], ["y2"])


S = (1, 4, 5, 3)
#: case name -> (builder, TFLite operators it covers)
MODELS: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "conv_same_relu6_s2": (lambda: conv(3, 3, 4, 2, SAME, RELU6), ("CONV_2D",)),
    "conv_valid_dilated_relu": (lambda: conv(3, 2, 5, 1, VALID, RELU, dil=2), ("CONV_2D",)),
    "conv_1x1_tanh": (lambda: conv(1, 3, 4, 1, SAME, TANH), ("CONV_2D",)),
    "conv_relu_n1_to_1": (lambda: conv(3, 3, 2, 1, SAME, RELU_N1_TO_1, hw=6), ("CONV_2D",)),
    "conv_grouped": (lambda: single("CONV_2D", [(1, 6, 6, 4)], (1, 6, 6, 6), "Conv2DOptions",
                                    {"Padding": SAME, "StrideW": 1, "StrideH": 1},
                                    [T("w", (6, 3, 3, 2), data=_w(6, 3, 3, 2)), T("b", (6,), data=_w(6))]),
                     ("CONV_2D",)),
    "depthwise_mult2": (lambda: depthwise(3, 3, 2, 1, SAME, NONE), ("DEPTHWISE_CONV_2D",)),
    "depthwise_s2_relu": (lambda: depthwise(3, 4, 1, 2, SAME, RELU, hw=9), ("DEPTHWISE_CONV_2D",)),
    "depthwise_valid": (lambda: depthwise(5, 2, 1, 1, VALID, RELU6), ("DEPTHWISE_CONV_2D",)),
    "transpose_conv_same_s2": (lambda: transpose_conv(3, 2, SAME), ("TRANSPOSE_CONV",)),
    "transpose_conv_same_k4": (lambda: transpose_conv(4, 2, SAME, bias=False), ("TRANSPOSE_CONV",)),
    "transpose_conv_valid": (lambda: transpose_conv(3, 2, VALID), ("TRANSPOSE_CONV",)),
    "fc_2d_relu": (lambda: fully_connected((2, 6), 4, False, RELU), ("FULLY_CONNECTED",)),
    "fc_keep_dims": (lambda: fully_connected((1, 3, 6), 4, True), ("FULLY_CONNECTED",)),
    "fc_flatten_4d": (lambda: fully_connected((1, 2, 2, 6), 4, False), ("FULLY_CONNECTED",)),
    "add_const_relu": (lambda: binary("ADD", "AddOptions", None, (3,), RELU), ("ADD",)),
    "add_two_inputs": (lambda: binary("ADD", "AddOptions", S), ("ADD",)),
    "sub_two_inputs_relu6": (lambda: binary("SUB", "SubOptions", S, act=RELU6), ("SUB",)),
    "mul_const_4d": (lambda: binary("MUL", "MulOptions", None, (1, 1, 1, 3)), ("MUL",)),
    "div_const": (lambda: binary("DIV", "DivOptions", None, (1, 5, 3)), ("DIV",)),
    "maximum": (lambda: binary("MAXIMUM", None, S), ("MAXIMUM",)),
    "minimum_const": (lambda: binary("MINIMUM", None, None, (3,)), ("MINIMUM",)),
    "relu": (lambda: unary("RELU"), ("RELU",)),
    "relu6": (lambda: unary("RELU6"), ("RELU6",)),
    "relu_n1_to_1": (lambda: unary("RELU_N1_TO_1"), ("RELU_N1_TO_1",)),
    "relu_0_to_1": (lambda: unary("RELU_0_TO_1"), ("RELU_0_TO_1",)),
    "logistic": (lambda: unary("LOGISTIC"), ("LOGISTIC",)),
    "tanh": (lambda: unary("TANH"), ("TANH",)),
    "hard_swish": (lambda: unary("HARD_SWISH"), ("HARD_SWISH",)),
    "exp": (lambda: unary("EXP", "ExpOptions"), ("EXP",)),
    "abs": (lambda: unary("ABS", "AbsOptions"), ("ABS",)),
    "neg": (lambda: unary("NEG", "NegOptions"), ("NEG",)),
    "sqrt": (lambda: unary("SQRT"), ("SQRT",)),
    "leaky_relu": (lambda: unary("LEAKY_RELU", "LeakyReluOptions", {"Alpha": 0.15}), ("LEAKY_RELU",)),
    "prelu": (lambda: single("PRELU", [S], S, consts=[T("alpha", (1, 1, 3), data=_w(1, 1, 3))]), ("PRELU",)),
    "max_pool_same": (lambda: pool("MAX_POOL_2D", 3, 2, SAME), ("MAX_POOL_2D",)),
    "max_pool_valid_relu": (lambda: pool("MAX_POOL_2D", 2, 2, VALID, RELU, hw=8), ("MAX_POOL_2D",)),
    "avg_pool_same": (lambda: pool("AVERAGE_POOL_2D", 3, 2, SAME), ("AVERAGE_POOL_2D",)),
    "avg_pool_valid": (lambda: pool("AVERAGE_POOL_2D", 2, 1, VALID, hw=5), ("AVERAGE_POOL_2D",)),
    "mean_hw_keep": (lambda: reduce("MEAN", (1, 2), True), ("MEAN",)),
    "mean_c_drop": (lambda: reduce("MEAN", (-1,), False), ("MEAN",)),
    "sum_w_drop": (lambda: reduce("SUM", (2,), False), ("SUM",)),
    "reduce_max_hw": (lambda: reduce("REDUCE_MAX", (1, 2), True), ("REDUCE_MAX",)),
    "softmax_beta": (lambda: unary("SOFTMAX", "SoftmaxOptions", {"Beta": 0.5}, (2, 7)), ("SOFTMAX",)),
    "softmax_4d": (lambda: unary("SOFTMAX", "SoftmaxOptions", {"Beta": 1.0}), ("SOFTMAX",)),
    "concat_channels": (lambda: single("CONCATENATION", [S, (1, 4, 5, 2)], (1, 4, 5, 5), "ConcatenationOptions",
                                       {"Axis": 3}), ("CONCATENATION",)),
    "concat_const_h": (lambda: single("CONCATENATION", [S], (1, 6, 5, 3), "ConcatenationOptions", {"Axis": -3},
                                      [T("c", (1, 2, 5, 3), data=_w(1, 2, 5, 3))]), ("CONCATENATION",)),
    "reshape_4d_to_3d": (lambda: single("RESHAPE", [S], (1, 20, 3), consts=[
        T("shape", (3,), "INT32", np.array([1, -1, 3]))]), ("RESHAPE",)),
    "squeeze": (lambda: single("SQUEEZE", [(1, 1, 5, 3)], (1, 5, 3), "SqueezeOptions",
                               {"SqueezeDims": [1]}), ("SQUEEZE",)),
    "expand_dims": (lambda: single("EXPAND_DIMS", [(2, 5, 3)], (2, 5, 1, 3), consts=[
        T("axis", (1,), "INT32", np.array([2]))]), ("EXPAND_DIMS",)),
    "transpose": (lambda: single("TRANSPOSE", [S], (1, 3, 4, 5), consts=[
        T("perm", (4,), "INT32", np.array([0, 3, 1, 2]))]), ("TRANSPOSE",)),
    "transpose_3d": (lambda: single("TRANSPOSE", [(2, 5, 3)], (3, 2, 5), consts=[
        T("perm", (3,), "INT32", np.array([2, 0, 1]))]), ("TRANSPOSE",)),
    "pad": (lambda: single("PAD", [S], (1, 7, 6, 3), consts=[
        T("pads", (4, 2), "INT32", np.array([[0, 0], [1, 2], [0, 1], [0, 0]]))]), ("PAD",)),
    "padv2": (lambda: single("PADV2", [S], (1, 4, 7, 5), consts=[
        T("pads", (4, 2), "INT32", np.array([[0, 0], [0, 0], [2, 0], [1, 1]])),
        T("value", (1,), data=np.array([0.75]))]), ("PADV2",)),
    "strided_slice_masks": (lambda: strided_slice(S, [0, 1, -1, 0], [0, 4, 0, 2], [1, 2, -2, 1], (1, 2, 3, 2),
                                                  BeginMask=1, EndMask=5), ("STRIDED_SLICE",)),
    "strided_slice_shrink": (lambda: strided_slice(S, [0, 0, 2, 1], [1, 4, 3, 3], [1, 1, 1, 1], (4, 2),
                                                   ShrinkAxisMask=5), ("STRIDED_SLICE",)),
    "strided_slice_ellipsis_newaxis": (lambda: strided_slice(S, [0, 0, 1], [0, 0, 3], [1, 1, 1], (1, 4, 5, 1, 2),
                                                             EllipsisMask=1, NewAxisMask=2), ("STRIDED_SLICE",)),
    "resize_bilinear_plain": (lambda: resize("RESIZE_BILINEAR", (9, 11), False, False), ("RESIZE_BILINEAR",)),
    "resize_bilinear_align": (lambda: resize("RESIZE_BILINEAR", (9, 11), True, False), ("RESIZE_BILINEAR",)),
    "resize_bilinear_half": (lambda: resize("RESIZE_BILINEAR", (10, 14), False, True), ("RESIZE_BILINEAR",)),
    "resize_nearest_plain": (lambda: resize("RESIZE_NEAREST_NEIGHBOR", (9, 11), False, False),
                             ("RESIZE_NEAREST_NEIGHBOR",)),
    "resize_nearest_align": (lambda: resize("RESIZE_NEAREST_NEIGHBOR", (9, 11), True, False),
                             ("RESIZE_NEAREST_NEIGHBOR",)),
    "resize_nearest_half": (lambda: resize("RESIZE_NEAREST_NEIGHBOR", (10, 13), False, True),
                            ("RESIZE_NEAREST_NEIGHBOR",)),
    "depth_to_space": (lambda: single("DEPTH_TO_SPACE", [(1, 3, 4, 8)], (1, 6, 8, 2), "DepthToSpaceOptions",
                                      {"BlockSize": 2}), ("DEPTH_TO_SPACE",)),
    "space_to_depth": (lambda: single("SPACE_TO_DEPTH", [(1, 4, 6, 2)], (1, 2, 3, 8), "SpaceToDepthOptions",
                                      {"BlockSize": 2}), ("SPACE_TO_DEPTH",)),
    "dequantize_float16": (float16_conv, ("DEQUANTIZE", "CONV_2D")),
    "dequantize_int8_weights": (int8_weight_dequantize, ("DEQUANTIZE", "CONV_2D")),
    "layout_chain": (layout_chain, ("CONV_2D", "RESHAPE", "FULLY_CONNECTED", "MEAN", "CONCATENATION")),
}

#: models whose comparison with LiteRT is not at float precision (tested separately)
SPECIAL: dict[str, Callable[[], bytes]] = {"int8_conv": int8_conv, "custom_op": custom_op}


def build(name: str) -> bytes:
    """The bytes of one case (weights seeded by the case name, so every build is identical)."""
    global _RNG
    _RNG = np.random.default_rng(zlib.crc32(name.encode()))
    fn = MODELS[name][0] if name in MODELS else SPECIAL[name]
    return fn()


def main(argv: Sequence[str]) -> int:
    out = Path(argv[0] if argv else "tflite_models")
    out.mkdir(parents=True, exist_ok=True)
    for name, fn in {**{k: v[0] for k, v in MODELS.items()}, **SPECIAL}.items():
        (out / f"{name}.tflite").write_bytes(build(name))
    print(f"wrote {len(MODELS) + len(SPECIAL)} models to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
