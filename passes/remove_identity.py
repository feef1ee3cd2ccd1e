"""remove_identity: drop ops that do not change their input (Identity, Dropout, no-op Reshape/Transpose/Cast, ...)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.ops.data_movement import slice_bounds
from npuc.passes.base import Pass, PassContext, PassResult, option


def is_identity(graph: Graph, op: Op) -> bool:
    """True when `op` returns its (single, non-constant-folded) input unchanged."""
    ins = graph.inputs_of(op)
    if not ins or ins[0] is None or len(graph.outputs_of(op)) != 1:
        return False
    x = ins[0]
    out = graph.outputs_of(op)[0]
    if out.shape != x.shape or out.dtype != x.dtype:
        return False
    kind, a = op.kind, op.attrs
    if kind in ("Identity", "Dropout", "Reshape", "Cast", "Expand"):
        return len(ins) == 1 or kind == "Dropout"
    if kind == "Transpose":
        return tuple(a["perm"]) == tuple(range(len(x.shape)))
    if kind == "Concat":
        return len(ins) == 1
    if kind == "Pad":
        return all(p == 0 for p in a["pads"])
    if kind == "Clip":
        return a["min"] is None and a["max"] is None
    if kind == "Slice":
        axes = a["axes"] if a["axes"] is not None else range(len(a["starts"]))
        steps = a["steps"] if a["steps"] is not None else (1,) * len(a["starts"])
        for st, en, ax, sp in zip(a["starts"], a["ends"], axes, steps):
            dim = x.shape[ax]
            if slice_bounds(dim, st, en, sp) != range(dim):
                return False
        return True
    if kind == "Tile":
        return all(r == 1 for r in a["repeats"])
    return False


@dataclass(frozen=True)
class RemoveIdentity(Pass):
    """Remove ops that leave their input unchanged: Identity, Dropout, Reshape/Expand to the same
    shape, identity Transpose, Cast to the same type, one-input Concat, zero Pad, full Slice,
    unbounded Clip. Chains of Reshapes collapse into one. Graph output names are kept."""

    name: ClassVar[str] = "remove_identity"
    merge_reshapes: bool = option(True, "make Reshape(Reshape(x)) a single Reshape of x")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        removed = kept = merged = 0
        for op in graph.ops():
            if self.merge_reshapes and op.kind == "Reshape":
                src = graph.inputs_of(op)[0]
                prev = graph.producer(src)
                if prev is not None and prev.kind == "Reshape":
                    graph.set_input(op, 0, graph.inputs_of(prev)[0])
                    if not graph.consumers(src) and not graph.is_output(src):
                        graph.remove_op(prev)
                    merged += 1
            if not is_identity(graph, op):
                continue
            if bypass(graph, op):
                removed += 1
            else:
                kept += 1
        res = PassResult.from_counts(removed=removed, merged_reshapes=merged)
        if kept:
            res.stats["kept_at_outputs"] = kept
        return res


def bypass(graph: Graph, op: Op) -> bool:
    """Remove a pass-through op, reconnecting readers to its input. Returns False when that would
    rename a graph output that cannot take the input's place (input is a graph input, constant or output)."""
    x = graph.inputs_of(op)[0]
    out = graph.outputs_of(op)[0]
    if not graph.is_output(out):
        graph.replace_uses(out, x)
        graph.remove_op(op)
        return True
    # the graph output keeps its name: the input tensor takes it over
    if graph.producer(x) is None or graph.is_output(x):
        return False
    name, layout = out.name, out.layout
    graph.replace_uses(out, x)
    graph.remove_op(op)
    graph.rename_tensor(x, name)
    x.layout = x.layout or layout
    return True
