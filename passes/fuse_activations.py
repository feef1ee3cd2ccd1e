"""fuse_activations: Conv/ConvTranspose/Gemm/MatMul followed by Relu or Clip -> one op with a fused activation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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
