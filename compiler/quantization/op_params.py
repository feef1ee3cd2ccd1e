"""The ONE derivation of the integer constants of a quantized op (docs/quantized-ir.md).

`derive_op_params(graph, op)` reads an op's kind, attributes and its tensors'
`QuantParams` (plus integer constants such as the bias) and returns every
integer constant its integer kernel needs. The numpy reference executor
(quantized mode) and the NPU backend's `lower` both call it; the binary stores
the result and the numba simulator uses only what the binary stores.

Weights stay graph constants (they are the op's inputs); everything else a
kernel needs is here. All values are numpy arrays: int64 for integers, float64
only for the real scale of Quantize/Dequantize (float <-> integer boundaries).

Parameter names by family (``[k]`` = one entry per input, ``[C]`` per output channel
or ``[1]`` per tensor):

* ``mac`` (Conv, ConvTranspose, Gemm, MatMul): ``input_zero_point[k]`` (k=1 with a
  constant weight, 2 for MatMul of two activations), ``weight_zero_point[1]`` (0),
  ``multiplier[C]``/``shift[C]`` for ``s_in*s_w[c]/s_out``, ``output_zero_point[1]``,
  ``clamp_min[1|C]``/``clamp_max[1|C]`` (output range with the fused activation; per output
  channel along ``channel_axis`` when the fused clip has per-channel bounds),
  ``bias_words[W, C]`` and ``bias_shift[W]`` (the accumulator adds
  ``sum_w bias_words[w] << bias_shift[w]``; W = 0 without bias, 1 for a single-word
  bias, 2 for a double-scale bias), ``acc_bits[1]`` (32 or 64), ``channel_axis[1]``
  (axis of the output that `multiplier` runs along: 1 for convs, -1 for Gemm/MatMul).
  A layer with ``requantization="float32"`` has ``requantization[1] = 1`` and ``multiplier``/``shift``
  holding its float32 multiplier exactly (docs/numerics.md section 6a); no parameter means 0 (integer).
* ``rescale`` (data movement, MaxPool, GlobalMaxPool, ReduceMax/Min, Relu, Clip, Requantize,
  Resize nearest, Pad, Identity): ``input_zero_point[1]``, ``multiplier[1]``/``shift[1]``
  for ``s_in/s_out``, ``output_zero_point[1]``, ``clamp_min[1]``/``clamp_max[1]``,
  ``identity[1]`` (1 when input and output encodings are equal: pure data movement);
  Pad adds ``pad_value[1]`` (the pad constant in the input's encoding).
* ``average`` (AveragePool, GlobalAveragePool, ReduceMean, ReduceSum): ``input_zero_point[1]``,
  ``multiplier``/``shift`` for ``s_in/(s_out*count)`` (shape [1], or [OH, OW] when
  border windows count fewer inputs), ``output_zero_point``, ``clamp_min``, ``clamp_max``.
  An AveragePool with ``rounding="half_away_from_zero"`` (TFLite's int8 kernel) instead has
  ``multiplier[1]``/``shift[1]`` for ``s_in/s_out``, ``divisor`` (the window counts, [1] or
  [OH, OW]) and ``rounding[1] = 1``; no ``rounding`` parameter means 0 (half up).
  A ReduceMean with ``rounding="tflite_mean"``/``"tflite_mean_hw"`` (TFLite's int8 MEAN
  kernels) has ``rounding[1] = 2``, ``sum_offset[1]`` (added to the centered sum),
  ``multiplier[1]``/``shift[1]`` as TFLite derives them, and ``output_zero_point`` holding
  TFLite's output offset.
* ``add`` (Add, Sub): ``left_shift[1]``, ``input_zero_point[2]``, ``input_multiplier[2]``,
  ``input_shift[2]``, ``multiplier[1]``, ``shift[1]``, ``output_zero_point``, clamps.
* ``mul`` (Mul): ``input_zero_point[2]``, ``multiplier[1]``, ``shift[1]``, ``output_zero_point``, clamps.
* ``div`` (Div by a positive scalar constant): the ``rescale`` set with ``s_a/(b*s_out)``.
* ``select`` (Max, Min of two tensors; Concat of k): ``input_zero_point[k]``,
  ``input_multiplier[k]``, ``input_shift[k]`` (each input to the output encoding),
  ``output_zero_point[1]``, clamps, ``identity[k]``.
* ``lut`` (Sigmoid, Tanh, SiLU, HardSwish, HardSigmoid, LeakyRelu, Exp, Log, ...):
  ``lut[2**bits_in]`` with ``q_out = lut[q_in - qmin_in]``.
* ``softmax``: ``exp_table[2**bits_in]`` (indexed by ``max(q) - q``), ``output_bits[1]``,
  ``output_zero_point[1]``, ``clamp_min[1]``, ``clamp_max[1]``; the output grid is fixed
  (scale ``2**-bits_out``, zero point qmin).
* ``quantize``: ``scale[1]`` (float64), ``zero_point[1]``, ``qmin[1]``, ``qmax[1]``;
  ``dequantize``: ``scale[1]`` (float64), ``zero_point[1]``; ``requantize``: the rescale set.
* ``prelu`` (PRelu with a constant slope): ``input_zero_point[1]``, ``multiplier[1]``/``shift[1]``
  for ``s_in/s_out`` (the branch ``q >= zp_in``), ``negative_multiplier[S]``/``negative_shift[S]``
  for ``|a| s_in/s_out`` and ``negative_sign[S]`` (-1 or +1) per slope value ``a``, where ``S`` is
  the slope's shape left-padded with 1s to the input's rank (it broadcasts against the input),
  ``output_zero_point[1]``, ``clamp_min[1]``, ``clamp_max[1]``.
* ``resize_linear`` (Resize with mode linear; the axes before the last two keep their size):
  ``frac_bits[1]`` (F), ``row_index[2, OH]``/``row_weight[OH]`` (low/high source rows along axis -2
  and the high row's weight in ``[0, 2**F]``), ``col_index[2, OW]``/``col_weight[OW]`` (same along
  axis -1), ``input_zero_point[1]``, ``multiplier[1]``/``shift[1]`` for ``s_in/(s_out*2**(2F))``,
  ``output_zero_point[1]``, ``clamp_min[1]``, ``clamp_max[1]``. With ``rounding="tflite_bilinear"``
  (TFLite's int8 kernel; equal 8-bit encodings) the taps are TFLite's (F = 10) and ``rounding[1] = 1``
  (raw-code sum rounded half away from zero); no ``rounding`` means 0. A nearest Resize has the rescale set.
* ``float16`` (float16 layers, Cast): no constants.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor
from npuc.quantization import lut, softmax
from npuc.quantization.fixed_point import quantize_multiplier
from npuc.quantization.float32_requantization import encode_float32_multiplier, float32_multiplier
from npuc.quantization.integer_ops import (accumulator_dtype, activation_clamp, add_params,
                                           average_multiplier, check_accumulator, linear_weights,
                                           prelu_multipliers, resize_frac_bits, tflite_bilinear_taps)
from npuc.quantization.schemes import dequantize, quantize

Params = dict[str, np.ndarray]

#: Layout tag of a bias constant holding a double-scale (two 16-bit words) bias value.
DOUBLE_SCALE_BIAS_LAYOUT = "double_scale16"
#: Weight of the high word of a double-scale bias (docs/numerics.md, "Bias").
DOUBLE_SCALE_SHIFT = 15

MAC_KINDS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
RESCALE_KINDS = ("Reshape", "Transpose", "Slice", "Split", "Pad", "Resize", "DepthToSpace", "SpaceToDepth",
                 "Gather", "Expand", "Tile", "Identity", "Dropout", "MaxPool", "GlobalMaxPool",
                 "ReduceMax", "ReduceMin", "Relu", "Clip", "Requantize")
#: Ops that only move or select values: the quantize pass gives their output the input's encoding.
PASS_THROUGH_KINDS = ("Reshape", "Transpose", "Slice", "Split", "Pad", "Resize", "DepthToSpace",
                      "SpaceToDepth", "Gather", "Expand", "Tile", "Identity", "Dropout", "MaxPool",
                      "GlobalMaxPool", "ReduceMax", "ReduceMin")
AVERAGE_KINDS = ("AveragePool", "GlobalAveragePool", "ReduceMean", "ReduceSum")
LUT_KINDS = ("Sigmoid", "Tanh", "SiLU", "HardSwish", "HardSigmoid", "LeakyRelu", "Exp", "Log", "Sqrt",
             "Reciprocal", "Neg", "Abs", "Erf", "Floor", "Ceil")
SELECT_KINDS = ("Max", "Min", "Concat")
CONVERSION_KINDS = ("Quantize", "Dequantize", "Requantize", "Cast")


def _i64(*values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _act_quant(t: Tensor | None, op: Op, what: str) -> QuantParams:
    """The per-tensor encoding of an integer activation (clear error otherwise)."""
    if t is None:
        raise QuantizationError(f"{op.kind} '{op.name}': {what} is missing")
    if t.quant is None or not t.dtype.is_integer:
        raise QuantizationError(
            f"{op.kind} '{op.name}': {what} '{t.name}' is {t.dtype} without quantization parameters; "
            "run the quantize and insert_dtype_conversions passes first")
    if t.quant.is_per_channel:
        raise QuantizationError(f"{op.kind} '{op.name}': {what} '{t.name}' must be quantized per tensor")
    return t.quant


def _fused_clamp(op: Op, qp_out: QuantParams, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(clamp_min, clamp_max) of a fused activation: int64 arrays of size 1, or of size `channels` when
    the fused clip has per-channel bounds (each bound quantized on the per-tensor output grid)."""
    act = op.attrs.get("activation")
    if act in (None, "relu"):
        lo, hi = activation_clamp(qp_out, act or "none")
        return _i64(lo), _i64(hi)
    if act != "clip":
        raise QuantizationError(f"{op.kind} '{op.name}': fused activation {act!r} cannot be a clamp")
    a, b = op.attrs.get("clip_min"), op.attrs.get("clip_max")
    if not any(isinstance(v, (tuple, list)) for v in (a, b)):
        lo, hi = activation_clamp(qp_out, "clip", a, b)
        return _i64(lo), _i64(hi)
    if qp_out.is_per_channel:
        raise QuantizationError(f"{op.kind} '{op.name}': fused activation clamps need a per-tensor output encoding")
    bounds = []
    for v, default in ((a, qp_out.qmin), (b, qp_out.qmax)):
        if v is None:
            bounds.append(np.full(channels, default, np.int64))
            continue
        arr = np.broadcast_to(np.asarray(v, np.float64).reshape(-1), (channels,)) if np.size(v) in (1, channels) \
            else None
        if arr is None:
            raise QuantizationError(f"{op.kind} '{op.name}': {np.size(v)} per-channel clip bounds for "
                                    f"{channels} output channels")
        bounds.append(np.clip(quantize(arr, qp_out).astype(np.int64), qp_out.qmin, qp_out.qmax))
    lo, hi = bounds
    if np.any(lo > hi):
        c = int(np.argmax(lo > hi))
        raise QuantizationError(f"{op.kind} '{op.name}': fused clip of channel {c} is empty on the output grid "
                                f"{qp_out}")
    return lo, hi


