"""The verifier lists every problem at once."""
import numpy as np
import pytest

from npuc.errors import GraphVerificationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.verify import find_problems, verify


def test_sound_graph_has_no_problems():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (1, 4))
    r = g.add_op("Relu", [x])
    g.outputs = g.outputs_of(r)
    assert find_problems(g) == []
    verify(g)


def test_all_problems_reported_together():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (1, 4))
    r = g.add_op("Relu", [x], name="relu")
    s = g.add_op("Sigmoid", g.outputs_of(r), name="sig")
    g.outputs = g.outputs_of(s)
    g.outputs_of(r)[0].shape = (1, 5)  # stale shape: breaks relu's and sigmoid's inference
    g.op("sig").attrs["bogus"] = 1
    orphan = g.add_tensor("orphan", DType.FLOAT32, (1, 4))
    g.set_input(g.op("sig"), 1, orphan)  # extra input + unproduced tensor
    problems = find_problems(g)
    text = "\n".join(problems)
    assert "relu" in text and "inference gives" in text
    assert "unknown attribute(s) ['bogus']" in text
    assert "'orphan' is read but nothing produces it" in text
    assert "takes at most 1" in text
    with pytest.raises(GraphVerificationError) as info:
        verify(g, "after test")
    assert len(info.value.problems) == len(problems) >= 4


def test_missing_required_input_and_const_dtype():
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 4))
    w = g.add_const("w", np.ones((2, 3, 1, 1), np.float32))
    conv = g.add_op("Conv", [x, w], name="conv")
    g.outputs = g.outputs_of(conv)
    g.set_input(conv, 1, None)
    w.dtype = DType.FLOAT16
    text = "\n".join(find_problems(g))
    assert "needs at least 2" in text
    assert "stores float32 but is typed f16" in text
