import numpy as np

from npuc.ir.graph import Graph
from npuc.passes.eliminate_dead_code import EliminateDeadCode

from pass_testing import F32, apply, assert_preserves, kinds


def _graph():
    g = Graph("dce")
    x = g.add_input("x", F32, (2, 4))
    a = g.add_op("Relu", [x], name="live")
    d1 = g.add_op("Sigmoid", [x], name="dead1")
    g.add_op("Tanh", [g.outputs_of(d1)[0]], name="dead2")
    g.add_const("unused", np.ones(3, np.float32))
    sp = g.add_op("Split", [g.outputs_of(a)[0]], {"axis": 1, "split": (1, 3)}, name="split")
    g.outputs = [g.outputs_of(sp)[1]]
    return g


def test_before_after():
    g = _graph()
    res = apply(g, EliminateDeadCode())
    assert res.stats == {"ops": 2, "tensors": 3}  # two dead ops; their outputs and the unused constant
    assert kinds(g) == ["Relu", "Split"]  # a multi-output op with one live output stays whole
    assert not g.has_tensor("unused")
    assert g.inputs[0].name == "x"


def test_preserves_outputs():
    assert_preserves(_graph(), EliminateDeadCode())


def test_idempotent():
    g = _graph()
    apply(g, EliminateDeadCode())
    assert not apply(g, EliminateDeadCode()).changed