def _rescale_set(qp_in: QuantParams, qp_out: QuantParams, clamp: tuple[int, int], ratio: float = 1.0) -> Params:
    """input zero point, multiplier/shift for ratio*s_in/s_out, output zero point, clamps, identity flag."""
    real = ratio * qp_in.scale[0] / qp_out.scale[0]
    M, n = quantize_multiplier(real)
    same = ratio == 1.0 and qp_in == qp_out and clamp == (qp_out.qmin, qp_out.qmax)
    return {
        "input_zero_point": _i64(qp_in.zero_point[0]),
        "multiplier": _i64(M),
        "shift": _i64(n),
        "output_zero_point": _i64(qp_out.zero_point[0]),
        "clamp_min": _i64(clamp[0]),
        "clamp_max": _i64(clamp[1]),
        "identity": _i64(1 if same else 0),
    }


# --------------------------------------------------------------------- MAC
def bias_words(bias: Tensor, acc_scale: np.ndarray, op: Op) -> tuple[np.ndarray, np.ndarray]:
    """Split a stored integer bias into accumulator words and their left shifts.

    i32 bias: one word, shift 0. i8/i16 bias: one word, shift k with
    ``bias.scale = s_acc * 2**k``. A double-scale bias (i32 constant tagged with the
    layout DOUBLE_SCALE_BIAS_LAYOUT, value in [-2**30, 2**30)) becomes two 16-bit
    words ``hi = b >> 15`` (shift 15) and ``lo = b & 0x7FFF`` (shift 0).
    """
    if bias.data is None or not bias.dtype.is_integer or bias.quant is None:
        raise QuantizationError(f"{op.kind} '{op.name}': bias '{bias.name}' is not a quantized integer constant")
    b = bias.data.astype(np.int64).reshape(-1)
    scale = np.broadcast_to(np.asarray(bias.quant.scale, dtype=np.float64), b.shape)
    ratio = scale / np.broadcast_to(acc_scale, b.shape)
    k = np.rint(np.log2(ratio))
    if np.any(np.abs(ratio / np.exp2(k) - 1.0) > 1e-6) or np.unique(k).size > 1:
        raise QuantizationError(
            f"{op.kind} '{op.name}': bias '{bias.name}' scale is not input_scale * weight_scale * 2**k")
    k0 = int(k[0]) if k.size else 0
    if bias.layout == DOUBLE_SCALE_BIAS_LAYOUT:
        if k0 != 0 or b.size and (b.min() < -(1 << 30) or b.max() >= (1 << 30)):
            raise QuantizationError(f"{op.kind} '{op.name}': double-scale bias '{bias.name}' out of range")
        words = np.stack([np.right_shift(b, DOUBLE_SCALE_SHIFT), b & ((1 << DOUBLE_SCALE_SHIFT) - 1)])
        return words, _i64(DOUBLE_SCALE_SHIFT, 0)
    if k0 < 0:
        raise QuantizationError(f"{op.kind} '{op.name}': bias '{bias.name}' is finer than the accumulator")
    return b.reshape(1, -1), _i64(k0)


