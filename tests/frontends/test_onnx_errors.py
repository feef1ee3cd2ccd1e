"""User errors of the ONNX front-end: one clear paragraph each, never a protobuf/numpy traceback."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from npuc.errors import ModelImportError, UnsupportedOpsError
from npuc.frontends.onnx import load_onnx
from onnx_testing import In, make_model


def _one_paragraph(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def _relu_model(**kw) -> onnx.ModelProto:
    return make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": In((1, 3, 4, 4))}, {"y": np.float32}, **kw)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ModelImportError) as exc:
        load_onnx(tmp_path / "nope.onnx")
    assert "no such file" in _one_paragraph(exc) and "nope.onnx" in str(exc.value)


def test_empty_file(tmp_path) -> None:
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelImportError) as exc:
        load_onnx(p)
    assert "empty" in _one_paragraph(exc)


@pytest.mark.parametrize("content", [
    b"this is a text file, not a model\n" * 20,
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    bytes([0xFF] * 64),
])
def test_not_an_onnx_file(tmp_path, content: bytes) -> None:
    p = tmp_path / "model.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelImportError) as exc:
        load_onnx(p)
    text = _one_paragraph(exc)
    assert str(p) in text and ("not a valid ONNX file" in text or "no ONNX model" in text)


def test_truncated_onnx_file(tmp_path) -> None:
    data = _relu_model().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelImportError) as exc:
        load_onnx(p)
    assert "cut.onnx" in _one_paragraph(exc)


def test_tflite_file_named_onnx(tmp_path) -> None:
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    with pytest.raises(ModelImportError) as exc:
        load_onnx(p)
    assert "TFLite" in _one_paragraph(exc)


def test_unsupported_ops_are_all_listed_before_any_work() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("Frobnicate", ["a"], ["b"], name="frob1"),
        helper.make_node("Frobnicate", ["b"], ["c"], name="frob2"),
        helper.make_node("FusedThing", ["c"], ["d"], name="ms1", domain="com.microsoft"),
        helper.make_node("Resize", ["d", "", "s"], ["e"], name="cubic", mode="cubic"),
        helper.make_node("Einsum", ["e", "e"], ["y"], equation="ij,ij->ij"),
    ]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}, {"s": np.ones(2, np.float32)})
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpsError) as exc:
        load_onnx(model, input_shapes={"x": (2, 3)})
    text = _one_paragraph(exc)
    assert "4 operator type(s)" in text and "in 5 node(s)" in text
    assert "Frobnicate (2 nodes: 'frob1', 'frob2')" in text
    assert "com.microsoft:FusedThing (1 node: 'ms1')" in text
    assert "Resize (mode=cubic) (1 node: 'cubic')" in text
    assert "Einsum (1 node: 'Einsum_5')" in text


def test_unsupported_report_ignores_nodes_after_the_parse_end() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Frobnicate", ["a"], ["y"])]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32})
    graph = load_onnx(model, outputs=["a"])
    assert [op.kind for op in graph.ops()] == ["Relu"]


def test_unsupported_report_lists_the_first_node_names_only() -> None:
    nodes = [helper.make_node("Frobnicate", ["x" if i == 0 else f"v{i}"], [f"v{i + 1}" if i < 5 else "y"],
                              name=f"f{i}") for i in range(6)]
    with pytest.raises(UnsupportedOpsError) as exc:
        load_onnx(make_model(nodes, {"x": In((2,))}, {"y": np.float32}))
    assert "Frobnicate (6 nodes: 'f0', 'f1', 'f2' and 3 more)" in _one_paragraph(exc)


def test_unfixed_dynamic_dim_names_the_input_and_the_fix() -> None:
    model = _relu_model(dynamic={"x": ["p2o.DynamicDimension.0", 3, None, "w"]})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model)
    text = _one_paragraph(exc)
    assert "x: [p2o.DynamicDimension.0, 3, ?, w]" in text
    assert "--input-shape x=1,3,H,W" in text
    graph = load_onnx(model, input_shapes={"x": (1, 3, 8, 9)})
    assert graph.inputs[0].shape == (1, 3, 8, 9) and graph.outputs[0].shape == (1, 3, 8, 9)
    assert graph.meta["source_input_shapes"] == {"x": ["p2o.DynamicDimension.0", 3, "?", "w"]}


@pytest.mark.parametrize("shape, message", [
    ((1, 4, 8, 8), "contradicts its static dims"),
    ((1, 3, 8), "has rank 4"),
    ((1, 3, 0, 8), "non-positive"),
])
def test_bad_fixed_shape(shape, message) -> None:
    model = _relu_model(dynamic={"x": ["n", 3, "h", "w"]})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model, input_shapes={"x": shape})
    assert message in _one_paragraph(exc)


def test_input_shape_for_unknown_input_suggests_names() -> None:
    with pytest.raises(ModelImportError) as exc:
        load_onnx(_relu_model(), input_shapes={"xx": (1, 3, 4, 4)})
    assert "did you mean 'x'" in _one_paragraph(exc)


def test_unknown_output_suggests_close_names() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["conv_out"]), helper.make_node("Sigmoid", ["conv_out"], ["y"])]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model, outputs=["conv_ou"])
    assert "did you mean 'conv_out'" in _one_paragraph(exc)


def test_run_time_value_needed_as_attribute_is_explained() -> None:
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["mi", "a"], ["t"]),
        helper.make_node("Reshape", ["x", "t"], ["y"], name="reshape_by_value"),
    ]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}, {"a": np.array([0], np.int64)})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model)
    text = _one_paragraph(exc)
    assert "reshape_by_value" in text and "must be known when the model is imported" in text


def test_dangling_input_is_malformed() -> None:
    model = make_model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], {"x": In((2,))},
                       {"y": np.float32})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model)
    assert "'add' reads 'ghost'" in _one_paragraph(exc)


def test_cycle_is_malformed() -> None:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"),
             helper.make_node("Relu", ["a"], ["y"])]
    with pytest.raises(ModelImportError) as exc:
        load_onnx(make_model(nodes, {"x": In((2,))}, {"y": np.float32}))
    assert "cycle" in _one_paragraph(exc)


def test_unsupported_element_type() -> None:
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], {"x": In((2,))}, {"y": np.float32})
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.STRING
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model)
    assert "STRING" in _one_paragraph(exc)


def test_bad_attribute_value_is_a_node_error() -> None:
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}, {"s": np.array([4, -1], np.int64)})
    with pytest.raises(ModelImportError) as exc:
        load_onnx(model)
    assert "bad_reshape" in _one_paragraph(exc) and "cannot reshape" in str(exc.value)


def test_value_produced_twice_is_malformed() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Sigmoid", ["x"], ["y"], name="r2")]
    with pytest.raises(ModelImportError) as exc:
        load_onnx(make_model(nodes, {"x": In((2,))}, {"y": np.float32}))
    assert "'y' is produced twice" in _one_paragraph(exc)


def test_missing_required_attribute_is_a_node_error() -> None:
    nodes = [helper.make_node("Concat", ["x", "x"], ["y"], name="no_axis")]
    with pytest.raises(ModelImportError) as exc:
        load_onnx(make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}))
    assert "no_axis" in _one_paragraph(exc)
