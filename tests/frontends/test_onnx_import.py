"""Import-level behaviour of the ONNX front-end: names, origins, constants, outputs, metadata."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npuc.frontends.onnx import inspect_onnx, load_onnx
from npuc.ir.verify import find_problems
from onnx_testing import In, make_model


def test_names_origins_and_unique_node_names() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="act"),
        helper.make_node("Sigmoid", ["a"], ["b"], name="act"),  # duplicate node name
        helper.make_node("Softmax", ["b"], ["y"], axis=1),  # nameless, opset-11 flatten -> 3 IR ops
    ]
    model = make_model(nodes, {"x": In((2, 3, 4))}, {"y": np.float32}, opset=11)
    graph = load_onnx(model)
    ops = graph.ops()
    assert [(op.name, op.kind, op.origin) for op in ops] == [
        ("act", "Relu", ("act",)), ("act_1", "Sigmoid", ("act_1",)),
        ("Softmax_2/flatten", "Reshape", ("Softmax_2",)), ("Softmax_2", "Softmax", ("Softmax_2",)),
        ("Softmax_2/unflatten", "Reshape", ("Softmax_2",)),
    ]
    assert [graph.outputs_of(op)[0].name for op in ops[:2]] == ["a", "b"]
    assert graph.outputs[0].name == "y" and graph.producer(graph.outputs[0]).name == "Softmax_2/unflatten"


def test_helper_tensors_never_take_onnx_value_names() -> None:
    # the ONNX graph uses the name a helper op would get ("s/flatten") for a later value
    nodes = [helper.make_node("Softmax", ["x"], ["a"], axis=1, name="s"),
             helper.make_node("Relu", ["a"], ["s/flatten"]), helper.make_node("Relu", ["s/flatten"], ["y"])]
    graph = load_onnx(make_model(nodes, {"x": In((2, 3, 4))}, {"y": np.float32}, opset=11))
    assert graph.producer(graph.tensor("s/flatten")).kind == "Relu"
    assert find_problems(graph) == []


def test_initializer_listed_as_input_is_a_constant() -> None:
    nodes = [helper.make_node("Add", ["x", "b"], ["y"])]
    model = make_model(nodes, {"x": In((2, 3)), "b": In((3,))}, {"y": np.float32},
                       {"b": np.arange(3, dtype=np.float32)})
    graph = load_onnx(model)
    assert [t.name for t in graph.inputs] == ["x"]
    assert graph.tensor("b").is_const and graph.tensor("b").data.tolist() == [0, 1, 2]


def test_constant_nodes_become_constant_tensors() -> None:
    c = helper.make_tensor("v", TensorProto.FLOAT, [3], [1, 2, 3])
    nodes = [helper.make_node("Constant", [], ["c"], value=c), helper.make_node("Mul", ["x", "c"], ["y"])]
    graph = load_onnx(make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}))
    assert [op.kind for op in graph.ops()] == ["Mul"]
    assert graph.tensor("c").is_const and graph.tensor("c").data.tolist() == [1, 2, 3]


def test_layout_and_meta() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": In((1, 3, 4, 4))}, {"y": np.float32},
                       opset=17)
    graph = load_onnx(model)
    assert graph.inputs[0].layout == "NCHW"
    assert graph.meta["source_format"] == "onnx" and graph.meta["opset"] == 17
    assert graph.meta["producer"] == "npuc-tests"
    assert graph.meta["source_input_shapes"] == {"x": [1, 3, 4, 4]}


def test_parse_end_drops_everything_feeding_only_dropped_outputs() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["b"]),
        helper.make_node("Tanh", ["x"], ["c"]),
        helper.make_node("Add", ["b", "c"], ["y"]),
    ]
    model = make_model(nodes, {"x": In((2, 3))}, {"y": np.float32})
    graph = load_onnx(model, outputs=["b"])
    assert [op.kind for op in graph.ops()] == ["Relu", "Sigmoid"]
    assert [t.name for t in graph.outputs] == ["b"]
    graph = load_onnx(model, outputs=["a", "c"])
    assert sorted(op.kind for op in graph.ops()) == ["Relu", "Tanh"]


def test_shape_consumers_do_not_keep_dead_activations() -> None:
    # Reshape(x, Shape(Relu(x))): the Relu only feeds a folded Shape and must not stay in the IR
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Shape", ["r"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    graph = load_onnx(make_model(nodes, {"x": In((2, 3))}, {"y": np.float32}))
    assert [op.kind for op in graph.ops()] == ["Reshape"]
    assert not graph.has_tensor("r")


def test_float64_initializers_are_narrowed() -> None:
    model = make_model([helper.make_node("Add", ["x", "b"], ["y"])], {"x": In((3,))}, {"y": np.float32})
    model.graph.initializer.append(numpy_helper.from_array(np.array([1.5, 2, 3], np.float64), "b"))
    graph = load_onnx(model)
    assert graph.tensor("b").data.dtype == np.float32


def test_inspect_reports_declared_shapes_and_histogram() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Frob", ["b"], ["y"], name="f")]
    model = make_model(nodes, {"x": In((1, 3, 4, 4))}, {"y": np.float32}, dynamic={"x": ["N", 3, None, 4]})
    s = inspect_onnx(model)
    assert s.format == "onnx" and s.details["opset"] == 13
    assert [(v.name, v.dtype, v.dims) for v in s.inputs] == [("x", "float", ("N", 3, "?", 4))]
    assert s.op_histogram == {"Relu": 2, "Frob": 1}
    assert [(u.op, u.nodes) for u in s.unsupported] == [("Frob", ("f",))]
    assert not s.inputs[0].is_static and s.inputs[0].shape_text() == "[N, 3, ?, 4]"


def test_opset_outside_the_tested_range_warns(caplog) -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": In((2,))}, {"y": np.float32}, opset=9)
    with caplog.at_level("WARNING"):
        load_onnx(model)
    assert "opset 9" in caplog.text


def test_loads_from_path(tmp_path) -> None:
    p = tmp_path / "m.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": In((2,))}, {"y": np.float32}), p)
    graph = load_onnx(p)
    assert graph.meta["source_file"] == "m.onnx" and [op.kind for op in graph.ops()] == ["Relu"]
