"""prune_outputs: keep only the named output tensors (may be intermediate); drop what feeds only the rest."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import ClassVar

from npuc.errors import PassError
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.eliminate_dead_code import remove_dead


@dataclass(frozen=True)
class PruneOutputs(Pass):
    """Keep only the named tensors as graph outputs (they may be intermediate tensors, which cuts
    off everything after them); every op feeding only dropped outputs is removed."""

    name: ClassVar[str] = "prune_outputs"
    outputs: tuple[str, ...] = option((), "names of the tensors to keep as outputs, in order (empty: no change)")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        if not self.outputs:
            return PassResult.unchanged()
        problems = []
        chosen = []
        for name in self.outputs:
            if not graph.has_tensor(name):
                close = difflib.get_close_matches(name, [t.name for t in graph.tensors()], n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                problems.append(f"no tensor named '{name}'{hint}")
                continue
            t = graph.tensor(name)
            if t.is_const:
                problems.append(f"'{name}' is a constant, not a computed tensor")
            elif any(t is c for c in chosen):
                problems.append(f"'{name}' is named twice")
            chosen.append(t)
        if problems:
            raise PassError("cannot keep the requested outputs: " + "; ".join(problems))
        before = [t.name for t in graph.outputs]
        graph.outputs = list(chosen)
        ops, tensors = remove_dead(graph)
        changed = before != [t.name for t in chosen] or ops > 0
        stats = {"kept": len(chosen), "dropped_outputs": len([n for n in before if n not in self.outputs])}
        if ops:
            stats["removed_ops"] = ops
        return PassResult(changed, stats)
