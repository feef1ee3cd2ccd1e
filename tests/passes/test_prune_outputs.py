import pytest

from npuc.errors import PassError
from npuc.ir.graph import Graph
from npuc.passes.prune_outputs import PruneOutputs

from pass_testing import F32, apply, assert_preserves, kinds


def _graph():
    g = Graph("heads")
    x = g.add_input("x", F32, (2, 4))
    body = g.outputs_of(g.add_op("Relu", [x], name="body"))[0]
    a = g.outputs_of(g.add_op("Sigmoid", [body], name="head_a"))[0]
    b1 = g.outputs_of(g.add_op("Tanh", [body], name="head_b1"))[0]
    b = g.outputs_of(g.add_op("Softmax", [b1], name="head_b"))[0]
    g.outputs = [a, b]
    return g


def test_keep_one_output():
    g = _graph()
    res = apply(g, PruneOutputs(outputs=("head_a",)))
    assert res.changed and res.stats["removed_ops"] == 2
    assert kinds(g) == ["Relu", "Sigmoid"]
    assert [t.name for t in g.outputs] == ["head_a"]


def test_cut_at_intermediate_tensor():
    g = _graph()
    apply(g, PruneOutputs(outputs=("head_b1", "head_a")))
    assert [t.name for t in g.outputs] == ["head_b1", "head_a"]
    assert "Softmax" not in kinds(g)


def test_unknown_name_suggests():
    g = _graph()
    with pytest.raises(PassError, match=r"head_b2.*did you mean 'head_b1'|did you mean.*head_b"):
        apply(g, PruneOutputs(outputs=("head_b2",)))


def test_empty_is_noop_and_preserves():
    g = _graph()
    assert not apply(g, PruneOutputs()).changed
    assert_preserves(g, PruneOutputs(outputs=("head_a", "head_b")))
