"""fuse_scale: a scalar / per-channel constant Mul or Div after Conv/ConvTranspose/Gemm folds into its weights and bias."""
from collections import Counter

import numpy as np
import pytest

from npuc.ir.graph import Graph
from npuc.passes.fuse_bias import FuseBias
from npuc.passes.fuse_scale import FuseScale
from npuc.passes.manager import DEFAULT_CLEANUP, PassManager, build_pipeline, default_pipeline

from pass_testing import F32, apply, assert_preserves, kinds, random_feeds, run_outputs


def conv_affine(scale_shape=(1,), op="Mul", const_first=False, bias=True, add_shape=None, act=None,
                extra_reader=False, scale=None) -> Graph:
    """x -> Conv(3->4, 3x3) -> Mul/Div by a constant [-> Add constant] [-> act]."""
    g = Graph("affine")
    rng = np.random.default_rng(0)
    x = g.add_input("x", F32, (1, 3, 6, 6))
    w = g.add_const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    ins = [x, w] + ([g.add_const("b", rng.standard_normal(4).astype(np.float32))] if bias else [])
    conv = g.add_op("Conv", ins, {"pads": (1, 1, 1, 1)}, name="conv", origin=["Conv_0"])
    y = g.outputs_of(conv)[0]
    value = scale if scale is not None else rng.uniform(0.5, 2.0, scale_shape)
    s = g.add_const("s", np.asarray(value, np.float32))
    mul = g.add_op(op, [s, y] if const_first else [y, s], name="mul", origin=[f"{op}_1"])
    t = g.outputs_of(mul)[0]
    if add_shape is not None:
        c = g.add_const("c", rng.uniform(-1, 1, add_shape).astype(np.float32))
        t = g.outputs_of(g.add_op("Add", [t, c], name="add", origin=["Add_2"]))[0]
    if act is not None:
        t = g.outputs_of(g.add_op(act, [t], name="act", origin=["Relu_3"]))[0]
    g.outputs = [t]
    if extra_reader:
        g.outputs.append(g.outputs_of(g.add_op("Sigmoid", [y], name="other"))[0])
    return g


@pytest.mark.parametrize("shape", [(1,), (), (1, 1, 1, 1), (4, 1, 1), (1, 4, 1, 1)])
def test_scalar_and_per_channel_mul_fold_into_weights_and_bias(shape):
    g = conv_affine(shape)
    w0 = np.asarray(g.tensor("w").data, np.float64)
    b0 = np.asarray(g.tensor("b").data, np.float64)
    m = np.broadcast_to(np.asarray(g.tensor("s").data, np.float64).reshape(-1), (4,))
    res = assert_preserves(g, FuseScale())
    assert kinds(g) == ["Conv"] and res.stats == {"fused": 1}
    conv = g.ops()[0]
    assert conv.name == "conv" and conv.origin == ("Conv_0", "Mul_1") and g.outputs[0].name == "mul"
    _, w, b = g.inputs_of(conv)
    np.testing.assert_allclose(w.data, w0 * m.reshape(-1, 1, 1, 1), rtol=1e-6)
    np.testing.assert_allclose(b.data, b0 * m, rtol=1e-6)


def test_constant_on_the_left_and_no_bias():
    g = conv_affine((1,), const_first=True, bias=False)
    assert_preserves(g, FuseScale())
    assert kinds(g) == ["Conv"] and len(g.inputs_of(g.ops()[0])) == 2


def test_div_by_constant():
    g = conv_affine((1, 4, 1, 1), op="Div")
    assert_preserves(g, FuseScale())
    assert kinds(g) == ["Conv"] and g.ops()[0].origin == ("Conv_0", "Div_1")


def test_div_with_constant_numerator_and_div_by_zero_are_left_alone():
    assert not apply(conv_affine((1,), op="Div", const_first=True), FuseScale()).changed
    assert not apply(conv_affine(scale=[0.0], op="Div"), FuseScale()).changed


