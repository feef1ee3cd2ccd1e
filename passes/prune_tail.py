"""prune_tail: drop layout-only ops (Reshape, Transpose, Flatten/Squeeze as Reshape, ...) at the ends of output branches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, option

#: default layout names by rank for activations of the NCHW IR
_LAYOUTS = {1: "C", 2: "NC", 3: "NCW", 4: "NCHW", 5: "NCDHW"}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "value") and not isinstance(v, (int, float, str)):
        return str(v)
    return v


@dataclass(frozen=True)
class PruneTail(Pass):
    """Remove layout-only ops (Reshape, Transpose, Flatten, Squeeze, DepthToSpace, ...) at the end of
    output branches, repeatedly. The output keeps its name but takes the pre-prune shape; its layout
    and graph.meta['pruned_outputs'] record what was removed, so the host can redo it."""

    name: ClassVar[str] = "prune_tail"
    kinds: tuple[str, ...] = option((), "op kinds to prune (empty: every kind marked layout_only)")

    def _prunable(self, graph: Graph, op) -> bool:
        if self.kinds:
            return op.kind in self.kinds
        return graph.spec(op).layout_only

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        pruned = graph.meta.setdefault("pruned_outputs", {})
        removed = 0
        for pos in range(len(graph.outputs)):
            out = graph.outputs[pos]
            name = out.name
            record = pruned.get(name) or {"original_shape": list(out.shape), "removed": []}
            steps = []
            while True:
                out = graph.outputs[pos]
                op = graph.producer(out)
                if op is None or not self._prunable(graph, op) or len(graph.outputs_of(op)) != 1:
                    break
                ins = [t for t in graph.inputs_of(op) if t is not None]
                if len(ins) != 1 or graph.consumers(out):
                    break
                x = ins[0]
                if x.is_const or graph.producer(x) is None or graph.is_output(x):
                    break
                steps.append({"kind": op.kind, "name": op.name,
                              "attrs": {k: _plain(v) for k, v in sorted(op.attrs.items())},
                              "output_shape": list(out.shape)})
                graph.replace_uses(out, x)
                graph.remove_op(op)
                graph.rename_tensor(x, name)
                removed += 1
            if steps:
                out = graph.outputs[pos]
                # host-side order: first the op nearest the new output
                record["removed"] = list(reversed(steps)) + record["removed"]
                record["shape"] = list(out.shape)
                out.layout = out.layout or _LAYOUTS.get(out.rank)
                pruned[name] = record
        if not pruned:
            del graph.meta["pruned_outputs"]
        return PassResult.from_counts(removed=removed)
