"""LayerRef: what binding needs to know about one layer of a model."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LayerRef:
    """One layer (IR op) in topological order: its name, kind, source-model origin names.

    `outputs` (optional) are its output tensor names, which `prune_after` and
    `outputs` refer to.
    """

    name: str
    kind: str = ""
    origin: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


def layers_from_graph(graph: Any) -> list[LayerRef]:
    """LayerRefs of an npuc IR graph's ops, in its topological order."""
    refs = []
    outputs_of = getattr(graph, "outputs_of", None)
    for op in graph.ops():
        outs: Iterable[Any] = outputs_of(op) if outputs_of is not None else ()
        refs.append(
            LayerRef(
                str(op.name),
                str(getattr(op, "kind", "")),
                tuple(str(o) for o in getattr(op, "origin", ()) or ()),
                tuple(str(getattr(t, "name", t)) for t in outs),
            )
        )
    return refs
