"""`npuc check`: the report, exit code 0 when the model imports, 2 (no traceback) when it cannot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from npuc.cli import main
from npuc_testing import ppocr_model

CLS = ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")


def _model(path: Path, nodes, dims=(1, 3, 8, 8)) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["check", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_check_real_model_with_dynamic_dims(capsys) -> None:
    code, out, err = _run(capsys, CLS)
    assert code == 2
    assert "x  float  [?, 3, ?, ?]  (dynamic)" in out
    assert "save_infer_model/scale_0.tmp_1  float  [?, 2]" in out
    assert "Conv                53" in out and "unsupported operators: none" in out
    assert "--input-shape x=1,3,H,W" in err


def test_check_real_model_with_fixed_shape(capsys) -> None:
    code, out, _ = _run(capsys, CLS, "--input-shape", "x=1,3,48,192")
    assert code == 0
    assert "-> [1, 3, 48, 192]" in out
    assert "result: imports into 252 IR ops" in out and "f32[1x2]" in out


def test_check_unsupported_ops(tmp_path, capsys) -> None:
    p = _model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["a"]),
                                     helper.make_node("Frobnicate", ["a"], ["b"], name="f1"),
                                     helper.make_node("Frobnicate", ["b"], ["y"], name="f2")])
    code, out, err = _run(capsys, p)
    assert code == 2
    assert "Frobnicate (2 nodes: 'f1', 'f2')" in out
    assert "npuc: error:" in err and "Frobnicate" in err


@pytest.mark.parametrize("content", [b"", b"hello, not a model", b"\x08\x07\x12\xff\xff"])
def test_check_bad_files(tmp_path, capsys, content) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(content)
    code, _, err = _run(capsys, p)
    assert code == 2 and "bad.onnx" in err


def test_check_missing_file(tmp_path, capsys) -> None:
    code, _, err = _run(capsys, tmp_path / "none.onnx")
    assert code == 2 and "no such file" in err


def test_check_bad_input_shape_option(tmp_path, capsys) -> None:
    p = _model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])])
    code, _, err = _run(capsys, p, "--input-shape", "x=1,three")
    assert code == 2 and "--input-shape" in err


def test_check_outputs_option(tmp_path, capsys) -> None:
    p = _model(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["y"])])
    code, out, _ = _run(capsys, p, "--outputs", "a")
    assert code == 0 and "imports into 1 IR ops (Relu 1)" in out
    code, _, err = _run(capsys, p, "--outputs", "aa")
    assert code == 2 and "did you mean 'a'" in err