def _weight_scales(op: Op, w: Tensor, n_out: int) -> np.ndarray:
    """Weight scale per output channel (length n_out)."""
    qp = w.quant
    if qp is None or not w.dtype.is_integer or w.data is None:
        raise QuantizationError(f"{op.kind} '{op.name}': weight '{w.name}' is not a quantized integer constant")
    if not qp.is_symmetric:
        raise QuantizationError(f"{op.kind} '{op.name}': weight '{w.name}' must be symmetric (zero point 0)")
    s = np.asarray(qp.scale, dtype=np.float64)
    if qp.axis is None:
        return np.full(n_out, s[0])
    expected_axis = {"Conv": 0, "ConvTranspose": 1, "Gemm": 0}.get(op.kind, w.rank - 1)
    if qp.axis % w.rank != expected_axis:
        raise QuantizationError(
            f"{op.kind} '{op.name}': weight '{w.name}' is per-channel on axis {qp.axis}, expected {expected_axis}")
    if op.kind == "ConvTranspose":
        s = np.tile(s, int(op.attrs["group"]))
    if s.size != n_out:
        raise QuantizationError(f"{op.kind} '{op.name}': {s.size} weight scales for {n_out} output channels")
    return s


def mac_params(graph: Graph, op: Op) -> Params:
    ins = graph.inputs_of(op)
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    y = graph.outputs_of(op)[0]
    qx = _act_quant(x, op, "input")
    qy = _act_quant(y, op, "output")
    dynamic_b = op.kind == "MatMul" and not w.is_const
    if op.kind in ("Conv", "ConvTranspose"):
        n_out, axis = y.shape[1], 1
        k = (w.shape[0] // int(op.attrs["group"]) if op.kind == "ConvTranspose" else w.shape[1])
        k *= w.shape[2] * w.shape[3]
    elif op.kind == "Gemm":
        n_out, axis, k = w.shape[0], -1, w.shape[1]
    else:
        n_out, axis, k = (w.shape[-1] if w.rank > 1 else 1), -1, (w.shape[-2] if w.rank > 1 else w.shape[0])
    if dynamic_b:
        qb = _act_quant(w, op, "input b")
        s_w = np.full(1, qb.scale[0])
        zps = _i64(qx.zero_point[0], qb.zero_point[0])
        w_bits = qb.bits + (0 if qb.signed else 1)
    else:
        s_w = _weight_scales(op, w, n_out)
        zps = _i64(qx.zero_point[0])
        w_bits = w.quant.bits
    acc_scale = qx.scale[0] * s_w
    if bias is not None:
        words, bshift = bias_words(bias, acc_scale, op)
        bias_bound = int(np.max(np.abs(np.left_shift(words, bshift[:, None]).sum(axis=0)), initial=0))
    else:
        words, bshift, bias_bound = np.zeros((0, n_out), np.int64), np.zeros(0, np.int64), 0
    a_bits = qx.bits
    check_accumulator(int(k), a_bits, w_bits, bias_bound)
    requantization = op.attrs.get("requantization", "integer")
    if requantization == "float32":  # onnxruntime's QLinearConv arithmetic (docs/numerics.md section 6a)
        M, n = encode_float32_multiplier(float32_multiplier(qx.scale[0], s_w, qy.scale[0]))
    elif requantization == "integer":
        M, n = quantize_multiplier(acc_scale / qy.scale[0])
    else:
        raise QuantizationError(f"{op.kind} '{op.name}': unknown requantization {requantization!r}")
    lo, hi = _fused_clamp(op, qy, n_out)
    extra = {"requantization": _i64(1)} if requantization == "float32" else {}
    return {
        "input_zero_point": zps,
        "weight_zero_point": _i64(0),
        "multiplier": np.asarray(M, np.int64).reshape(-1),
        "shift": np.asarray(n, np.int64).reshape(-1),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": lo,
        "clamp_max": hi,
        "bias_words": words.astype(np.int64),
        "bias_shift": bshift,
        "acc_bits": _i64(accumulator_dtype(a_bits, w_bits).itemsize * 8),
        "channel_axis": _i64(axis),
        **extra,
    }


# ------------------------------------------------------------ rescale family
def rescale_params(graph: Graph, op: Op) -> Params:
    x = graph.inputs_of(op)[0]
    outs = graph.outputs_of(op)
    qx = _act_quant(x, op, "input")
    qy = _act_quant(outs[0], op, "output")
    if any(o.quant != qy for o in outs[1:]):
        raise QuantizationError(f"{op.kind} '{op.name}': all outputs must share one encoding")
    if op.kind == "Relu":
        clamp = activation_clamp(qy, "relu")
    elif op.kind == "Clip":
        clamp = activation_clamp(qy, "clip", op.attrs.get("min"), op.attrs.get("max"))
    else:
        clamp = (qy.qmin, qy.qmax)
    if op.kind == "Resize" and op.attrs["mode"] != "nearest":
        raise QuantizationError(f"Resize '{op.name}': a {op.attrs['mode']} resize has the resize_linear set")
    if op.kind == "Pad" and op.attrs["mode"] != "constant":
        pass  # reflect/edge copy input values: no pad constant needed
    p = _rescale_set(qx, qy, clamp)
    if op.kind == "Pad":
        p["pad_value"] = _i64(int(quantize(np.float64(op.attrs["value"]), qx)))
    return p


def div_params(graph: Graph, op: Op) -> Params:
    a, b = graph.inputs_of(op)
    y = graph.outputs_of(op)[0]
    if not b.is_const or b.size != 1:
        raise QuantizationError(f"Div '{op.name}': only division by a scalar constant runs in integer form")
    value = float(_real_const(b).reshape(-1)[0])
    if not value > 0:
        raise QuantizationError(f"Div '{op.name}': integer division needs a positive divisor, got {value}")
    qy = _act_quant(y, op, "output")
    return _rescale_set(_act_quant(a, op, "input a"), qy, (qy.qmin, qy.qmax), ratio=1.0 / value)


def _real_const(t: Tensor) -> np.ndarray:
    if t.quant is not None and t.dtype.is_integer:
        return dequantize(t.data, t.quant, np.float64)
    return np.asarray(t.data, dtype=np.float64)


def _linear_taps(op: Op, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list:
    """(low, high, frac) per axis of a linear Resize, from the float kernel's own coordinates."""
    from npuc.backends.reference.resize_kernels import linear_taps, source_coordinates

    mode = op.attrs["coordinate_transformation_mode"]
    return [linear_taps(source_coordinates(mode, o, i), i) for i, o in zip(in_shape, out_shape)]


def resize_linear_problem(op: Op, in_shape: tuple[int, ...]) -> str | None:
    """Why a linear Resize has no integer form (None when it has one)."""
    size = tuple(int(s) for s in op.attrs["size"])
    if len(in_shape) < 2 or len(size) != len(in_shape):
        return "integer linear Resize needs an input of rank >= 2"
    try:
        taps = _linear_taps(op, in_shape, size)
    except ValueError as exc:
        return str(exc)
    for axis, (lo, hi, frac) in enumerate(taps[:-2]):
        if size[axis] != in_shape[axis] or not np.array_equal(lo, np.arange(in_shape[axis])) or frac.any():
            return "integer linear Resize interpolates only the last two axes"
    return None


def resize_params(graph: Graph, op: Op) -> Params:
    """Nearest: the rescale set. Linear: fixed-point bilinear taps (docs/numerics.md section 8)."""
    if op.attrs["mode"] == "nearest":
        return rescale_params(graph, op)
    x = graph.inputs_of(op)[0]
    y = graph.outputs_of(op)[0]
    if op.attrs["mode"] != "linear":
        raise QuantizationError(f"Resize '{op.name}': mode {op.attrs['mode']!r} has no integer kernel")
    problem = resize_linear_problem(op, x.shape)
    if problem is not None:
        raise QuantizationError(f"Resize '{op.name}': {problem}")
    qx = _act_quant(x, op, "input")
    qy = _act_quant(y, op, "output")
    tflite = op.attrs.get("rounding", "half_up") == "tflite_bilinear"
    if tflite and (qx != qy or qx.bits != 8):
        raise QuantizationError(f"Resize '{op.name}': rounding 'tflite_bilinear' needs equal 8-bit input and "
                                f"output encodings, got {qx} and {qy}")
    if tflite:
        F = 10
        mode = op.attrs["coordinate_transformation_mode"]
        (rlo, rhi, rw), (clo, chi, cw) = (tflite_bilinear_taps(o, i, mode)
                                          for i, o in zip(x.shape[-2:], y.shape[-2:]))
    else:
        F = resize_frac_bits(qx.bits)
        (rlo, rhi, rf), (clo, chi, cf) = _linear_taps(op, x.shape[-2:], y.shape[-2:])
        rw, cw = linear_weights(rf, F), linear_weights(cf, F)
    M, n = quantize_multiplier(float(qx.scale[0]) / (float(qy.scale[0]) * 2.0 ** (2 * F)))
    extra = {"rounding": _i64(1)} if tflite else {}
    return {
        **extra,
        "frac_bits": _i64(F),
        "row_index": np.stack([rlo, rhi]).astype(np.int64),
        "row_weight": np.asarray(rw, np.int64),
        "col_index": np.stack([clo, chi]).astype(np.int64),
        "col_weight": np.asarray(cw, np.int64),
        "input_zero_point": _i64(qx.zero_point[0]),
        "multiplier": _i64(M),
        "shift": _i64(n),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


def prelu_params(graph: Graph, op: Op) -> Params:
    """Two-branch requantization: one multiplier for q >= zp_in, one per slope value below."""
    x, slope = graph.inputs_of(op)[:2]
    y = graph.outputs_of(op)[0]
    if slope is None or not slope.is_const:
        raise QuantizationError(f"PRelu '{op.name}': only a constant slope runs in integer form")
    qx = _act_quant(x, op, "input")
    qy = _act_quant(y, op, "output")
    a = _real_const(slope)
    if a.ndim > x.rank:
        raise QuantizationError(f"PRelu '{op.name}': slope of rank {a.ndim} for an input of rank {x.rank}")
    a = a.reshape((1,) * (x.rank - a.ndim) + a.shape)
    (Mp, np_), (Mn, nn, sign) = prelu_multipliers(a, qx.scale[0], qy.scale[0])
    return {
        "input_zero_point": _i64(qx.zero_point[0]),
        "multiplier": _i64(Mp),
        "shift": _i64(np_),
        "negative_multiplier": Mn,
        "negative_shift": nn,
        "negative_sign": sign,
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


# ----------------------------------------------------------------- average
def _window_counts(op: Op, x: Tensor, y: Tensor) -> np.ndarray:
    """Number of counted inputs under each output window (separable: rows x cols)."""
    _, _, h, w = x.shape
    oh, ow = y.shape[2:]
    kh, kw = op.attrs["kernel"]
    sh, sw = op.attrs["strides"]
    pt, pl, pb, pr = op.attrs["pads"]
    include = bool(op.attrs["count_include_pad"])

    def axis_counts(size: int, out: int, k: int, s: int, p0: int, p1: int) -> np.ndarray:
        pos = np.arange(out)[:, None] * s - p0 + np.arange(k)[None, :]
        lo, hi = (-p0, size + p1) if include else (0, size)
        return ((pos >= lo) & (pos < hi)).sum(axis=1)

    return np.outer(axis_counts(h, oh, kh, sh, pt, pb), axis_counts(w, ow, kw, sw, pl, pr))


def average_params(graph: Graph, op: Op) -> Params:
    x = graph.inputs_of(op)[0]
    y = graph.outputs_of(op)[0]
    qx = _act_quant(x, op, "input")
    qy = _act_quant(y, op, "output")
    if op.kind == "AveragePool":
        counts = _window_counts(op, x, y)
        if np.all(counts == counts.flat[0]):
            counts = counts.reshape(-1)[:1]
    elif op.kind == "GlobalAveragePool":
        counts = np.array([int(np.prod(x.shape[2:]))])
    elif op.kind == "ReduceMean":
        axes = op.attrs["axes"]
        axes = range(x.rank) if axes is None else axes
        counts = np.array([int(np.prod([x.shape[a] for a in axes]))])
    else:  # ReduceSum
        counts = np.array([1])
    if np.any(counts == 0):
        raise QuantizationError(f"{op.kind} '{op.name}': a pooling window covers no input")
    if op.kind == "AveragePool" and op.attrs.get("rounding", "half_up") == "half_away_from_zero":
        M, n = quantize_multiplier(float(qx.scale[0]) / float(qy.scale[0]))
        return {
            "input_zero_point": _i64(qx.zero_point[0]),
            "multiplier": _i64(M),
            "shift": _i64(n),
            "divisor": np.asarray(counts, np.int64),
            "rounding": _i64(1),
            "output_zero_point": _i64(qy.zero_point[0]),
            "clamp_min": _i64(qy.qmin),
            "clamp_max": _i64(qy.qmax),
        }
    if op.kind == "ReduceMean" and op.attrs.get("rounding", "half_up") != "half_up":
        return _tflite_mean_params(op, qx, qy, int(counts[0]))
    M, n = average_multiplier(counts, qx.scale[0], qy.scale[0])
    return {
        "input_zero_point": _i64(qx.zero_point[0]),
        "multiplier": np.asarray(M, np.int64).reshape(counts.shape),
        "shift": np.asarray(n, np.int64).reshape(counts.shape),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


def _tflite_quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier (``real = M * 2**(e - 31)``, M rounded half away from zero) as
    npuc's (M, n = -e)."""
    if real <= 0:
        return 0, 0
    q, e = np.frexp(np.float64(real))
    M = int(np.floor(float(q) * 2.0 ** 31 + 0.5))
    if M == 1 << 31:
        M //= 2
        e += 1
    if e < -31:
        return 0, 0
    return M, -int(e)


def _tflite_mean_params(op: Op, qx: QuantParams, qy: QuantParams, count: int) -> Params:
    """TFLite's int8 MEAN kernels (docs/numerics.md section 8), as ``rounding = 2`` parameters:
    ``q = clamp(output_zero_point + tflite_multiply(sat32(acc + sum_offset), M, n))``."""
    zi, zo = int(qx.zero_point[0]), int(qy.zero_point[0])
    if op.attrs["rounding"] == "tflite_mean_hw":
        # optimized 4-D kernel: raw code sum, float32 multiplier s_in/(count*s_out), offset in float32
        si, so = np.float32(qx.scale[0]), np.float32(qy.scale[0])
        M, n = _tflite_quantize_multiplier(float(si / (np.float32(count) * so)))
        v = float(np.float32(np.float32(zi) * si) / so)
        offset = zo - int(np.sign(v) * np.floor(abs(v) + 0.5))
        sum_offset = zi * count
    else:
        # generic kernel: centered sum, multiplier s_in/s_out scaled by 1/count with integer division
        M, n = _tflite_quantize_multiplier(float(qx.scale[0]) / float(qy.scale[0]))
        e = -n
        s = min(count.bit_length() - 1, 32, 31 + e)
        M, n = (M << s) // count, -(e - s)
        offset, sum_offset = zo, 0
    if not -30 <= n <= 62:
        raise QuantizationError(f"ReduceMean '{op.name}': TFLite's multiplier shift {-n} is out of range")
    return {
        "input_zero_point": _i64(zi),
        "sum_offset": _i64(sum_offset),
        "multiplier": _i64(M),
        "shift": _i64(n),
        "rounding": _i64(2),
        "output_zero_point": _i64(offset),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


# -------------------------------------------------------------- arithmetic
def _binary_quants(graph: Graph, op: Op) -> tuple[QuantParams, QuantParams, QuantParams]:
    a, b = graph.inputs_of(op)
    return (_act_quant(a, op, "input a"), _act_quant(b, op, "input b"),
            _act_quant(graph.outputs_of(op)[0], op, "output"))


def add_params_of(graph: Graph, op: Op) -> Params:
    qa, qb, qy = _binary_quants(graph, op)
    p = add_params(qa.scale[0], qb.scale[0], qy.scale[0], bits=max(qa.bits, qb.bits))
    return {
        "left_shift": _i64(p.left_shift),
        "input_zero_point": _i64(qa.zero_point[0], qb.zero_point[0]),
        "input_multiplier": _i64(p.M_a, p.M_b),
        "input_shift": _i64(p.n_a, p.n_b),
        "multiplier": _i64(p.M_out),
        "shift": _i64(p.n_out),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


def mul_params(graph: Graph, op: Op) -> Params:
    qa, qb, qy = _binary_quants(graph, op)
    M, n = quantize_multiplier(qa.scale[0] * qb.scale[0] / qy.scale[0])
    return {
        "input_zero_point": _i64(qa.zero_point[0], qb.zero_point[0]),
        "multiplier": _i64(M),
        "shift": _i64(n),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


def select_params(graph: Graph, op: Op) -> Params:
    ins = graph.inputs_of(op)
    qy = _act_quant(graph.outputs_of(op)[0], op, "output")
    qs = [_act_quant(t, op, f"input {i}") for i, t in enumerate(ins)]
    Ms, ns = zip(*(quantize_multiplier(q.scale[0] / qy.scale[0]) for q in qs))
    return {
        "input_zero_point": _i64(*(q.zero_point[0] for q in qs)),
        "input_multiplier": _i64(*Ms),
        "input_shift": _i64(*ns),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
        "identity": _i64(*(1 if q == qy else 0 for q in qs)),
    }


# --------------------------------------------------------------- LUT / softmax
def _erf(x: np.ndarray) -> np.ndarray:
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _safe(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Outside the function's domain (log/sqrt of negatives) the table holds 0; +-inf saturates."""

    def wrapped(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.nan_to_num(fn(x), nan=0.0, posinf=np.inf, neginf=-np.inf)

    return wrapped


def lut_function(op: Op) -> Callable[[np.ndarray], np.ndarray]:
    """The float64 function an op's lookup table tabulates (ONNX semantics of the kind)."""
    a = op.attrs
    fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "Sigmoid": lut.sigmoid,
        "Tanh": np.tanh,
        "SiLU": lut.silu,
        "HardSwish": lut.hard_swish,
        "HardSigmoid": lambda x: lut.hard_sigmoid(x, float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))),
        "LeakyRelu": lambda x: np.where(x >= 0, x, float(a.get("alpha", 0.01)) * x),
        "Exp": np.exp,
        "Log": np.log,
        "Sqrt": np.sqrt,
        "Reciprocal": lambda x: 1.0 / x,
        "Neg": np.negative,
        "Abs": np.abs,
        "Erf": _erf,
        "Floor": np.floor,
        "Ceil": np.ceil,
    }
    return _safe(fns[op.kind])


def lut_params(graph: Graph, op: Op) -> Params:
    """Table of the op's float function over every input code: q_out = lut[q_in - qmin_in]."""
    x = graph.inputs_of(op)[0]
    y = graph.outputs_of(op)[0]
    table = lut.build_lut(lut_function(op), _act_quant(x, op, "input"), _act_quant(y, op, "output"))
    return {"lut": table.astype(np.int64)}


def softmax_params(graph: Graph, op: Op) -> Params:
    """Fixed-point softmax (docs/numerics.md, "Softmax"): exp table over d = max - q, fixed output grid."""
    x = graph.inputs_of(op)[0]
    y = graph.outputs_of(op)[0]
    qx, qy = _act_quant(x, op, "input"), _act_quant(y, op, "output")
    expected = softmax.softmax_output_params(qy.bits, qy.signed)
    if qy != expected:
        raise QuantizationError(f"Softmax '{op.name}': output encoding must be {expected}, got {qy}")
    return {
        "exp_table": softmax.exp_table(qx),
        "output_bits": _i64(qy.bits),
        "output_zero_point": _i64(qy.zero_point[0]),
        "clamp_min": _i64(qy.qmin),
        "clamp_max": _i64(qy.qmax),
    }


# ------------------------------------------------------------- conversions
def quantize_params(graph: Graph, op: Op) -> Params:
    qy = _act_quant(graph.outputs_of(op)[0], op, "output")
    return {"scale": np.asarray(qy.scale, np.float64), "zero_point": _i64(qy.zero_point[0]),
            "qmin": _i64(qy.qmin), "qmax": _i64(qy.qmax)}


def dequantize_params(graph: Graph, op: Op) -> Params:
    qx = _act_quant(graph.inputs_of(op)[0], op, "input")
    return {"scale": np.asarray(qx.scale, np.float64), "zero_point": _i64(qx.zero_point[0])}


def no_params(graph: Graph, op: Op) -> Params:
    return {}


Deriver = Callable[[Graph, Op], Params]
#: op kind -> deriver
DERIVERS: dict[str, Deriver] = {
    **{k: mac_params for k in MAC_KINDS},
    **{k: rescale_params for k in RESCALE_KINDS},
    **{k: average_params for k in AVERAGE_KINDS},
    **{k: lut_params for k in LUT_KINDS},
    **{k: select_params for k in SELECT_KINDS},
    "Add": add_params_of,
    "Sub": add_params_of,
    "Mul": mul_params,
    "Div": div_params,
    "Resize": resize_params,
    "PRelu": prelu_params,
    "Softmax": softmax_params,
    "Quantize": quantize_params,
    "Dequantize": dequantize_params,
    "Cast": no_params,
}

#: Kinds that have an integer form (the quantize pass falls back to float16 for the rest).
INTEGER_KINDS = frozenset(DERIVERS)


def is_float16_op(graph: Graph, op: Op) -> bool:
    """A float16 layer: it reads or writes float16 activations and is not a conversion."""
    if op.kind in CONVERSION_KINDS:
        return False
    return any(t.dtype is DType.FLOAT16 for t in graph.outputs_of(op))


def integer_form_problem(graph: Graph, op: Op) -> str | None:
    """Why `op` cannot run in integer form (None when it can), judged before quantization."""
    if op.kind not in DERIVERS:
        return f"op kind {op.kind} has no integer kernel"
    ins = graph.inputs_of(op)
    if op.kind == "Div" and (len(ins) < 2 or ins[1] is None or not ins[1].is_const or ins[1].size != 1
                             or not float(np.asarray(ins[1].data).reshape(-1)[0]) > 0):
        return "Div runs in integer form only by a positive scalar constant"
    if op.kind == "Resize" and op.attrs["mode"] not in ("nearest", "linear"):
        return f"Resize mode {op.attrs['mode']} has no integer kernel (nearest and linear have)"
    if op.kind == "Resize" and op.attrs["mode"] == "linear":
        return resize_linear_problem(op, ins[0].shape)
    if op.kind == "PRelu" and (len(ins) < 2 or ins[1] is None or not ins[1].is_const):
        return "PRelu runs in integer form only with a constant slope"
    if op.kind == "Gather" and len(ins) > 1 and ins[1] is not None and not ins[1].is_const:
        return "Gather with computed indices has no integer kernel"
    if op.kind == "Softmax" and op.attrs["axis"] not in (-1, len(ins[0].shape) - 1):
        return "integer Softmax runs along the last axis only"
    return None


def derive_op_params(graph: Graph, op: Op) -> Params:
    """Every integer constant the integer kernel of `op` needs (see the module docstring)."""
    if is_float16_op(graph, op):
        return {}
    try:
        derive = DERIVERS[op.kind]
    except KeyError:
        raise QuantizationError(
            f"{op.kind} '{op.name}' has no integer form; quantize it as a float16 layer") from None
    try:
        return derive(graph, op)
    except QuantizationError as exc:
        if op.name in str(exc):
            raise
        origin = f" (from {', '.join(op.origin)})" if op.origin and op.origin != (op.name,) else ""
        raise QuantizationError(f"{op.kind} '{op.name}'{origin}: {exc}") from None
