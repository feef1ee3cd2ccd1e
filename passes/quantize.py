"""quantize: decide every tensor's encoding and rewrite weights and biases to integer constants.

Inputs: range observers from `calibrate` (``tensor.meta["observer"]``), fixed
encodings (``tensor.meta["fixed_quant"]`` / ``["fixed_dtype"]``: overrides, int8
TFLite; they win over calibration) and the per-layer settings, a
`npuc.quantization.config.QuantConfig` in ``ctx.state["quant_config"]`` whose
per-op overrides (from the script's `quantization_param`/`data_type`) apply on top
of this pass's options.

What it does (docs/quantized-ir.md):

* each op gets a precision: integer (activation type from the layer's settings,
  or from a fixed encoding of its output) or float16 (asked for, or the fallback for
  ops with no integer form, with a warning; `fallback=error` makes that an error);
* every activation gets its encoding in its producer's type (``tensor.quant``; the
  tensor keeps its float dtype until `insert_dtype_conversions`, which reads the
  target type from ``tensor.meta["qdtype"]``); ops that only move data inherit their
  input's encoding, Softmax uses its fixed output grid;
* where a consumer runs in another type, the encoding the converted copy will have
  is recorded in ``tensor.meta["encodings"][dtype]``;
* weights become symmetric integer constants (per channel on the output-channel
  axis), biases integer constants on the accumulator grid (32-bit, 16-bit single
  word, or 16-bit double scale), other float constants read by integer ops
  per-tensor integer constants; float16 layers get float16 constants.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.quantization.bias import quantize_bias
from npuc.quantization.config import LayerQuantConfig, QuantConfig, settings_for_precision_mode
from npuc.quantization.op_params import (CONVERSION_KINDS, DOUBLE_SCALE_BIAS_LAYOUT, MAC_KINDS, PASS_THROUGH_KINDS,
                                         integer_form_problem)
from npuc.quantization.schemes import params_from_range, quantize, representable_range
from npuc.quantization.softmax import softmax_output_params
from npuc.quantization.weights import weight_range

log = logging.getLogger(__name__)

#: ctx.state key of the per-layer QuantConfig (set by the script binding).
CONFIG_KEY = "quant_config"
#: tensor.meta keys written here and read by insert_dtype_conversions.
QDTYPE = "qdtype"
ENCODINGS = "encodings"
#: multi-input ops whose type follows the majority of their inputs unless set per layer
MERGE_KINDS = ("Concat", "Add", "Sub", "Max", "Min", "Mul")
#: (op kind, input port) of weights quantized per output channel, and the channel axis
WEIGHT_PORTS = {("Conv", 1): 0, ("ConvTranspose", 1): 1, ("Gemm", 1): 0, ("MatMul", 1): -1}
BIAS_PORTS = {("Conv", 2), ("ConvTranspose", 2), ("Gemm", 2)}
#: (op kind, input port) of constants only read to derive multipliers: quantized 16-bit symmetric per tensor
SLOPE_PORTS = {("PRelu", 1)}


@dataclass(frozen=True)
class Quantize(Pass):
    """Choose integer encodings for every tensor and turn weights/biases into integer constants."""

    name: ClassVar[str] = "quantize"
    requires: ClassVar[tuple[str, ...]] = ("calibration",)
    ensures: ClassVar[tuple[str, ...]] = ("quantized",)

    scheme: Literal["asymmetric", "symmetric", "power_of_two"] = option(
        "asymmetric", "activation scheme: asymmetric (uint), symmetric (int), power_of_two (dynamic fixed point)")
    precision_mode: Literal["a8_w8", "a8_w4", "a16_w8", "a16_w16", "a8_w16", "float16"] = option(
        "a8_w8", "default activation/weight widths (per-layer: quantization_param(..., precision_mode=...))")
    bias_bits: int = option(32, "bias width for single_scale_decomposition: 32 (SNPE) or 16")
    bias_mode: Literal["single_scale_decomposition", "double_scale_initialization"] = option(
        "single_scale_decomposition", "bias on one scale, or Hailo's 16-bit double-scale bias")
    per_channel: bool = option(True, "weights per output channel (else per tensor)")
    requantization: Literal["integer", "float32"] = option(
        "integer", "MAC layers' requantization: integer (31-bit multiplier, half up) or float32 "
                   "(onnxruntime's QLinearConv arithmetic: exported QDQ models match bit for bit)")
    weight_range_method: Literal["minmax", "mse", "adjusted"] = option("minmax", "weight range algorithm")
    power_of_two: bool = option(False, "power-of-two scales everywhere (same as scheme=power_of_two)")
    fallback: Literal["float16", "error"] = option(
        "float16", "ops with no integer form: run as float16 layers (warning) or fail")

    def layer_defaults(self) -> LayerQuantConfig:
        scheme = "power_of_two" if self.power_of_two else self.scheme
        return LayerQuantConfig(scheme=scheme, bias_bits=self.bias_bits, bias_mode=self.bias_mode,
                                per_channel=self.per_channel, weight_range_method=self.weight_range_method,
                                requantization=self.requantization,
                                **settings_for_precision_mode(self.precision_mode))

    def config(self, ctx: PassContext) -> QuantConfig:
        given = ctx.get(CONFIG_KEY)
        if given is not None and not isinstance(given, QuantConfig):
            raise QuantizationError(f"ctx.state['{CONFIG_KEY}'] must be a QuantConfig, got {type(given).__name__}")
        return QuantConfig(self.layer_defaults(), dict(given.overrides) if given is not None else {})

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        config = self.config(ctx)
        result = _Quantizer(graph, config, self.fallback).run()
        ctx.set("quantized")
        return result


class _Quantizer:
    """One run of the quantize pass over one graph."""

    def __init__(self, graph: Graph, config: QuantConfig, fallback: str) -> None:
        self.g = graph
        self.config = config
        self.fallback = fallback
        self.layers: dict[str, LayerQuantConfig] = {}
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------ driver
    def run(self) -> PassResult:
        g = self.g
        ops = g.ops()
        done = [op.name for op in ops if op.kind in ("Quantize", "Dequantize", "Requantize")]
        if done:
            raise QuantizationError(f"the graph is already quantized (conversion ops {done[:3]}); quantize runs once")
        unknown = self.config.unknown_names(op.name for op in ops)
        if unknown:
            raise QuantizationError(f"quantization settings name layers that do not exist: {unknown[:10]}")
        self._choose_precisions(ops)
        self.forced = self._forced_ranges(ops)
        missing: list[str] = []
        for op in ops:
            self._assign_outputs(op, missing)
        if missing:
            raise QuantizationError(
                f"{len(missing)} activation(s) have no calibration range (run calibrate first): "
                + ", ".join(missing[:10]))
        for op in ops:
            self._record_conversions(op)
            self._rewrite_constants(op)
            self._set_requantization(op)
        return PassResult(True, {k: v for k, v in self.counts.items() if v})

    # --------------------------------------------------------- precision
    def _choose_precisions(self, ops: list[Op]) -> None:
        problems: list[str] = []
        for op in ops:
            lc = self.config.for_op(op.name)
            fixed_dtype = _first_output_meta(self.g, op, "fixed_dtype")
            if fixed_dtype is not None and fixed_dtype.is_float and not lc.float16:
                lc = _replace(lc, float16=True)
            if not lc.float16:
                why = integer_form_problem(self.g, op)
                if why is not None:
                    if self.fallback == "error":
                        problems.append(f"{op.kind} '{op.name}': {why}")
                        continue
                    log.warning("%s '%s' runs as a float16 layer: %s", op.kind, op.name, why)
                    self.counts["float16_fallbacks"] += 1
                    lc = _replace(lc, float16=True)
            self.layers[op.name] = lc
        if problems:
            raise QuantizationError(
                "ops with no integer form (use fallback=float16 or set them float16 with data_type):\n  "
                + "\n  ".join(problems))

    def _forced_ranges(self, ops: list[Op]) -> dict[str, tuple[float, float]]:
        """{tensor: (lo, hi)} from the layers' force_range_out (their outputs) and force_range_in (the tensor
        they read; its producer then writes in that range). Two different ranges on one tensor: an error."""
        forced: dict[str, tuple[float, float]] = {}
        by: dict[str, str] = {}
        for op in ops:
            lc = self.layers[op.name]
            targets = []
            if lc.force_range_out is not None:
                targets += [(t, lc.force_range_out, "force_range_out") for t in self.g.outputs_of(op)]
            if lc.force_range_in is not None:
                x = next((t for t in self.g.inputs_of(op) if t is not None and not t.is_const), None)
                if x is not None:
                    targets.append((x, lc.force_range_in, "force_range_in"))
            for t, rng, key in targets:
                given = (float(rng[0]), float(rng[1]))
                if t.name in forced and forced[t.name] != given:
                    raise QuantizationError(f"tensor '{t.name}' gets two forced ranges: {list(forced[t.name])} "
                                            f"({by[t.name]}) and {list(given)} ({key} of layer '{op.name}')")
                forced[t.name], by[t.name] = given, f"{key} of layer '{op.name}'"
        return forced

    def _op_dtype(self, op: Op) -> DType:
        """The element type `op` computes in (decided from its settings, a fixed encoding, or its inputs)."""
        lc = self.layers[op.name]
        if lc.float16:
            return DType.FLOAT16
        fixed = _first_output_meta(self.g, op, "fixed_quant")
        if fixed is not None:
            return fixed.dtype
        if op.kind in MERGE_KINDS and op.name not in self.config.overrides:
            # fewest conversions: follow the most common integer type among the inputs (wider on ties)
            seen = [t.meta[QDTYPE] for t in self.g.inputs_of(op)
                    if t is not None and not t.is_const and t.meta.get(QDTYPE, DType.FLOAT32).is_integer]
            if seen:
                counts = Counter(seen)
                return max(counts, key=lambda d: (counts[d], d.bits, not d.signed))
        return lc.activation_dtype

    # --------------------------------------------------------- encodings
    def encoding(self, t: Tensor, dtype: DType, lc: LayerQuantConfig) -> QuantParams:
        """The encoding of activation `t` as a `dtype` tensor (cached in t.meta['encodings'])."""
        if t.quant is not None and t.quant.dtype is dtype:
            return t.quant
        cache = t.meta.setdefault(ENCODINGS, {})
        if dtype in cache:
            return cache[dtype]
        fixed = t.meta.get("fixed_quant")
        if fixed is not None and fixed.dtype is dtype:
            qp = fixed
        elif fixed is not None:  # a reader of another precision: the fixed encoding's range, on its grid
            lo, hi = representable_range(fixed)
            qp = self._from_range(float(np.min(lo)), float(np.max(hi)), dtype, lc)
        elif t.name in self.forced:  # quantization_param(..., force_range_in/out=[lo, hi])
            qp = self._from_range(*self.forced[t.name], dtype, lc)
        else:
            qp = self._from_observer(t, dtype, lc)
        cache[dtype] = qp
        return qp

    def _from_observer(self, t: Tensor, dtype: DType, lc: LayerQuantConfig) -> QuantParams:
        obs = t.meta.get("observer")
        if obs is None:
            raise QuantizationError(f"tensor '{t.name}' has no calibration range (run calibrate first)")
        symmetric = lc.scheme != "asymmetric"
        return self._from_range(*obs.range(bits=dtype.bits, signed=dtype.signed, symmetric=symmetric), dtype, lc)

    @staticmethod
    def _from_range(lo: float, hi: float, dtype: DType, lc: LayerQuantConfig) -> QuantParams:
        scheme = lc.scheme
        if scheme == "power_of_two" and not dtype.signed and float(lo) < 0:
            scheme = "asymmetric"  # unsigned power-of-two needs min >= 0
        return params_from_range(lo, hi, scheme, dtype.bits, dtype.signed)

    def _assign_outputs(self, op: Op, missing: list[str]) -> None:
        g = self.g
        dtype = self._op_dtype(op)
        lc = self.layers[op.name]
        x = next((t for t in g.inputs_of(op) if t is not None and not t.is_const), None)
        for t in g.outputs_of(op):
            t.meta[QDTYPE] = dtype
            t.meta.pop(ENCODINGS, None)
            if dtype.is_float:
                t.quant = None
                self.counts["float16_ops"] += 1
                continue
            fixed = t.meta.get("fixed_quant")
            if fixed is not None:
                if fixed.is_per_channel:
                    raise QuantizationError(f"fixed encoding of activation '{t.name}' must be per tensor")
                t.quant = fixed
            elif op.kind in PASS_THROUGH_KINDS and x is not None:
                t.quant = None
                t.quant = self._input_encoding(x, dtype, lc, missing)
            elif op.kind == "Softmax":
                t.quant = softmax_output_params(dtype.bits, dtype.signed)
            elif t.meta.get("observer") is None and t.name not in self.forced:
                missing.append(t.name)
                t.quant = None
                continue
            else:
                t.quant = None
                t.quant = self.encoding(t, dtype, lc)
            self.counts["integer_tensors"] += 1
        self.counts[f"{dtype}_ops"] += 1

    def _input_encoding(self, x: Tensor, dtype: DType, lc: LayerQuantConfig, missing: list[str]) -> QuantParams | None:
        try:
            return self.encoding(x, dtype, lc)
        except QuantizationError:
            missing.append(x.name)
            return None

    def _record_conversions(self, op: Op) -> None:
        """Encodings of the converted copies this op's inputs will need (read by insert_dtype_conversions)."""
        dtype = self.g.outputs_of(op)[0].meta[QDTYPE]
        if dtype.is_float:
            return
        lc = self.layers[op.name]
        for t in self.g.inputs_of(op):
            if t is None or t.is_const:
                continue
            if t.meta.get(QDTYPE, t.dtype) is not dtype or t.quant is None:
                self.encoding(t, dtype, lc)

    def _set_requantization(self, op: Op) -> None:
        """The requantization rule of an integer MAC layer (docs/numerics.md sections 6 and 6a)."""
        if op.kind in MAC_KINDS and not self.g.outputs_of(op)[0].meta[QDTYPE].is_float:
            op.attrs["requantization"] = self.layers[op.name].requantization

    # --------------------------------------------------------- constants
    def _rewrite_constants(self, op: Op) -> None:
        g = self.g
        dtype = g.outputs_of(op)[0].meta[QDTYPE]
        lc = self.layers[op.name]
        ins = g.inputs_of(op)
        for port, t in enumerate(ins):
            if t is None or not t.is_const or not t.dtype.is_float:
                continue
            t = self._own(op, port, t)
            if dtype.is_float:
                _set_data(t, t.data.astype(np.float16), DType.FLOAT16, None)
                continue
            axis = WEIGHT_PORTS.get((op.kind, port))
            if axis is not None:
                self._quantize_weight(op, t, lc, axis)
            elif (op.kind, port) in BIAS_PORTS:
                self._quantize_bias(op, t, ins[0], ins[1], lc, dtype)
            elif (op.kind, port) in SLOPE_PORTS:
                self._quantize_slope(t)
            else:
                self._quantize_data_const(t, dtype, lc)

    def _own(self, op: Op, port: int, t: Tensor) -> Tensor:
        """A constant only `op` reads (copied when shared, so each reader can quantize it its own way)."""
        if len(self.g.consumers(t)) == 1 and not self.g.is_output(t):
            return t
        copy = self.g.add_const(f"{t.name}_{op.name}", t.data)
        copy.meta.update({k: v for k, v in t.meta.items() if k == "fixed_quant"})
        self.g.set_input(op, port, copy)
        return copy

    def _quantize_weight(self, op: Op, w: Tensor, lc: LayerQuantConfig, axis: int) -> None:
        axis = axis % w.rank if w.rank else 0
        fixed = w.meta.get("fixed_quant")
        if fixed is not None:
            qp = fixed
        else:
            ch_axis = axis if lc.per_channel and w.rank > 1 else None
            lo, hi = weight_range(w.data, lc.weight_range_method, lc.weight_bits, True, True, ch_axis)
            scheme = "power_of_two" if lc.scheme == "power_of_two" else "symmetric"
            qp = params_from_range(lo, hi, scheme, lc.weight_bits, True, ch_axis)
        _set_data(w, quantize(w.data, qp), qp.dtype, qp)
        self.counts["weights"] += 1

    def _quantize_bias(self, op: Op, b: Tensor, x: Tensor, w: Tensor, lc: LayerQuantConfig, dtype: DType) -> None:
        if w.quant is None:
            raise QuantizationError(f"{op.kind} '{op.name}': the weight must be quantized before the bias")
        s_x = self.encoding(x, dtype, lc).scale[0]
        s_w = np.asarray(w.quant.scale, dtype=np.float64)
        if op.kind == "ConvTranspose":
            s_w = np.tile(s_w, int(op.attrs["group"])) if w.quant.is_per_channel else s_w
        n = b.size
        s_w = np.broadcast_to(s_w, (n,)) if s_w.size == 1 else s_w
        double = lc.bias_mode == "double_scale_initialization"
        bits = 16 if double else lc.bias_bits
        k = _wide_bias_shift(b.data, s_x * s_w) if bits == 32 else 0
        # quantize on the grid s_acc * 2**k (k > 0 only when the bias overflows int32 on the accumulator grid)
        qb = quantize_bias(b.data, s_x * 2.0 ** k, s_w, bits, "double_scale" if double else "single")
        if double:
            data, qdt, scale, layout = qb.values.astype(np.int32), DType.INT32, qb.scale, DOUBLE_SCALE_BIAS_LAYOUT
        else:
            data, qdt, layout = qb.words[0], DType.integer(lc.bias_bits, True), None
            scale = qb.scale * float(2 ** qb.shift)
        qp = QuantParams.per_channel(scale, [0] * n, 0, qdt.bits, True)
        _set_data(b, data.astype(qdt.numpy), qdt, qp)
        b.layout = layout
        self.counts["biases"] += 1

    def _quantize_slope(self, t: Tensor) -> None:
        """A PRelu slope: its fixed encoding, else symmetric int16 per tensor. The integer kernel never
        reads it: derive_op_params turns each dequantized slope value into a multiplier."""
        qp = t.meta.get("fixed_quant")
        if qp is None:
            data = np.asarray(t.data, dtype=np.float64)
            lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
            qp = params_from_range(lo, hi, "symmetric", 16, True)
        _set_data(t, quantize(t.data, qp), qp.dtype, qp)
        self.counts["constants"] += 1

    def _quantize_data_const(self, t: Tensor, dtype: DType, lc: LayerQuantConfig) -> None:
        """A float constant read by an integer op as data: per-tensor, in the op's activation type."""
        fixed = t.meta.get("fixed_quant")
        if fixed is not None and fixed.dtype is dtype:
            qp = fixed
        else:
            data = np.asarray(t.data, dtype=np.float64)
            lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
            scheme = lc.scheme
            if scheme != "asymmetric" and not dtype.signed:
                scheme = "asymmetric"
            qp = params_from_range(lo, hi, scheme, dtype.bits, dtype.signed)
        _set_data(t, quantize(t.data, qp), dtype, qp)
        self.counts["constants"] += 1