def test_gemm_and_conv_transpose():
    rng = np.random.default_rng(3)
    g = Graph("fc")
    x = g.add_input("x", F32, (2, 6))
    w = g.add_const("w", rng.standard_normal((5, 6)).astype(np.float32))
    fc = g.add_op("Gemm", [x, w], name="fc")
    s = g.add_const("s", rng.uniform(0.5, 2, (1, 5)).astype(np.float32))
    g.outputs = g.outputs_of(g.add_op("Mul", [g.outputs_of(fc)[0], s]))
    assert_preserves(g, FuseScale())
    assert kinds(g) == ["Gemm"]

    g = Graph("up")
    x = g.add_input("x", F32, (1, 4, 5, 5))
    w = g.add_const("w", rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    b = g.add_const("b", rng.standard_normal(6).astype(np.float32))
    ct = g.add_op("ConvTranspose", [x, w, b], {"strides": (2, 2), "group": 2})
    s = g.add_const("s", rng.uniform(0.5, 2, (1, 6, 1, 1)).astype(np.float32))
    g.outputs = g.outputs_of(g.add_op("Mul", [g.outputs_of(ct)[0], s]))
    assert_preserves(g, FuseScale())
    assert kinds(g) == ["ConvTranspose"]


def test_non_constant_mul_is_left_alone():
    g = Graph("gate")
    x = g.add_input("x", F32, (1, 2, 3, 3))
    k = g.add_input("k", F32, (1, 2, 1, 1))
    w = g.add_const("w", np.ones((2, 2, 1, 1), np.float32))
    c = g.add_op("Conv", [x, w])
    g.outputs = g.outputs_of(g.add_op("Mul", [g.outputs_of(c)[0], k]))
    assert not apply(g, FuseScale()).changed


@pytest.mark.parametrize("shape", [(1, 4, 6, 6), (1, 1, 6, 1), (6,), (1, 1, 1, 6)])
def test_spatially_varying_constant_is_left_alone(shape):
    g = conv_affine(shape)
    assert not apply(g, FuseScale()).changed and kinds(g) == ["Conv", "Mul"]


def test_mul_that_enlarges_the_output_is_left_alone():
    g = conv_affine((2, 4, 1, 1))
    assert not apply(g, FuseScale()).changed


def test_output_with_two_readers_is_left_alone():
    g = conv_affine((1,), extra_reader=True)
    assert not apply(g, FuseScale()).changed


def test_fused_activation_is_left_alone():
    g = conv_affine((1,))
    g.ops()[0].attrs["activation"] = "relu"
    assert not apply(g, FuseScale()).changed


def test_shared_weight_is_not_changed_in_place():
    g = conv_affine((1,))
    w = g.tensor("w")
    other = g.add_op("Conv", [g.inputs[0], w], {"pads": (1, 1, 1, 1)}, name="twin")
    g.outputs.append(g.outputs_of(other)[0])
    w0 = np.array(w.data)
    assert_preserves(g, FuseScale())
    assert g.inputs_of(g.op("twin"))[1] is w and np.array_equal(w.data, w0)
    assert g.inputs_of(g.op("conv"))[1] is not w


def test_batchnorm_statistics_follow_the_scale_and_the_bias():
    g = conv_affine((1,), add_shape=(1,))
    y = g.outputs_of(g.op("conv"))[0]
    y.meta["batchnorm"] = {"beta": np.full(4, 1.0), "gamma": np.full(4, 2.0)}
    m = float(g.tensor("s").data[0])
    c = float(g.tensor("c").data[0])
    PassManager([FuseScale(), FuseBias()]).run(g)
    assert kinds(g) == ["Conv"]
    bn = g.outputs[0].meta["batchnorm"]
    np.testing.assert_allclose(bn["gamma"], 2.0 * m, rtol=1e-6)
    np.testing.assert_allclose(bn["beta"], 1.0 * m + c, rtol=1e-6)


@pytest.mark.parametrize("add_shape", [(1,), (), (1, 1, 1, 1)])
def test_scalar_add_becomes_the_bias(add_shape):
    g = conv_affine((1, 4, 1, 1), add_shape=add_shape)
    PassManager([FuseScale()]).run(g)
    res = assert_preserves(g, FuseBias())
    assert kinds(g) == ["Conv"] and res.stats == {"biases_fused": 1}
    assert g.ops()[0].origin == ("Conv_0", "Mul_1", "Add_2") and g.outputs[0].name == "add"


def test_default_cleanup_makes_conv_mul_add_relu_one_conv():
    g = conv_affine((1,), add_shape=(1,), act="Relu")
    before = g.copy()
    PassManager(default_pipeline()).run(g)
    assert kinds(g) == ["Conv"]
    conv = g.ops()[0]
    assert conv.attrs["activation"] == "relu" and conv.origin == ("Conv_0", "Mul_1", "Add_2", "Relu_3")
    feeds = random_feeds(before)
    for a, b in zip(run_outputs(before, feeds), run_outputs(g, feeds)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(a))))


@pytest.mark.slow
def test_det_model_loses_its_learnable_scales_and_shifts():
    from npuc_testing import ppocr_model

    try:
        path = ppocr_model("ch_PP-OCRv4_det_infer.onnx")
    except ModuleNotFoundError:
        path = None
    if path is None or not path.exists():
        pytest.skip("rapidocr_onnxruntime models not installed")
    from npuc.frontends.onnx import load_onnx

    def counts(names):
        graph = load_onnx(str(path), input_shapes={"x": (1, 3, 640, 640)})
        PassManager(build_pipeline(names)).run(graph)
        return Counter(op.kind for op in graph.ops())

    full = counts(list(DEFAULT_CLEANUP))
    without = counts([n for n in DEFAULT_CLEANUP if n != "fuse_scale"])
    # 28 convs carry a learnable scalar scale and shift (PP-LCNetV3's affine blocks)
    assert (without["Mul"], without["Add"]) == (62, 63)
    assert (full["Mul"], full["Add"]) == (34, 35) and full["Conv"] == without["Conv"]

