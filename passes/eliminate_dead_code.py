"""eliminate_dead_code: remove ops whose results reach no graph output, and unused tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult


def remove_dead(graph: Graph) -> tuple[int, int]:
    """Remove ops that do not contribute to any graph output, then unused tensors.
    Graph inputs always stay (they are the model's interface). Returns (ops, tensors) removed."""
    live = {id(t) for t in graph.outputs}
    dead = []
    for op in reversed(graph.ops()):
        if any(id(t) in live for t in graph.outputs_of(op)):
            live.update(id(t) for t in graph.inputs_of(op) if t is not None)
        else:
            dead.append(op)
    for op in dead:
        graph.remove_op(op, remove_outputs=False)
    return len(dead), graph.remove_unused_tensors()


@dataclass(frozen=True)
class EliminateDeadCode(Pass):
    """Remove ops whose outputs reach no graph output, and tensors nothing uses."""

    name: ClassVar[str] = "eliminate_dead_code"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        ops, tensors = remove_dead(graph)
        return PassResult.from_counts(ops=ops, tensors=tensors)
