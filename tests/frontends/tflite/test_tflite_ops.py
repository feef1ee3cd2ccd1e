"""Every supported TFLite operator: a tiny model run by LiteRT and by npuc's reference executor."""
from __future__ import annotations

import numpy as np
import pytest

from make_models import MODELS, build
from npuc.frontends.tflite import load_tflite
from npuc.frontends.tflite_ops import CONVERTERS, same_pads, strided_slice_plan
from tflite_testing import assert_close, litert, litert_inputs, npuc_run

#: operators whose tests live elsewhere: QUANTIZE in the int8 model test, DENSIFY in the sparse BlazeFace test
COVERED_ELSEWHERE = {"QUANTIZE", "DENSIFY"}


def _feeds(data: bytes, name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    feeds = {}
    for key, (shape, _) in litert_inputs(data).items():
        x = rng.uniform(-2.0, 2.0, shape).astype(np.float32)
        feeds[key] = np.abs(x) if name == "sqrt" else x
    return feeds


@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_litert(name):
    data = build(name)
    feeds = _feeds(data, name)
    ref = litert(data, feeds)
    graph = load_tflite(data)
    got = npuc_run(graph, feeds)
    assert set(got) == set(ref)
    for key in ref:
        assert_close(got[key], ref[key], 1e-4, f"{name}:{key}")


def test_every_converter_has_a_model():
    covered = {op for _, ops in MODELS.values() for op in ops} | COVERED_ELSEWHERE
    assert sorted(set(CONVERTERS) - covered) == []


def test_conv_lowering_attributes():
    g = load_tflite(build("conv_same_relu6_s2"))
    (conv,) = g.ops()
    assert conv.kind == "Conv"
    assert conv.attrs["pads"] == (1, 1, 1, 1) and conv.attrs["strides"] == (2, 2)
    assert (conv.attrs["activation"], conv.attrs["clip_min"], conv.attrs["clip_max"]) == ("clip", 0.0, 6.0)
    x, w, b = g.inputs_of(conv)
    assert x.shape == (1, 3, 9, 9) and x.layout == "NCHW"
    assert w.shape == (4, 3, 3, 3) and b.shape == (4,)
    assert g.meta["io_layouts"]["x0"]["source_layout"] == "NHWC"
    assert g.outputs[0].shape == (1, 4, 5, 5) and g.outputs[0].layout == "NCHW"


def test_depthwise_becomes_grouped_conv():
    g = load_tflite(build("depthwise_mult2"))
    (conv,) = g.ops()
    assert conv.attrs["group"] == 3
    assert g.inputs_of(conv)[1].shape == (6, 1, 3, 3)


def test_elementwise_stays_in_source_layout_without_transposes():
    g = load_tflite(build("add_const_relu"))
    assert [op.kind for op in g.ops()] == ["Add", "Relu"]
    const = g.inputs_of(g.ops()[0])[1]
    assert const.shape == (1, 3, 1, 1)  # (C,) broadcast and moved to NCHW


def test_reshape_after_conv_inserts_one_transpose():
    g = load_tflite(build("layout_chain"))
    kinds = [op.kind for op in g.ops()]
    assert kinds.count("Transpose") == 1
    assert kinds[:3] == ["Conv", "Transpose", "Reshape"]


def test_outputs_cut_the_model():
    g = load_tflite(build("layout_chain"), outputs=["flat"])
    assert [t.name for t in g.outputs] == ["flat"]
    assert "Gemm" not in [op.kind for op in g.ops()]


@pytest.mark.parametrize("size,k,stride,dil,expect", [
    (9, 3, 2, 1, (1, 1)), (8, 3, 2, 1, (0, 1)), (5, 1, 1, 1, (0, 0)), (7, 3, 1, 2, (2, 2)), (4, 4, 1, 1, (1, 2)),
])
def test_same_pads(size, k, stride, dil, expect):
    assert same_pads(size, k, stride, dil) == expect


def _numpy_strided_slice(x, begin, end, strides, bm, em, elm, nam, sam):
    index = []
    for j in range(len(begin)):
        if (elm >> j) & 1:
            index.append(Ellipsis)
        elif (nam >> j) & 1:
            index.append(None)
        elif (sam >> j) & 1:
            index.append(begin[j])
        else:
            index.append(slice(None if (bm >> j) & 1 else begin[j], None if (em >> j) & 1 else end[j], strides[j]))
    return x[tuple(index)]


@pytest.mark.parametrize("begin,end,strides,masks", [
    ([0, 1, -1, 0], [0, 4, 0, 2], [1, 2, -2, 1], (1, 5, 0, 0, 0)),
    ([0, 0, 2, 1], [1, 4, 3, 3], [1, 1, 1, 1], (0, 0, 0, 0, 5)),
    ([0, 0, 1], [0, 0, 3], [1, 1, 1], (0, 0, 1, 2, 0)),
    ([3, -2], [-9, 0], [-1, -1], (0, 2, 0, 0, 0)),
    ([-1], [0], [1], (0, 0, 0, 0, 1)),
    ([0, 2], [0, 9], [1, 3], (1, 0, 0, 0, 0)),
])
def test_strided_slice_plan_matches_numpy(begin, end, strides, masks):
    x = np.arange(4 * 5 * 6 * 3).reshape(4, 5, 6, 3)
    plan, final = strided_slice_plan(x.shape, begin, end, strides, *masks)
    sliced = x[tuple(slice(*p) for p in plan)].reshape(final)
    np.testing.assert_array_equal(sliced, _numpy_strided_slice(x, begin, end, strides, *masks))
