"""bias_correction: empirical bias correction (BC) and iterative bias correction (IBC) of quantized layers.

Quantizing weights shifts the mean of a layer's output: E[W_q x_q] != E[W x].
This pass measures that shift on the calibration set and removes it from the
layer's (integer) bias, per output channel.

* The float reference is ``ctx.state['float_graph']`` (the model before
  `quantize`; the compile driver keeps it), the quantized model is the graph
  being rewritten, run in integer arithmetic (`QuantizedExecutor`).
* What is compared is the layer's *pre-activation* output (before its fused
  ReLU/clip), in real units. Convolution is linear, so the mean output over the
  data equals the layer applied to the mean input: per layer only the mean
  input (float, and dequantized quantized) is accumulated, and the layer is
  evaluated once on each mean (padding is real zero in both models).
  The quantized side uses the dequantized integer weights and bias.
* The correction e = mean_q - mean_float (per channel) is converted to the
  bias grid (the bias tensor's own scale, which includes any storage shift)
  and subtracted, saturating at the storage range. A layer without a bias gets
  an int32 one on the accumulator grid ``s_x * s_w``.
* ``iterative=False`` (BC): every layer's own error — its quantized weights
  and bias against the float ones, both applied to the float model's mean
  input — is removed (errors from upstream layers are left alone, so the
  corrections of successive layers do not add up to an over-correction).
  ``iterative=True`` (IBC): layers are corrected one by one in topological
  order; a layer's quantized mean input comes from the quantized model with
  every layer above it already corrected, so the correction also removes the
  mean error left upstream. The quantized model runs on all items op by op
  (`layer_data.run_lockstep`), so IBC costs one pass over the data.

The correction is only as fine as the bias grid: an 8-bit bias (single-word
mode with a shift) is much coarser than the errors being corrected, which is
warned about.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.quant_params import QuantParams
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.layer_data import (calibration_items, dequantized, float_graph, float_values, is_integer_layer,
                                    mac_layers, preactivation, real_bias, real_weight, run_lockstep)

log = logging.getLogger(__name__)

#: storage limits of a double-scale (two 16-bit words) bias value
_DOUBLE_SCALE_LIMITS = (-(1 << 30), (1 << 30) - 1)


@dataclass(frozen=True)
class BiasCorrection(Pass):
    """Empirical bias correction: remove the mean per-channel output error of each quantized conv/gemm
    (float vs quantized on the calibration set) from its bias; iterative=true corrects layer by layer."""

    name: ClassVar[str] = "bias_correction"
    requires: ClassVar[tuple[str, ...]] = ("quantized",)

    iterative: bool = option(False, "IBC: layer by layer in topological order, re-running the corrected model")
    layers: tuple[str, ...] = option((), "layers to correct (names, origins or globs); all conv/gemm when empty")
    dataset_size: int = option(32, "calibration items used (a seeded sample when the set is larger)")

    def __post_init__(self) -> None:
        if self.dataset_size < 1:
            raise ValueError(f"dataset_size must be >= 1, got {self.dataset_size}")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        fg = float_graph(ctx, self.name)
        targets = [op for op in mac_layers(graph, self.layers)
                   if is_integer_layer(graph, op) and fg.has_op(op.name)]
        if not targets:
            log.info("bias_correction: no integer conv/gemm layer to correct")
            return PassResult.unchanged()
        items = calibration_items(ctx, fg, self.dataset_size, self.name)
        _warn_narrow_biases(graph, targets)
        f_means = float_mean_inputs(fg, [op.name for op in targets], items)
        corrections: list[float] = []
        if self.iterative:
            wanted = {op.name for op in targets}

            def before(op: Op, inputs) -> bool:
                if op.name not in wanted:
                    return False
                x = graph.inputs_of(op)[0]
                q_mean = np.mean([dequantized(graph, x, ins[0]) for ins in inputs], axis=0)
                corrections.append(correct_layer(graph, fg, op, f_means[op.name], q_mean))
                return True

            run_lockstep(graph, items, before, stop_after=targets[-1])
        else:
            corrections = [correct_layer(graph, fg, op, f_means[op.name], f_means[op.name]) for op in targets]
        log.info("bias_correction%s: %d layer(s) corrected on %d item(s)", " (iterative)" if self.iterative else "",
                 len(targets), len(items))
        return PassResult(True, {"layers": len(targets), "items": len(items),
                                 "mean_abs_correction": round(float(np.mean(corrections)), 6)})


def float_mean_inputs(fg: Graph, layers: list[str], items) -> dict[str, np.ndarray]:
    """Per-element mean over the items of each named layer's input in the float graph."""
    by_tensor: dict[str, list[str]] = {}
    for name in layers:
        by_tensor.setdefault(fg.inputs_of(fg.op(name))[0].name, []).append(name)
    sums: dict[str, np.ndarray] = {}

    def add(tensor: str, _item: int, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=np.float64)
        sums[tensor] = v if tensor not in sums else sums[tensor] + v

    float_values(fg, items, list(by_tensor), add)
    return {name: sums[t] / len(items) for t, names in by_tensor.items() for name in names}


