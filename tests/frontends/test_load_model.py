"""The front-end dispatcher (load_model by extension / magic) and --input-shape parsing."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from npuc.errors import ModelImportError, PluginError
from npuc.frontends import FRONTENDS, Frontend, find_frontend, inspect_model, load_model, parse_input_shapes, \
    register_frontend
from onnx_testing import In, make_model


def _save(path) -> None:
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": In((1, 2))}, {"y": np.float32}), path)


def test_dispatch_by_extension_and_by_content(tmp_path) -> None:
    _save(tmp_path / "a.onnx")
    _save(tmp_path / "model.bin")  # no known extension: recognised by its content
    assert find_frontend(tmp_path / "a.onnx").name == "onnx"
    assert find_frontend(tmp_path / "model.bin").name == "onnx"
    assert [op.kind for op in load_model(tmp_path / "model.bin").ops()] == ["Relu"]
    assert inspect_model(tmp_path / "a.onnx").format == "onnx"


def test_unknown_format(tmp_path) -> None:
    p = tmp_path / "weights.dat"
    p.write_bytes(b"PK\x03\x04 zip archive")
    with pytest.raises(ModelImportError, match="cannot tell the format"):
        load_model(p)
    with pytest.raises(ModelImportError, match="no such file"):
        load_model(tmp_path / "missing.onnx")


def test_duplicate_frontend_is_an_error() -> None:
    fe = FRONTENDS["onnx"]
    with pytest.raises(PluginError, match="registered twice"):
        register_frontend(Frontend("onnx", (".x",), lambda h: False, fe.load, fe.inspect, source="plugin x"))


@pytest.mark.parametrize("specs, expected", [
    (["x=1,3,48,192"], {"x": (1, 3, 48, 192)}),
    (["x=1x3x48x192", "y:[2, 5]"], {"x": (1, 3, 48, 192), "y": (2, 5)}),
    (["input.1=4"], {"input.1": (4,)}),
    ([], {}),
])
def test_parse_input_shapes(specs, expected) -> None:
    assert parse_input_shapes(specs) == expected


@pytest.mark.parametrize("spec", ["x", "x=", "x=1,a,3", "=1,2", "x=1,0,3"])
def test_parse_input_shapes_errors(spec) -> None:
    with pytest.raises(ModelImportError, match="--input-shape"):
        parse_input_shapes([spec])


def test_parse_input_shapes_twice() -> None:
    with pytest.raises(ModelImportError, match="twice"):
        parse_input_shapes(["x=1", "x=2"])


def test_tflite_is_dispatched_by_extension_and_magic(tmp_path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"junk")
    (tmp_path / "m.bin").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(32))
    assert find_frontend(tmp_path / "m.tflite").name == "tflite"
    assert find_frontend(tmp_path / "m.bin").name == "tflite"
