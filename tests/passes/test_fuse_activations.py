import numpy as np
import pytest

from npuc.ir.graph import Graph
from npuc.passes.fuse_activations import FuseActivations

from pass_testing import F32, apply, assert_preserves, kinds


def _mac(g: Graph, kind: str, seed: int):
    """A Conv / Gemm / MatMul named "conv" with a random constant weight, on a new graph input."""
    rng = np.random.default_rng(seed)
    if kind == "Conv":
        x = g.add_input("x", F32, (1, 3, 5, 5))
        w = g.add_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    else:
        x = g.add_input("x", F32, (2, 3))
        w = g.add_const("w", rng.standard_normal((4, 3) if kind == "Gemm" else (3, 4)).astype(np.float32))
    return g.add_op(kind, [x, w], name="conv")


def _conv_act(act, attrs=None, kind="Conv"):
    g = Graph("fuse")
    conv = _mac(g, kind, 0)
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


def _min_max_chain(kind: str, lo, hi, order=("Max", "Min"), swap: bool = False):
    g = Graph("minmax")
    t = g.outputs_of(_mac(g, kind, 1))[0]
    for i, op_kind in enumerate(order):
        c = g.add_const(f"c{i}", np.asarray(lo if op_kind == "Max" else hi, np.float32))
        t = g.outputs_of(g.add_op(op_kind, [c, t] if swap else [t, c], name=f"act{i}"))[0]
    g.outputs = [t]
    return g


@pytest.mark.parametrize("order", [("Max", "Min"), ("Min", "Max")])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("kind", ["Conv", "Gemm", "MatMul"])
def test_per_channel_max_min_fuse_into_a_per_channel_clip(kind, order, swap):
    """The exported form of a per-channel clip (Max / Min with a per-channel constant) imports back fused."""
    hi = np.array([0.1, 0.5, 1.0, 2.0])
    g = _min_max_chain(kind, 0.0, hi.reshape(-1, 1, 1) if kind == "Conv" else hi, order, swap)
    res = assert_preserves(g, FuseActivations())
    assert res.stats == {"fused": 1} and kinds(g) == [kind]
    conv = g.op("conv")
    assert conv.attrs["activation"] == "clip" and conv.attrs["clip_min"] == 0.0
    np.testing.assert_allclose(conv.attrs["clip_max"], hi.astype(np.float32))
    assert conv.origin == ("conv", "act0", "act1") and g.outputs[0].name == "act1"


@pytest.mark.parametrize("lo, hi", [
    (0.0, 6.0),  # scalar pair: stays (only the per-channel export form is recognised)
    (0.0, np.arange(1.0, 13.0).reshape(4, 3, 1)),  # varies along H: not per channel
    (np.array([0.0, 0.0, 3.0, 0.0]).reshape(-1, 1, 1), np.array([1.0, 1.0, 1.0, 1.0]).reshape(-1, 1, 1)),  # empty
])
def test_other_max_min_pairs_are_not_fused(lo, hi):
    g = _min_max_chain("Conv", lo, hi)
    assert not apply(g, FuseActivations()).changed
