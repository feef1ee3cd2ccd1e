import numpy as np
import pytest

from npuc.ir.graph import Graph
from npuc.passes.fold_batchnorm import FoldBatchnorm

from pass_testing import F32, apply, assert_preserves, kinds


def _bn(g, x, c, rng, name="bn"):
    params = [
        g.add_const(f"{name}.scale", rng.uniform(0.5, 2, c).astype(np.float32)),
        g.add_const(f"{name}.bias", rng.standard_normal(c).astype(np.float32)),
        g.add_const(f"{name}.mean", rng.standard_normal(c).astype(np.float32)),
        g.add_const(f"{name}.var", rng.uniform(0.1, 3, c).astype(np.float32)),
    ]
    return g.add_op("BatchNormalization", [x] + params, {"epsilon": 1e-3}, name=name, origin=(name,))


def _conv_bn(kind="Conv", group=1, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    g = Graph(kind)
    x = g.add_input("x", F32, (1, 4, 6, 6))
    if kind == "Conv":
        w = g.add_const("w", rng.standard_normal((6, 4 // group, 3, 3)).astype(np.float32))
        cout = 6
    else:
        w = g.add_const("w", rng.standard_normal((4, 6 // group, 3, 3)).astype(np.float32))
        cout = 6
    ins = [x, w] + ([g.add_const("b", rng.standard_normal(cout).astype(np.float32))] if bias else [])
    conv = g.add_op(kind, ins, {"group": group, "pads": (1, 1, 1, 1)}, name="conv", origin=("conv",))
    bn = _bn(g, g.outputs_of(conv)[0], cout, rng)
    g.outputs = [g.outputs_of(bn)[0]]
    return g


@pytest.mark.parametrize("kind,group,bias", [("Conv", 1, True), ("Conv", 2, False), ("ConvTranspose", 1, True),
                                             ("ConvTranspose", 2, False)])
def test_fold_into_conv(kind, group, bias):
    g = _conv_bn(kind, group, bias)
    out_name = g.outputs[0].name
    res = assert_preserves(g, FoldBatchnorm())
    assert res.stats == {"folded": 1}
    assert kinds(g) == [kind]
    conv = g.op("conv")
    assert conv.origin == ("conv", "bn")
    assert g.outputs[0].name == out_name and g.producer(g.outputs[0]) is conv
    assert len(g.inputs_of(conv)) == 3  # a bias was added where there was none
    assert not any(t.name.startswith("bn.") for t in g.tensors())  # BN parameters are gone


def test_fold_into_gemm_and_matmul():
    rng = np.random.default_rng(3)
    g = Graph("dense")
    x = g.add_input("x", F32, (2, 5))
    gemm = g.add_op("Gemm", [x, g.add_const("w", rng.standard_normal((3, 5)).astype(np.float32))], name="gemm")
    bn1 = _bn(g, g.outputs_of(gemm)[0], 3, rng, "bn1")
    mm = g.add_op("MatMul", [g.outputs_of(bn1)[0], g.add_const("m", rng.standard_normal((3, 4)).astype(np.float32))],
                  name="mm")
    bn2 = _bn(g, g.outputs_of(mm)[0], 4, rng, "bn2")
    g.outputs = [g.outputs_of(bn2)[0]]
    res = assert_preserves(g, FoldBatchnorm())
    assert res.stats == {"folded": 2}
    assert kinds(g) == ["Gemm", "Gemm"]
    assert g.op("mm").origin == ("mm", "bn2")


def test_lone_bn_becomes_mul_add():
    rng = np.random.default_rng(5)
    g = Graph("lone")
    x = g.add_input("x", F32, (1, 3, 4, 4))
    bn = _bn(g, x, 3, rng)
    g.outputs = [g.outputs_of(bn)[0]]
    res = assert_preserves(g, FoldBatchnorm())
    assert res.stats == {"to_mul_add": 1}
    assert kinds(g) == ["Mul", "Add"]
    assert g.producer(g.outputs[0]).name == "bn"
    assert all(op.origin == ("bn",) for op in g.ops())


def test_conv_with_second_reader_is_not_folded():
    g = _conv_bn()
    conv_out = g.outputs_of(g.op("conv"))[0]
    r = g.add_op("Relu", [conv_out], name="other_reader")
    g.outputs.append(g.outputs_of(r)[0])
    res = assert_preserves(g, FoldBatchnorm())
    assert res.stats == {"to_mul_add": 1}
    assert kinds(g) == ["Conv", "Mul", "Relu", "Add"] or sorted(kinds(g)) == ["Add", "Conv", "Mul", "Relu"]


def test_shared_weight_not_mutated():
    g = _conv_bn()
    w = g.tensor("w")
    before = w.data.copy()
    apply(g, FoldBatchnorm())
    np.testing.assert_array_equal(w.data, before)


def test_fold_through_bias_add():
    """ConvTranspose -> Add(per-channel bias) -> BN, as the det model's head is exported."""
    rng = np.random.default_rng(7)
    g = Graph("convt_add_bn")
    x = g.add_input("x", F32, (1, 4, 5, 5))
    w = g.add_const("w", rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    ct = g.add_op("ConvTranspose", [x, w], {"strides": (2, 2)}, name="up")
    bias = g.add_const("bias", rng.standard_normal((1, 3, 1, 1)).astype(np.float32))
    add = g.add_op("Add", [g.outputs_of(ct)[0], bias], name="add_bias")
    bn = _bn(g, g.outputs_of(add)[0], 3, rng)
    g.outputs = [g.outputs_of(bn)[0]]
    res = assert_preserves(g, FoldBatchnorm())
    assert res.stats == {"folded": 1} and kinds(g) == ["ConvTranspose"]
    assert g.op("up").origin == ("up", "add_bias", "bn")


def test_folded_output_keeps_the_batchnorm_statistics():
    """The BN's shift and scale stay on the folded layer's output (CLE's high-bias absorption reads them)."""
    g = _conv_bn()
    scale, bias = (np.asarray(g.tensor(f"bn.{p}").data, np.float64) for p in ("scale", "bias"))
    apply(g, FoldBatchnorm())
    (conv,) = g.ops()
    stats = g.outputs_of(conv)[0].meta["batchnorm"]
    np.testing.assert_array_equal(stats["gamma"], scale)
    np.testing.assert_array_equal(stats["beta"], bias)
