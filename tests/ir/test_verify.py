"""The verifier lists every problem at once."""
import re

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


@pytest.mark.parametrize("kind, attrs, message", [
    ("Conv", {"clip_min": 0.0, "clip_max": (1.0, 2.0)}, "2 per-channel bounds for 3 output channels"),
    ("Conv", {"clip_min": (0.0, 0.0, 5.0), "clip_max": (1.0, 2.0, 3.0)}, r"clip_min > clip_max"),
    ("Conv", {"clip_min": 0.0, "clip_max": (1.0, float("nan"), 3.0)}, "not finite"),
    ("Gemm", {"clip_min": 0.0, "clip_max": (1.0,) * 4}, "4 per-channel bounds for 3 output channels"),
    ("Conv", {"clip_min": 0.0, "clip_max": (1.0, 2.0, 3.0)}, None),
    ("Gemm", {"clip_min": (-1.0, -2.0, -3.0), "clip_max": 6.0}, None),
])
def test_per_channel_fused_clip_bounds(kind, attrs, message):
    g = Graph()
    if kind == "Conv":
        x = g.add_input("x", DType.FLOAT32, (1, 2, 4, 4))
        w = g.add_const("w", np.ones((3, 2, 1, 1), np.float32))
    else:
        x = g.add_input("x", DType.FLOAT32, (1, 2))
        w = g.add_const("w", np.ones((3, 2), np.float32))
    op = g.add_op(kind, [x, w], {"activation": "clip", **attrs}, name="mac")
    g.outputs = g.outputs_of(op)
    problems = find_problems(g)
    if message is None:
        assert problems == []
    else:
        assert len(problems) == 1 and re.search(message, problems[0]), problems
