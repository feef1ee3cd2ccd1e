"""fuse_matmul_bias: MatMul(x, W) + b -> Gemm(x, W^T, b)."""
import numpy as np

from npuc.ir.graph import Graph
from npuc.passes.fuse_matmul_bias import FuseMatmulBias

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
    res = assert_preserves(g, FuseMatmulBias())
    assert kinds(g) == ["Gemm"] and res.stats == {"converted": 1, "biases_fused": 1}
    gemm = g.ops()[0]
    assert gemm.origin == ("MatMul_0", "Add_1")
    assert g.inputs_of(gemm)[1].shape == (4, 6) and g.outputs[0].name == "add"


def test_bias_on_the_left_and_row_vector():
    g = fc(bias_shape=(1, 4), bias_first=True)
    assert_preserves(g, FuseMatmulBias())
    assert kinds(g) == ["Gemm"]


def test_bias_not_absorbed_when_matmul_output_is_read_elsewhere():
    g = fc(extra_reader=True)
    assert_preserves(g, FuseMatmulBias())
    assert sorted(kinds(g)) == ["Add", "Gemm", "Relu"]


def test_activation_matmul_and_3d_are_left_alone():
    g = Graph("mm")
    a = g.add_input("a", F32, (2, 3, 4))
    w = g.add_const("w", np.ones((4, 5), np.float32))
    g.outputs = g.outputs_of(g.add_op("MatMul", [a, w]))
    assert not apply(g, FuseMatmulBias()).changed
