"""The layers of a model file, for binding selectors and explaining a script."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from npuc.errors import ScriptError
from npuc.script.binder import BoundScript
from npuc.script.layers import LayerRef, layers_from_graph


def load_model_layers(
    path: str | Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
) -> list[LayerRef]:
    """Lower the model at `path` with npuc's front-end and list its ops as LayerRefs.

    Selectors then see exactly the IR op names and origins the compiler uses.
    """
    p = Path(path)
    if not p.is_file():
        raise ScriptError(f"model file not found: {str(p)!r}")
    from npuc.frontends import load_model  # imported late: it pulls in onnx and the IR

    graph = load_model(str(p), input_shapes=dict(input_shapes) if input_shapes else None, outputs=outputs or None)
    return layers_from_graph(graph)


def normalization_layers(bound: BoundScript) -> list[LayerRef]:
    """The layers the script's `normalization` lines add after the model's inputs (named after the line's
    assignment, as the compiler names them: `normalization1/sub`, `normalization1/mul`), so that a check
    against the model file sees what compile's later lines can select."""
    refs: list[LayerRef] = []
    for d in bound.directives:
        if d.name != "normalization" or d.command is None:
            continue
        label = d.targets[0] if d.targets else "normalization"
        inputs = d.args.get("inputs") or [None]
        for i in range(len(inputs)):
            name = label if len(inputs) == 1 else f"{label}_{i}"
            refs += [LayerRef(f"{name}/{part}", kind, (name,), (f"{name}/{part}",))
                     for part, kind in (("sub", "Sub"), ("mul", "Mul"))]
    return refs


def import_settings(bound: BoundScript) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """What a script says about importing the model: input shapes, and the tensors to end at."""
    shapes: dict[str, tuple[int, ...]] = {}
    ends: list[str] = []
    for d in bound.directives:
        if d.name == "input_shape":
            shapes[d.args["name"]] = tuple(d.args["shape"])
        elif d.name in ("prune_after", "outputs"):
            ends.extend(t for t in d.args.get("tensors", ()) if t not in ends)
    return shapes, ends
