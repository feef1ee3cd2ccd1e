"""The layers of a model file, for binding selectors and explaining a script."""
from __future__ import annotations

import importlib
import logging
from pathlib import Path

from npuc.errors import ModelImportError, ScriptError
from npuc.script.layers import LayerRef, layers_from_graph

log = logging.getLogger(__name__)

_FRONTENDS = {".onnx": ("npuc.frontends.onnx", "load_onnx"), ".tflite": ("npuc.frontends.tflite", "load_tflite")}


def load_model_layers(path: str | Path) -> tuple[list[LayerRef], str]:
    """LayerRefs of the model at `path` and a note on how they were read.

    The model is lowered with npuc's front-end, so selectors see the IR op
    names and origins the compiler uses. Where that front-end is not
    installed, an ONNX model's nodes are listed directly (names and op types
    as in the file), and the note says so.
    """
    p = Path(path)
    if not p.is_file():
        raise ScriptError(f"model file not found: {str(p)!r}")
    suffix = p.suffix.lower()
    if suffix not in _FRONTENDS:
        raise ScriptError(f"{p}: unknown model format {suffix or '(no suffix)'!r}; expected .onnx or .tflite")
    module_name, func_name = _FRONTENDS[suffix]
    try:
        loader = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError):
        if suffix != ".onnx":
            raise ScriptError(f"{p}: the {suffix} front-end is not available in this installation") from None
        log.info("%s not available; listing the ONNX nodes of %s", module_name, p)
        return onnx_node_layers(p), "read from the ONNX file's nodes (npuc's ONNX front-end is not installed)"
    graph = loader(str(p))
    return layers_from_graph(graph), "lowered to npuc IR"


def onnx_node_layers(path: str | Path) -> list[LayerRef]:
    """An ONNX model's nodes (Constant nodes left out) as LayerRefs, in file order (topological)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise ModelImportError(f"{path}: not a readable ONNX model ({exc})") from None
    layers = []
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            continue
        name = node.name or (node.output[0] if node.output else f"{node.op_type}_{i}")
        origin = (node.name,) if node.name and node.name != name else ()
        layers.append(LayerRef(name, node.op_type, origin, tuple(o for o in node.output if o)))
    return layers
