"""Model front-ends: read a model file into the IR.

`load_model` picks the front-end by file extension, then by the file's magic
bytes. Each front-end is a `Frontend` record in `FRONTENDS`: the built-in
ONNX and TFLite ones are registered below, plugins add theirs with
`register_frontend`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from npuc.errors import ModelImportError, PluginError
from npuc.frontends.input_shapes import parse_input_shapes
from npuc.frontends.summary import ModelSummary
from npuc.ir.graph import Graph

__all__ = ["Frontend", "FRONTENDS", "register_frontend", "find_frontend", "load_model", "inspect_model",
           "parse_input_shapes"]

LoadFn = Callable[..., Graph]  # (path, input_shapes=None, outputs=None) -> Graph
InspectFn = Callable[[Path], ModelSummary]


@dataclass(frozen=True)
class Frontend:
    """A model format: how to recognise its files, import them and summarise them."""

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[bytes], bool]  # first 64 bytes of the file -> is it this format?
    load: LoadFn
    inspect: InspectFn
    source: str = "builtin"


#: registered front-ends by name
FRONTENDS: dict[str, Frontend] = {}


def register_frontend(frontend: Frontend) -> Frontend:
    """Add a model format; a second front-end with the same name is an error naming both sources."""
    if frontend.name in FRONTENDS:
        raise PluginError(f"front-end '{frontend.name}' is registered twice: by {FRONTENDS[frontend.name].source} "
                          f"and by {frontend.source}")
    FRONTENDS[frontend.name] = frontend
    return frontend


def _load_onnx(path, input_shapes=None, outputs=None) -> Graph:
    from npuc.frontends.onnx import load_onnx

    return load_onnx(path, input_shapes=input_shapes, outputs=outputs)


def _inspect_onnx(path) -> ModelSummary:
    from npuc.frontends.onnx import inspect_onnx

    return inspect_onnx(path)


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with field 1 (ir_version, varint: 0x08) in every exporter we know
    return head[:1] == b"\x08"


def _load_tflite(path, input_shapes=None, outputs=None) -> Graph:
    from npuc.frontends.tflite import load_tflite

    return load_tflite(path, input_shapes=input_shapes, outputs=outputs)


def _inspect_tflite(path) -> ModelSummary:
    from npuc.frontends.tflite_inspect import inspect_tflite

    return inspect_tflite(path)


def _looks_like_tflite(head: bytes) -> bool:
    return head[4:8] == b"TFL3"  # the flatbuffer file identifier


# Built-in formats, registered with lazy loaders so `import npuc.frontends` stays cheap.
# TFLite is listed first: its magic is exact, ONNX's first byte is only a heuristic.
register_frontend(Frontend("tflite", (".tflite",), _looks_like_tflite, _load_tflite, _inspect_tflite))
register_frontend(Frontend("onnx", (".onnx",), _looks_like_onnx, _load_onnx, _inspect_onnx))


def find_frontend(path: str | Path) -> Frontend:
    """The front-end for a model file: by extension, else by magic bytes."""
    p = Path(path)
    if not p.exists():
        raise ModelImportError(f"cannot read model '{p}': no such file.")
    if p.is_dir():
        raise ModelImportError(f"cannot read model '{p}': it is a directory, not a model file.")
    suffix = p.suffix.lower()
    for fe in FRONTENDS.values():
        if suffix in fe.extensions:
            return fe
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise ModelImportError(f"cannot read model '{p}': {exc.strerror or exc}.") from None
    if not head:
        raise ModelImportError(f"cannot read model '{p}': the file is empty (0 bytes).")
    for fe in FRONTENDS.values():
        if fe.sniff(head):
            return fe
    known = ", ".join(ext for fe in FRONTENDS.values() for ext in fe.extensions)
    raise ModelImportError(f"cannot tell the format of model '{p}': the extension '{suffix or '(none)'}' is not "
                           f"one of {known} and the content matches no known model format.")


def load_model(
    path: str | Path,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
) -> Graph:
    """Import a model file (format chosen by extension or content) into an IR Graph."""
    return find_frontend(path).load(Path(path), input_shapes=input_shapes, outputs=outputs)


def inspect_model(path: str | Path) -> ModelSummary:
    """Summarise a model file without importing it (inputs, outputs, ops, unsupported ops)."""
    return find_frontend(path).inspect(Path(path))
