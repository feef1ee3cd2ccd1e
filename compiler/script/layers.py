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


def output_layer_aliases(graph: Any) -> dict[str, tuple[str, ...]]:
    """Hailo-style names of the layers producing the model outputs: `output_layer1`, `output_layer2`, ...

    Scripts written for the vendor tools select the output layers this way
    (`quantization_param(output_layer*, precision_mode=a16_w16)`).
    """
    names: dict[str, tuple[str, ...]] = {}
    producer = getattr(graph, "producer", None)
    for i, t in enumerate(getattr(graph, "outputs", ()) or (), start=1):
        op = producer(t) if producer is not None else None
        if op is not None:
            names[op.name] = names.get(op.name, ()) + (f"output_layer{i}",)
    return names


def layers_from_graph(graph: Any) -> list[LayerRef]:
    """LayerRefs of an npuc IR graph's ops, in its topological order."""
    refs = []
    outputs_of = getattr(graph, "outputs_of", None)
    aliases = output_layer_aliases(graph)
    for op in graph.ops():
        outs: Iterable[Any] = outputs_of(op) if outputs_of is not None else ()
        refs.append(
            LayerRef(
                str(op.name),
                str(getattr(op, "kind", "")),
                tuple(str(o) for o in getattr(op, "origin", ()) or ()) + aliases.get(op.name, ()),
                tuple(str(getattr(t, "name", t)) for t in outs),
            )
        )
    return refs
