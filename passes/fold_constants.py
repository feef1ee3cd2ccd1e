"""fold_constants: evaluate ops whose inputs are all constant and store the result as a constant."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.errors import NpucError
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.passes.base import Pass, PassContext, PassResult, option

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldConstants(Pass):
    """Evaluate ops whose inputs are all constants (and Shape of any tensor) into constants.

    The reference float kernels compute the values, so folding matches execution.
    Ops producing a graph output are kept. `size_limit` stops small constants being
    blown up into big ones (Expand, Tile, ConstantOfShape-like chains).
    """

    name: ClassVar[str] = "fold_constants"
    size_limit: int = option(
        1 << 16, "largest number of elements a folded result may exceed its constant inputs by")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        folded = shapes = skipped = 0
        for op in graph.ops():
            outs = graph.outputs_of(op)
            if any(graph.is_output(t) for t in outs):
                continue
            ins = graph.inputs_of(op)
            if op.kind == "Shape" and ins and ins[0] is not None:
                start, end = op.attrs["start"], op.attrs["end"]
                values = [np.array(ins[0].shape[slice(start, end)], dtype=np.int64)]
                shapes += 1
            else:
                present = [t for t in ins if t is not None]
                if not present or not all(t.is_const for t in present):
                    continue
                in_elems = sum(t.size for t in present)
                if sum(t.size for t in outs) > in_elems + self.size_limit:
                    skipped += 1
                    log.debug("not folding %s '%s': result too large", op.kind, op.name)
                    continue
                try:
                    values = _evaluate(op, [None if t is None else t.data for t in ins])
                except NpucError as exc:
                    skipped += 1
                    log.debug("not folding %s '%s': %s", op.kind, op.name, exc)
                    continue
                folded += 1
            _replace_by_constants(graph, op, values)
        removed = graph.remove_unused_tensors() if folded or shapes else 0
        res = PassResult.from_counts(folded=folded, shapes=shapes)
        if skipped:
            res.stats["kept"] = skipped
        if removed:
            res.stats["dead_constants"] = removed
        return res


def _evaluate(op: Op, arrays: list) -> list[np.ndarray]:
    from npuc.backends.reference.kernels import evaluate_op

    return evaluate_op(op, arrays)


def _replace_by_constants(graph: Graph, op: Op, values: list[np.ndarray]) -> None:
    """Swap each output of `op` for a constant of the same name, shape and dtype."""
    outs = graph.outputs_of(op)
    if len(values) != len(outs):
        raise ValueError(f"{op.kind} '{op.name}' kernel gave {len(values)} outputs, graph has {len(outs)}")
    graph.remove_op(op, remove_outputs=False)
    for t, value in zip(outs, values):
        arr = np.asarray(value).astype(t.dtype.numpy, copy=False)
        if arr.shape != t.shape:
            raise ValueError(f"{op.kind} '{op.name}' kernel gave shape {arr.shape} for '{t.name}', expected {t.shape}")
        name = t.name
        const = graph.add_const(name + "__folded", arr, dtype=t.dtype)
        graph.replace_uses(t, const)
        graph.remove_tensor(t)
        graph.rename_tensor(const, name)
