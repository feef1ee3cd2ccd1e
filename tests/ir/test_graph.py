"""Graph: creation, queries, mutation, deterministic order, copies."""
import numpy as np
import pytest

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.quant_params import QuantParams


def small_graph() -> Graph:
    g = Graph("small")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8))
    w = g.add_const("w", np.ones((4, 3, 3, 3), np.float32))
    conv = g.add_op("Conv", [x, w], {"pads": (1, 1, 1, 1)}, name="conv", origin=["Conv_0"])
    relu = g.add_op("Relu", g.outputs_of(conv), name="relu")
    g.outputs = g.outputs_of(relu)
    return g


def test_shape_inference_and_queries():
    g = small_graph()
    conv, relu = g.ops()
    assert (conv.kind, relu.kind) == ("Conv", "Relu")
    out = g.outputs_of(conv)[0]
    assert out.shape == (1, 4, 8, 8) and out.dtype is DType.FLOAT32
    assert g.producer(out) is conv
    assert g.consumers(out) == [(relu, 0)]
    assert conv.attrs["strides"] == (1, 1) and conv.attrs["group"] == 1  # defaults filled
    assert conv.origin == ("Conv_0",)


def test_same_tensor_twice_keeps_both_edges():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (2, 2))
    mul = g.add_op("Mul", [x, x])
    assert g.inputs_of(mul) == [x, x]
    assert g.consumers(x) == [(mul, 0), (mul, 1)]


def test_unknown_attr_and_bad_shapes_are_rejected():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8))
    w = g.add_const("w", np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="channels"):
        g.add_op("Conv", [x, w])
    with pytest.raises(ValueError, match="unknown attribute"):
        g.add_op("Relu", [x], {"alpha": 1})
    with pytest.raises(KeyError, match="unknown op kind"):
        g.add_op("NoSuchOp", [x])


def test_topological_order_is_creation_order_for_ties():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (4,))
    names = []
    for i in range(5):
        names.append(g.add_op("Relu", [x], name=f"r{i}").name)
    assert [op.name for op in g.ops()] == names


def test_replace_uses_and_remove():
    g = small_graph()
    conv, relu = g.ops()
    x = g.inputs[0]
    g.replace_uses(g.outputs_of(conv)[0], x)
    g.remove_op(conv)
    assert [op.name for op in g.ops()] == ["relu"]
    assert g.inputs_of(relu) == [x]
    assert not g.has_tensor("conv")
    assert g.remove_unused_tensors() == 1  # the weight constant


def test_copy_is_independent_but_shares_constants():
    g = small_graph()
    c = g.copy()
    assert [o.name for o in c.ops()] == [o.name for o in g.ops()]
    assert c.tensor("w").data is g.tensor("w").data
    c.remove_op(c.op("relu"))
    assert len(g.ops()) == 2 and len(c.ops()) == 1
    assert g.outputs[0].name == "relu"


def test_constants_are_read_only_copies():
    g = Graph()
    arr = np.zeros(3, np.float32)
    t = g.add_const("c", arr)
    arr[0] = 5
    assert t.data[0] == 0
    with pytest.raises(ValueError):
        t.data[0] = 1


def test_unique_names():
    g = Graph()
    a = g.add_const("c", [1.0])
    b = g.add_const("c", [2.0])
    assert (a.name, b.name) == ("c", "c_1")
    with pytest.raises(ValueError, match="already used"):
        g.add_tensor("c", DType.FLOAT32, (1,))


def test_quant_params_are_hashable_and_validated():
    q = QuantParams.per_channel([0.1, 0.2], [0, 0], axis=0)
    assert q == QuantParams.per_channel([0.1, 0.2], [0, 0], axis=0)
    assert len({q, QuantParams.per_channel([0.1, 0.2], [0, 0], axis=0)}) == 1
    assert q.scale_array(4).shape == (2, 1, 1, 1)
    with pytest.raises(ValueError):
        QuantParams.per_tensor(0.1, 300, bits=8, signed=False)
    with pytest.raises(ValueError):
        QuantParams.per_tensor(0.0)
    assert QuantParams.per_tensor(0.5, 128, signed=False).dtype is DType.UINT8
