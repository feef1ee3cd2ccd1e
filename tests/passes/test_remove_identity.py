import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.passes.remove_identity import RemoveIdentity

from pass_testing import F32, apply, assert_preserves, kinds


def _chain():
    g = Graph("ids")
    x = g.add_input("x", F32, (1, 2, 3, 4))
    t = g.outputs_of(g.add_op("Relu", [x], name="relu"))[0]
    t = g.outputs_of(g.add_op("Identity", [t], name="id"))[0]
    t = g.outputs_of(g.add_op("Dropout", [t], name="drop"))[0]
    t = g.outputs_of(g.add_op("Reshape", [t], {"shape": (1, 2, 3, 4)}, name="same_shape"))[0]
    t = g.outputs_of(g.add_op("Transpose", [t], {"perm": (0, 1, 2, 3)}, name="id_perm"))[0]
    t = g.outputs_of(g.add_op("Cast", [t], {"to": DType.FLOAT32}, name="same_cast"))[0]
    t = g.outputs_of(g.add_op("Slice", [t], {"starts": (0,), "ends": (10,), "axes": (3,)}, name="full_slice"))[0]
    t = g.outputs_of(g.add_op("Sigmoid", [t], name="sig"))[0]
    t = g.outputs_of(g.add_op("Identity", [t], name="out"))[0]
    g.outputs = [t]
    return g


def test_before_after_keeps_output_name():
    g = _chain()
    res = apply(g, RemoveIdentity())
    assert res.stats["removed"] == 7
    assert kinds(g) == ["Relu", "Sigmoid"]
    assert [t.name for t in g.outputs] == ["out"]
    assert g.producer(g.outputs[0]).name == "sig"


def test_identity_of_input_at_output_is_kept():
    g = Graph("passthrough")
    x = g.add_input("x", F32, (3,))
    g.outputs = [g.outputs_of(g.add_op("Identity", [x], name="y"))[0]]
    res = apply(g, RemoveIdentity())
    assert kinds(g) == ["Identity"] and res.stats == {"kept_at_outputs": 1}


def test_real_reshape_and_cast_stay():
    g = Graph("real")
    x = g.add_input("x", F32, (2, 6))
    t = g.outputs_of(g.add_op("Reshape", [x], {"shape": (3, 4)}))[0]
    t = g.outputs_of(g.add_op("Cast", [t], {"to": DType.FLOAT16}))[0]
    g.outputs = [t]
    assert not apply(g, RemoveIdentity()).changed


def test_reshape_chain_merges():
    g = Graph("reshapes")
    x = g.add_input("x", F32, (2, 6))
    t = g.outputs_of(g.add_op("Reshape", [x], {"shape": (3, 4)}, name="r1"))[0]
    t = g.outputs_of(g.add_op("Reshape", [t], {"shape": (12,)}, name="r2"))[0]
    t = g.outputs_of(g.add_op("Reshape", [t], {"shape": (2, 6)}, name="r3"))[0]
    t = g.outputs_of(g.add_op("Relu", [t], name="relu"))[0]
    g.outputs = [t]
    apply(g, RemoveIdentity())
    assert kinds(g) == ["Relu"]


def test_preserves_outputs():
    assert_preserves(_chain(), RemoveIdentity())
