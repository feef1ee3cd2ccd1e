import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.passes.fold_constants import FoldConstants

from pass_testing import F32, apply, assert_preserves, kinds


def _graph():
    g = Graph("fc")
    x = g.add_input("x", F32, (1, 4, 3, 3))
    w = g.add_const("w", np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1))
    two = g.add_const("two", np.float32(2.0))
    w2 = g.add_op("Mul", [w, two], name="scale_w")
    shape = g.add_op("Shape", [x], name="shape")
    add = g.add_op("Add", [x, g.outputs_of(w2)[0]], name="add")
    g.outputs = [g.outputs_of(add)[0]]
    return g, shape


def test_before_after():
    g, _ = _graph()
    assert kinds(g) == ["Mul", "Shape", "Add"]
    res = apply(g, FoldConstants())
    assert res.changed and res.stats["folded"] == 1 and res.stats["shapes"] == 1
    assert kinds(g) == ["Add"]
    folded = g.tensor("scale_w")
    assert folded.is_const and folded.dtype is DType.FLOAT32
    np.testing.assert_array_equal(folded.data.reshape(-1), [0, 2, 4, 6])
    assert not g.has_tensor("two")  # dead constant removed


def test_shape_value():
    g, shape = _graph()
    reader = g.add_op("Cast", [g.outputs_of(shape)[0]], {"to": DType.FLOAT32}, name="cast")
    g.outputs.append(g.outputs_of(reader)[0])
    apply(g, FoldConstants())
    # the Cast reads a folded Shape, so it folds too... except it is a graph output: it stays
    assert kinds(g) == ["Add", "Cast"]
    np.testing.assert_array_equal(g.inputs_of(g.op("cast"))[0].data, [1, 4, 3, 3])


def test_size_limit_keeps_small_constants_small():
    g = Graph("expand")
    x = g.add_input("x", F32, (1, 8, 64, 64))
    c = g.add_const("c", np.float32(1.5))
    big = g.add_op("Expand", [c], {"shape": (1, 8, 64, 64)}, name="big")
    out = g.add_op("Add", [x, g.outputs_of(big)[0]], name="add")
    g.outputs = [g.outputs_of(out)[0]]
    res = apply(g, FoldConstants(size_limit=1000))
    assert not res.changed and "Expand" in kinds(g)
    res = apply(g, FoldConstants(size_limit=1 << 20))
    assert res.changed and kinds(g) == ["Add"]


def test_preserves_outputs():
    g, _ = _graph()
    assert_preserves(g, FoldConstants())


def test_unchanged_graph():
    g = Graph("noop")
    x = g.add_input("x", F32, (2, 3))
    r = g.add_op("Relu", [x])
    g.outputs = [g.outputs_of(r)[0]]
    assert not apply(g, FoldConstants()).changed
