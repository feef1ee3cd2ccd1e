"""Small rewrite helpers shared by the cleanup passes (matching and replacing op chains)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor


def merge_origins(*ops: Op) -> tuple[str, ...]:
    """Union of the ops' origins, in order, without repeats (fused ops keep every source name)."""
    out: list[str] = []
    for op in ops:
        for name in op.origin or (op.name,):
            if name not in out:
                out.append(name)
    return tuple(out)


def sole_reader(graph: Graph, t: Tensor) -> Op | None:
    """The one op reading `t` (possibly on several ports), or None if there are more, none, or `t` is an output."""
    if graph.is_output(t):
        return None
    readers = {id(op): op for op, _ in graph.consumers(t)}
    return next(iter(readers.values())) if len(readers) == 1 else None


def only_read_by(graph: Graph, t: Tensor, ops: Iterable[Op]) -> bool:
    """True when every reader of `t` is one of `ops` and `t` is not a graph output."""
    allowed = {id(o) for o in ops}
    return not graph.is_output(t) and all(id(op) in allowed for op, _ in graph.consumers(t))


def single_output(graph: Graph, op: Op) -> Tensor:
    return graph.outputs_of(op)[0]


def producer_of(graph: Graph, t: Tensor | None, kinds: str | Sequence[str]) -> Op | None:
    """The producer of `t` if it is one of `kinds`."""
    if t is None:
        return None
    op = graph.producer(t)
    if op is None:
        return None
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    return op if op.kind in kinds else None


def scalar_value(t: Tensor | None) -> float | None:
    """The value of a constant whose elements are all equal (a broadcast scalar), else None."""
    if t is None or not t.is_const or t.size == 0:
        return None
    flat = np.asarray(t.data).reshape(-1)
    first = flat[0]
    if not np.all(flat == first):
        return None
    return float(first)


def is_close(value: float | None, target: float, rel: float = 1e-5) -> bool:
    return value is not None and abs(value - target) <= rel * max(1.0, abs(target))


def absorb_consumer(graph: Graph, produced: Tensor, consumer: Op) -> None:
    """`produced`'s producer now computes what `consumer` computed: drop `consumer` and give
    `produced` the name (and graph-output slot) of the consumer's output, so names stay stable."""
    out = single_output(graph, consumer)
    name, layout = out.name, out.layout
    graph.replace_uses(out, produced)
    graph.remove_op(consumer)
    if graph.has_tensor(name):  # still there only if something odd keeps it alive
        graph.remove_tensor(graph.tensor(name))
    graph.rename_tensor(produced, name)
    if layout and not produced.layout:
        produced.layout = layout


def replace_ops(
    graph: Graph,
    ops: Sequence[Op],
    kind: str,
    inputs: Sequence[Tensor | None],
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Op:
    """Replace a matched chain `ops` (in data-flow order; the last one produces the result) by one new op producing the same tensor.

    The new op is named after the last op and its origin is the union of all origins.
    Intermediate tensors of the chain must have no readers outside it.
    """
    last = ops[-1]
    out = single_output(graph, last)
    origin = merge_origins(*ops)
    new_name = name or last.name
    for op in reversed(ops):  # readers before producers, so intermediates lose their last reader first
        graph.remove_op(op, remove_outputs=op is not last)
    return graph.add_op(kind, inputs, attrs, name=new_name, origin=origin, outputs=[out])
