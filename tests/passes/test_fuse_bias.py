"""fuse_bias: MatMul(x, W) + b -> Gemm(x, W^T, b); per-channel Adds after convs become their bias."""
import numpy as np

from npuc.ir.graph import Graph
from npuc.passes.fuse_bias import FuseBias

from pass_testing import F32, apply, assert_preserves, kinds


def fc(bias_shape=(4,), bias_first=False, extra_reader=False) -> Graph:
    g = Graph("fc")
    rng = np.random.default_rng(0)
    x = g.add_input("x", F32, (2, 6))
    w = g.add_const("w", rng.standard_normal((6, 4)).astype(np.float32))
    mm = g.add_op("MatMul", [x, w], name="mm", origin=["MatMul_0"])
    y = g.outputs_of(mm)[0]
    b = g.add_const("b", rng.standard_normal(bias_shape).astype(np.float32))
    add = g.add_op("Add", [b, y] if bias_first else [y, b], name="add", origin=["Add_1"])
    g.outputs = g.outputs_of(add)
    if extra_reader:
        g.outputs.append(g.outputs_of(g.add_op("Relu", [y], name="r"))[0])
    return g


def test_before_after():
    g = fc()
    assert kinds(g) == ["MatMul", "Add"]
    res = assert_preserves(g, FuseBias())
    assert kinds(g) == ["Gemm"] and res.stats == {"converted": 1, "biases_fused": 1}
    gemm = g.ops()[0]
    assert gemm.origin == ("MatMul_0", "Add_1")
    assert g.inputs_of(gemm)[1].shape == (4, 6) and g.outputs[0].name == "add"


def test_bias_on_the_left_and_row_vector():
    g = fc(bias_shape=(1, 4), bias_first=True)
    assert_preserves(g, FuseBias())
    assert kinds(g) == ["Gemm"]


def test_bias_not_absorbed_when_matmul_output_is_read_elsewhere():
    g = fc(extra_reader=True)
    assert_preserves(g, FuseBias())
    assert sorted(kinds(g)) == ["Add", "Gemm", "Relu"]


def test_activation_matmul_and_3d_are_left_alone():
    g = Graph("mm")
    a = g.add_input("a", F32, (2, 3, 4))
    w = g.add_const("w", np.ones((4, 5), np.float32))
    g.outputs = g.outputs_of(g.add_op("MatMul", [a, w]))
    assert not apply(g, FuseBias()).changed


def test_conv_transpose_bias_add_is_absorbed():
    g = Graph("up")
    rng = np.random.default_rng(1)
    x = g.add_input("x", F32, (1, 4, 5, 5))
    w = g.add_const("w", rng.standard_normal((4, 2, 2, 2)).astype(np.float32))
    ct = g.add_op("ConvTranspose", [x, w], {"strides": (2, 2)}, name="up", origin=["ConvTranspose_0"])
    b = g.add_const("b", rng.standard_normal((1, 2, 1, 1)).astype(np.float32))
    g.outputs = g.outputs_of(g.add_op("Add", [g.outputs_of(ct)[0], b], name="add"))
    assert_preserves(g, FuseBias())
    assert kinds(g) == ["ConvTranspose"] and g.inputs_of(g.ops()[0])[2].shape == (2,)


def test_spatially_varying_add_is_not_a_bias():
    g = Graph("conv")
    x = g.add_input("x", F32, (1, 2, 3, 3))
    w = g.add_const("w", np.ones((2, 2, 1, 1), np.float32))
    c = g.add_op("Conv", [x, w])
    b = g.add_const("b", np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3))
    g.outputs = g.outputs_of(g.add_op("Add", [g.outputs_of(c)[0], b]))
    assert not apply(g, FuseBias()).changed