def _wide_bias_shift(bias: np.ndarray, acc_scale: np.ndarray) -> int:
    """Smallest k >= 0 with |bias / (s_acc * 2**k)| inside int32.

    16-bit layers have tiny accumulator scales (s_x * s_w ~ 1e-9), so a 32-bit bias
    word would saturate; it is then stored on the coarser grid s_acc * 2**k and the
    kernel adds ``word << k`` to its int64 accumulator (derive_op_params: bias_shift).
    """
    peak = float(np.max(np.abs(np.asarray(bias, np.float64) / acc_scale), initial=0.0))
    k = 0
    while np.rint(peak / 2.0 ** k) > (1 << 31) - 1:
        k += 1
    return k


def _set_data(t: Tensor, data: np.ndarray, dtype: DType, quant: QuantParams | None) -> None:
    arr = np.ascontiguousarray(data)
    arr.flags.writeable = False
    t.data, t.dtype, t.quant = arr, dtype, quant


def _replace(lc: LayerQuantConfig, **fields) -> LayerQuantConfig:
    import dataclasses

    return dataclasses.replace(lc, **fields)


def _first_output_meta(graph: Graph, op: Op, key: str):
    outs = graph.outputs_of(op)
    return outs[0].meta.get(key) if outs else None


__all__ = ["CONFIG_KEY", "CONVERSION_KINDS", "ENCODINGS", "QDTYPE", "Quantize"]
