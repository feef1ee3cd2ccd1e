"""Shared helpers of the accuracy-recovery passes (bias_correction, adaround).

Both passes compare a quantized MAC layer (Conv, Gemm) with its float original:
they need the float graph kept before quantization, the calibration items, the
layers to work on, the real values of integer weights and biases, a layer's
pre-activation output, and im2col patches at sampled output positions. Those
pieces live here, once.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import logging
from typing import Callable, Mapping, Sequence

import numpy as np

from npuc.errors import NpucError
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import PassContext

log = logging.getLogger(__name__)

#: ctx.state key of the float graph kept by the driver before quantization
FLOAT_GRAPH_KEY = "float_graph"
#: layer kinds the passes correct
MAC_KINDS = ("Conv", "Gemm")

Feeds = Mapping[str, np.ndarray]


def float_graph(ctx: PassContext, who: str) -> Graph:
    """The float model kept before quantization (``ctx.state['float_graph']``), or a clear error."""
    g = ctx.get(FLOAT_GRAPH_KEY)
    if not isinstance(g, Graph):
        raise NpucError(f"{who} compares the quantized model with its float original, but ctx.state"
                        f"['{FLOAT_GRAPH_KEY}'] holds no float graph; the compile driver sets it — when running the "
                        f"pass yourself, put a copy of the graph taken before 'quantize' there")
    return g


def calibration_items(ctx: PassContext, graph: Graph, count: int | None, who: str, seed: int = 0) -> list[dict]:
    """Up to `count` calibration items (feeds dicts) for `graph`, from ctx.state['calibration_set'] or
    ctx.options['calibration_data'] (opened with ctx's preprocessing), a seeded sample when smaller."""
    from npuc.calibration.dataset import CalibrationSet, open_calibration_set

    spec = ctx.get("calibration_set")
    if spec is None:
        spec = ctx.options.get("calibration_data")
    if spec is None:
        raise NpucError(f"{who} needs calibration data: give --calib (ctx.options['calibration_data']) or put a "
                        f"CalibrationSet in ctx.state['calibration_set']")
    if isinstance(spec, (list, tuple)) and (not spec or isinstance(spec[0], Mapping)):
        items = [dict(f) for f in spec]  # already decoded feeds (tests, notebooks)
        items = items[:count] if count is not None else items
    else:
        if not isinstance(spec, CalibrationSet):
            pre = ctx.get("preprocessing") or ctx.options.get("preprocessing")
            spec = open_calibration_set(spec, graph, pre)
        chosen = spec.select(count, seed) if count is not None and count < len(spec) else spec
        items = [dict(f) for f in chosen]
    if not items:
        raise NpucError(f"{who}: the calibration set is empty")
    return items


def mac_layers(graph: Graph, layers: Sequence[str] = ()) -> list[Op]:
    """Conv/Gemm ops with a constant weight, in topological order; `layers` (names, origins or globs) filters."""
    out = []
    for op in graph.ops():
        ins = graph.inputs_of(op)
        if op.kind not in MAC_KINDS or len(ins) < 2 or ins[1] is None or not ins[1].is_const:
            continue
        if layers and not any(fnmatch.fnmatchcase(n, pat) for pat in layers for n in (op.name, *op.origin)):
            continue
        out.append(op)
    return out


def is_integer_layer(graph: Graph, op: Op) -> bool:
    """True when the op runs in integer arithmetic: integer weight with quant, integer input and output."""
    ins = graph.inputs_of(op)
    w, x, y = ins[1], ins[0], graph.outputs_of(op)[0]
    return (w.quant is not None and w.dtype.is_integer and x is not None and x.quant is not None
            and y.quant is not None)


def real_weight(w: Tensor) -> np.ndarray:
    """float64 values a (possibly integer) weight constant stands for."""
    data = np.asarray(w.data, dtype=np.float64)
    if w.quant is None:
        return data
    return data * _per_axis(np.asarray(w.quant.scale, dtype=np.float64), w.quant.axis, data.ndim)


def real_bias(b: Tensor | None, channels: int) -> np.ndarray:
    """float64 bias per output channel (zeros when there is none); integer biases are dequantized."""
    if b is None:
        return np.zeros(channels)
    data = np.asarray(b.data, dtype=np.float64).reshape(-1)
    if b.quant is None:
        return np.broadcast_to(data, (channels,)).copy()
    return data * np.asarray(b.quant.scale, dtype=np.float64)


def _per_axis(scale: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    if axis is None or scale.size == 1:
        return scale.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = scale.size
    return scale.reshape(shape)


def preactivation(op: Op, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The layer's output before its fused activation, in float64 (x real-valued)."""
    from npuc.backends.reference.kernels import evaluate_op

    plain = dataclasses.replace(op, attrs={**op.attrs, "activation": None, "clip_min": None, "clip_max": None},
                                meta={})
    return evaluate_op(plain, [np.asarray(x, np.float64), w, b])[0]


def activate(op: Op, y: np.ndarray) -> np.ndarray:
    """Apply the op's fused activation (relu / clip) to a copy of `y`."""
    act = op.attrs.get("activation")
    if act == "relu":
        return np.maximum(y, 0.0)
    if act == "clip":
        lo, hi = _clip_bounds(op, y.ndim)
        return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    return y


def _clip_bounds(op: Op, ndim: int):
    """The fused clip bounds of `op` as scalars or arrays broadcasting along its channel axis (None: unbounded)."""
    from npuc.ir.ops.conv import fused_clip_channel_axis

    out = []
    for v in (op.attrs.get("clip_min"), op.attrs.get("clip_max")):
        if isinstance(v, (tuple, list)):
            shape = [1] * ndim
            shape[fused_clip_channel_axis(op.kind) % ndim] = len(v)
            v = np.asarray(v, np.float64).reshape(shape)
        out.append(v)
    return out


def activation_mask(op: Op, pre: np.ndarray) -> np.ndarray | None:
    """Where the fused activation passes gradients (None: everywhere)."""
    act = op.attrs.get("activation")
    if act == "relu":
        return pre > 0.0
    if act == "clip":
        lo, hi = _clip_bounds(op, pre.ndim)
        m = np.ones(pre.shape, bool)
        if lo is not None:
            m &= pre > lo
        if hi is not None:
            m &= pre < hi
        return m
    return None


# ------------------------------------------------------------------ im2col
@dataclasses.dataclass(frozen=True)
class PatchGeometry:
    """How to cut input patches for one Conv/Gemm: groups, kernel, strides, pads, dilations."""

    kind: str
    groups: int
    cin: int
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]

    @classmethod
    def of(cls, graph: Graph, op: Op) -> "PatchGeometry":
        w = graph.inputs_of(op)[1]
        if op.kind == "Gemm":
            return cls("Gemm", 1, w.shape[1], (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
        g = int(op.attrs["group"])
        return cls("Conv", g, w.shape[1] * g, tuple(w.shape[2:]), tuple(op.attrs["strides"]),
                   tuple(op.attrs["pads"]), tuple(op.attrs["dilations"]))

    def weight_matrix(self, w: np.ndarray) -> np.ndarray:
        """(groups, out_per_group, K) view of a weight, K = in_per_group * kh * kw."""
        return w.reshape(self.groups, w.shape[0] // self.groups, -1)

    def patches(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """(P, groups, K) input patches of item `x` (batch 1) at flat output positions (row-major over oh, ow)."""
        if self.kind == "Gemm":
            return np.broadcast_to(x.reshape(1, 1, -1), (len(positions), 1, x.shape[-1])).astype(np.float32)
        _, c, h, wd = x.shape
        pt, pl, pb, pr = self.pads
        xp = np.pad(x[0], ((0, 0), (pt, pb), (pl, pr)))
        kh, kw = self.kernel
        sh, sw = self.strides
        dh, dw = self.dilations
        ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
        oy, ox = np.divmod(positions, ow)
        rows = oy[:, None] * sh + dh * np.arange(kh)  # (P, kh)
        cols = ox[:, None] * sw + dw * np.arange(kw)  # (P, kw)
        taps = xp[:, rows[:, :, None], cols[:, None, :]]  # (C, P, kh, kw)
        return np.ascontiguousarray(taps.transpose(1, 0, 2, 3)).reshape(len(positions), self.groups, -1)


def sample_positions(rng: np.random.Generator, out_shape: Sequence[int], count: int) -> np.ndarray:
    """Up to `count` distinct flat spatial positions of a layer output (all of them when fewer)."""
    spatial = int(np.prod(out_shape[2:], dtype=np.int64)) if len(out_shape) > 2 else 1
    if spatial <= count:
        return np.arange(spatial)
    return np.sort(rng.choice(spatial, size=count, replace=False))


def channel_rows(y: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(P, C) values of a (1, C, ...) output at flat spatial positions."""
    return y.reshape(y.shape[1], -1)[:, positions].T


#: called before an op runs with its input values per item (None for absent inputs); returns True when
#: it changed the op's constants (its derived integer parameters are then recomputed)
BeforeOp = Callable[[Op, list[list[np.ndarray | None]]], bool]


def run_lockstep(graph: Graph, items: Sequence[Feeds], before_op: BeforeOp, stop_after: Op | None = None) -> None:
    """Run a quantized graph on all items op by op (every item through op k before op k+1).

    This is what makes the layer-by-layer algorithms (IBC, AdaRound) cost one pass
    over the data instead of one per layer: when `before_op` sees a layer, its
    inputs already come from the corrected layers above it, for every item.
    Values are released after their last use; `stop_after` ends the run early.
    """
    from npuc.backends.reference.integer_kernels import integer_kernel_for
    from npuc.backends.reference.integer_kernels.float16 import run_float16
    from npuc.quantization.op_params import derive_op_params, is_float16_op

    ops = graph.ops()
    values: dict[int, list[np.ndarray]] = {}
    for t in graph.inputs:
        values[id(t)] = [np.asarray(f[t.name]).astype(t.dtype.numpy, copy=False) for f in items]
    remaining: dict[int, int] = {}
    for op in ops:
        for t in graph.inputs_of(op):
            if t is not None and not t.is_const:
                remaining[id(t)] = remaining.get(id(t), 0) + 1
    n = len(items)
    for op in ops:
        ins_t = graph.inputs_of(op)
        per_item = [[None if t is None else (t.data if t.is_const else values[id(t)][i]) for t in ins_t]
                    for i in range(n)]
        before_op(op, per_item)
        ins_t = graph.inputs_of(op)  # before_op may have added a bias
        outs_t = graph.outputs_of(op)
        specs = [(t.shape, t.dtype.numpy) for t in outs_t]
        if is_float16_op(graph, op):
            results = [run_float16(op, [None if t is None else (t.data if t.is_const else values[id(t)][i])
                                        for t in ins_t], {}, specs) for i in range(n)]
        else:
            params, kern = derive_op_params(graph, op), integer_kernel_for(op.kind)
            results = [kern(op, [None if t is None else (t.data if t.is_const else values[id(t)][i])
                                 for t in ins_t], params, specs) for i in range(n)]
        for port, t in enumerate(outs_t):
            values[id(t)] = [r[port] for r in results]
        for t in ins_t:
            if t is not None and not t.is_const and id(t) in remaining:
                remaining[id(t)] -= 1
                if remaining[id(t)] == 0:
                    values.pop(id(t), None)
        if op is stop_after:
            return


def dequantized(graph: Graph, tensor: Tensor, codes: np.ndarray) -> np.ndarray:
    """Real values of an activation of the quantized graph (float tensors pass through)."""
    from npuc.quantization.schemes import dequantize

    if tensor.quant is None or np.asarray(codes).dtype.kind not in "iu":
        return np.asarray(codes, dtype=np.float64)
    return dequantize(codes, tensor.quant, np.float64)


def float_values(graph: Graph, items: Sequence[Feeds], names: Sequence[str],
                 reduce: Callable[[str, int, np.ndarray], None]) -> None:
    """Run the float graph on every item and hand each named tensor's value to reduce(name, item, value)."""
    from npuc.backends.reference.executor import Executor

    ex = Executor(graph)
    wanted = list(dict.fromkeys(names))
    for i, feeds in enumerate(items):
        values = ex.run(feeds, wanted)
        for name in wanted:
            reduce(name, i, values[name])
