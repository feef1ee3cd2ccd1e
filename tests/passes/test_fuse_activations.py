import numpy as np
import pytest

from npuc.ir.graph import Graph
from npuc.passes.fuse_activations import FuseActivations

from pass_testing import F32, apply, assert_preserves, kinds


def _conv_act(act, attrs=None, kind="Conv"):
    rng = np.random.default_rng(0)
    g = Graph("fuse")
    if kind == "Conv":
        x = g.add_input("x", F32, (1, 3, 5, 5))
        w = g.add_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    else:
        x = g.add_input("x", F32, (2, 3))
        w = g.add_const("w", rng.standard_normal((4, 3) if kind == "Gemm" else (3, 4)).astype(np.float32))
    conv = g.add_op(kind, [x, w], name="conv")
    a = g.add_op(act, [g.outputs_of(conv)[0]], attrs, name="act")
    g.outputs = [g.outputs_of(a)[0]]
    return g


@pytest.mark.parametrize("act,attrs,expect", [
    ("Relu", None, ("relu", None, None)),
    ("Clip", {"min": 0.0, "max": 6.0}, ("clip", 0.0, 6.0)),
    ("Clip", {"min": 0.0, "max": None}, ("relu", None, None)),
    ("Clip", {"min": -1.0, "max": 1.0}, ("clip", -1.0, 1.0)),
])
@pytest.mark.parametrize("kind", ["Conv", "Gemm", "MatMul"])
def test_fuse(act, attrs, expect, kind):
    g = _conv_act(act, attrs, kind)
    res = assert_preserves(g, FuseActivations())
    assert res.stats == {"fused": 1}
    assert kinds(g) == [kind]
    conv = g.op("conv")
    assert (conv.attrs["activation"], conv.attrs["clip_min"], conv.attrs["clip_max"]) == expect
    assert conv.origin == ("conv", "act")
    assert g.outputs[0].name == "act"


def test_no_fuse_with_second_reader_or_one_sided_clip():
    g = _conv_act("Relu")
    g.outputs.append(g.outputs_of(g.op("conv"))[0])
    assert not apply(g, FuseActivations()).changed
    g = _conv_act("Clip", {"min": -2.0, "max": None})
    assert not apply(g, FuseActivations()).changed
    g = _conv_act("Clip", {"min": 0.0, "max": 6.0})
    assert not apply(g, FuseActivations(clip=False)).changed