def channel_means(y: np.ndarray) -> np.ndarray:
    """Mean per channel (axis 1) of a layer output."""
    return y.reshape(y.shape[0], y.shape[1], -1).mean(axis=(0, 2))


def correct_layer(graph: Graph, fg: Graph, op: Op, float_mean_in: np.ndarray, q_mean_in: np.ndarray) -> float:
    """Subtract the mean pre-activation error of `op` from its integer bias; returns the mean |correction|.

    The error is layer_q(mean quantized input) - layer_float(mean float input); with the same (float) mean
    on both sides it is the layer's own weight/bias quantization error (BC), with the quantized model's
    mean input it also covers what upstream layers left (IBC).
    """
    fop = fg.op(op.name)
    f_ins, q_ins = fg.inputs_of(fop), graph.inputs_of(op)
    n = q_ins[1].shape[0]
    fb = f_ins[2] if len(f_ins) > 2 else None
    mu_f = channel_means(preactivation(fop, float_mean_in, real_weight(f_ins[1]), real_bias(fb, n)))
    qb = q_ins[2] if len(q_ins) > 2 else None
    mu_q = channel_means(preactivation(op, q_mean_in, real_weight(q_ins[1]), real_bias(qb, n)))
    error = mu_q - mu_f
    if qb is None:
        qb = _add_bias(graph, op)
    scale = np.asarray(qb.quant.scale, dtype=np.float64)
    lo, hi = _limits(qb)
    new = np.clip(np.asarray(qb.data, np.int64) - np.rint(error / scale).astype(np.int64), lo, hi)
    if np.any((new == lo) | (new == hi)):
        log.warning("bias_correction: corrected bias of '%s' saturates its %s storage", op.name, qb.dtype)
    arr = new.astype(qb.dtype.numpy)
    arr.flags.writeable = False
    qb.data = arr
    return float(np.mean(np.abs(error)))


def _limits(b) -> tuple[int, int]:
    if b.layout == "double_scale16":
        return _DOUBLE_SCALE_LIMITS
    info = np.iinfo(b.dtype.numpy)
    return int(info.min), int(info.max)


def _add_bias(graph: Graph, op: Op):
    """A zero int32 bias on the accumulator grid s_x * s_w[c] for a layer that had none."""
    x, w = graph.inputs_of(op)[:2]
    n = w.shape[0]
    s_w = np.broadcast_to(np.asarray(w.quant.scale, np.float64), (n,))
    scale = float(x.quant.scale[0]) * s_w
    b = graph.add_const(f"{op.name}.bias_corrected", np.zeros(n, np.int32), dtype=DType.INT32)
    b.quant = QuantParams.per_channel(scale, [0] * n, 0, 32, True)
    graph.set_input(op, 2, b)
    return b


def _warn_narrow_biases(graph: Graph, ops: list[Op]) -> None:
    narrow = [op.name for op in ops
              if len(graph.inputs_of(op)) > 2 and graph.inputs_of(op)[2] is not None
              and graph.inputs_of(op)[2].dtype.bits <= 8]
    if narrow:
        log.warning("bias_correction: %d layer(s) have an 8-bit bias (%s%s); its grid is too coarse for the "
                    "correction to help much — use 16/32-bit biases (quantize(bias_bits=32) or "
                    "bias_mode=double_scale_initialization)", len(narrow), ", ".join(narrow[:5]),
                    ", ..." if len(narrow) > 5 else "")
