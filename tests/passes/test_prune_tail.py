import numpy as np

from npuc.ir.graph import Graph
from npuc.passes.prune_tail import PruneTail

from pass_testing import F32, apply, kinds, random_feeds, run_outputs


def _graph():
    g = Graph("tail")
    x = g.add_input("x", F32, (1, 4, 3, 5))
    conv_like = g.outputs_of(g.add_op("Relu", [x], name="body"))[0]
    t = g.outputs_of(g.add_op("Transpose", [conv_like], {"perm": (0, 2, 3, 1)}, name="to_nhwc"))[0]
    t = g.outputs_of(g.add_op("Reshape", [t], {"shape": (1, 15, 4)}, name="flatten"))[0]
    side = g.outputs_of(g.add_op("Sigmoid", [conv_like], name="side"))[0]
    side = g.outputs_of(g.add_op("Reshape", [side], {"shape": (1, 60)}, name="side_flat"))[0]
    g.outputs = [t, side]
    return g


def test_before_after_records_layout():
    g = _graph()
    before = g.copy()
    res = apply(g, PruneTail())
    assert res.stats == {"removed": 3}
    assert kinds(g) == ["Relu", "Sigmoid"]
    out, side = g.outputs
    assert (out.name, out.shape, out.layout) == ("flatten", (1, 4, 3, 5), "NCHW")
    assert (side.name, side.shape) == ("side_flat", (1, 4, 3, 5))
    rec = g.meta["pruned_outputs"]["flatten"]
    assert rec["original_shape"] == [1, 15, 4] and rec["shape"] == [1, 4, 3, 5]
    assert [r["kind"] for r in rec["removed"]] == ["Transpose", "Reshape"]  # host-side order
    assert rec["removed"][0]["attrs"]["perm"] == [0, 2, 3, 1]
    # the pruned outputs carry the same values: redoing the removed ops gives the original outputs
    feeds = random_feeds(before)
    want = run_outputs(before, feeds)
    got = run_outputs(g, feeds)
    np.testing.assert_allclose(got[0].transpose(0, 2, 3, 1).reshape(1, 15, 4), want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1].reshape(1, 60), want[1], rtol=1e-6)


def test_stops_at_inputs_and_shared_outputs():
    g = Graph("stop")
    x = g.add_input("x", F32, (2, 3))
    r = g.add_op("Reshape", [x], {"shape": (3, 2)}, name="r")
    g.outputs = [g.outputs_of(r)[0]]
    assert not apply(g, PruneTail()).changed
    assert "pruned_outputs" not in g.meta


def test_kinds_option():
    g = _graph()
    res = apply(g, PruneTail(kinds=("Reshape",)))
    assert res.stats == {"removed": 2}
    assert kinds(g) == ["Relu", "Transpose", "Sigmoid"]
