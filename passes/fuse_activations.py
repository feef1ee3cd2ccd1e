"""fuse_activations: Conv/ConvTranspose/Gemm/MatMul followed by Relu or Clip -> one op with a fused activation.

Also Max then Min (or Min then Max) with constant bounds of which at least one has a value per output
channel (how the ONNX exporters write a fused clip with per-channel bounds, since ONNX Clip takes
scalars): a clip with per-channel bounds (npuc.ir.ops.conv), so an exported float model imports back
to the same layers. Pairs of scalar bounds stay separate ops."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.rewrite import absorb_consumer, merge_origins, sole_reader

FUSING_KINDS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def fused_form(act: Op) -> dict | None:
    """The fused-activation attributes equivalent to `act`, or None if it cannot be fused."""
    if act.kind == "Relu":
        return {"activation": "relu", "clip_min": None, "clip_max": None}
    if act.kind == "Clip":
        lo, hi = act.attrs["min"], act.attrs["max"]
        if lo is not None and hi is None and float(lo) == 0.0:
            return {"activation": "relu", "clip_min": None, "clip_max": None}
        if lo is None or hi is None:
            return None  # one-sided clips other than ReLU stay separate ops
        return {"activation": "clip", "clip_min": float(lo), "clip_max": float(hi)}
    return None


def _channel_bound(graph: Graph, op: Op, act: Op, out) -> float | tuple[float, ...] | None:
    """The bound of ``Max(out, c)`` / ``Min(out, c)`` (either operand order) when c is a constant that is a
    scalar or one value per output channel of `op` (shape (C, 1, 1) / (1, C, 1, 1) for a conv, (C,) / (1, C)
    for Gemm/MatMul): float or a tuple per channel; None otherwise."""
    from npuc.ir.ops.conv import fused_clip_channel_axis

    ins = graph.inputs_of(act)
    if len(ins) != 2 or sum(1 for t in ins if t is out) != 1:
        return None
    c = ins[1] if ins[0] is out else ins[0]
    if c is None or not c.is_const or not c.dtype.is_float or c.size == 0:
        return None
    data = np.asarray(c.data, np.float64)
    if not np.all(np.isfinite(data)):
        return None
    if np.all(data == data.reshape(-1)[0]) and len(data.shape) <= len(out.shape):
        return float(data.reshape(-1)[0])
    nd = len(out.shape)
    axis = fused_clip_channel_axis(op.kind) % nd
    channels = out.shape[axis]
    shape = list(data.shape)
    if len(shape) > nd:
        return None
    shape = [1] * (nd - len(shape)) + shape  # numpy broadcasting aligns trailing axes
    if shape[axis] != channels or any(d != 1 for i, d in enumerate(shape) if i != axis):
        return None
    return tuple(float(v) for v in data.reshape(-1))


def _min_max_form(graph: Graph, op: Op, first: Op) -> tuple[dict, list[Op]] | None:
    """Max then Min (or Min then Max) with constant bounds after `op`: the equivalent fused clip and the
    two ops it replaces (the exported form of a per-channel clip, compiler/export/onnx_ops.py)."""
    out = graph.outputs_of(op)[0]
    b1 = _channel_bound(graph, op, first, out)
    if b1 is None:
        return None
    mid = graph.outputs_of(first)[0]
    second = sole_reader(graph, mid)
    if second is None or second.kind != ("Min" if first.kind == "Max" else "Max"):
        return None
    b2 = _channel_bound(graph, op, second, mid)
    if b2 is None:
        return None
    lo, hi = (b1, b2) if first.kind == "Max" else (b2, b1)
    if not isinstance(lo, tuple) and not isinstance(hi, tuple):
        return None  # scalar Max/Min pairs stay as they are (only the per-channel export form is recognised)
    if np.any(np.asarray(lo, np.float64) > np.asarray(hi, np.float64)):
        return None  # Min(Max) and Max(Min) differ on an empty interval
    return {"activation": "clip", "clip_min": lo, "clip_max": hi}, [first, second]


@dataclass(frozen=True)
class FuseActivations(Pass):
    """Fuse a Relu / Clip (Relu6) into the Conv, ConvTranspose, Gemm or MatMul before it,
    when that op's output has no other reader."""

    name: ClassVar[str] = "fuse_activations"
    clip: bool = option(True, "also fuse Clip (Relu6 and other two-sided clips), not only Relu")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        fused = 0
        for op in graph.ops():
            if op.kind not in FUSING_KINDS or op.attrs.get("activation") is not None:
                continue
            out = graph.outputs_of(op)[0]
            act = sole_reader(graph, out)
            if act is not None and act.kind in ("Max", "Min") and self.clip:
                found = _min_max_form(graph, op, act)
                if found is not None:
                    attrs, acts = found
                    op.attrs.update(attrs)
                    op.origin = merge_origins(op, *acts)
                    absorb_consumer(graph, out, acts[0])
                    absorb_consumer(graph, out, acts[1])
                    fused += 1
                continue
            if act is None or act.kind not in ("Relu", "Clip") or (act.kind == "Clip" and not self.clip):
                continue
            attrs = fused_form(act)
            if attrs is None:
                continue
            op.attrs.update(attrs)
            op.origin = merge_origins(op, act)
            absorb_consumer(graph, out, act)
            fused += 1
        return PassResult.from_counts(fused=fused)
