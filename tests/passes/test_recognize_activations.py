import numpy as np
import pytest

from npuc.ir.graph import Graph
from npuc.passes.recognize_activations import RecognizeActivations

from pass_testing import F32, apply, assert_preserves, kinds


def _c(g, v, shape=()):
    return g.add_const("c", np.full(shape, v, np.float32))


def _relu6_plus3(g, x, swap=False):
    three = _c(g, 3.0)
    a = g.outputs_of(g.add_op("Add", [three, x] if swap else [x, three]))[0]
    return g.outputs_of(g.add_op("Clip", [a], {"min": 0.0, "max": 6.0}))[0]


def _build(form):
    g = Graph(form)
    x0 = g.add_input("x", F32, (1, 4, 5, 5))
    x = g.outputs_of(g.add_op("Relu", [x0], name="pre"))[0]
    if form == "div":  # x * clip(x + 3, 0, 6) / 6  (paddle / cls model)
        m = g.outputs_of(g.add_op("Mul", [x, _relu6_plus3(g, x)]))[0]
        out = g.add_op("Div", [m, _c(g, 6.0)], name="hs")
    elif form == "mul_sixth":  # (clip(x + 3, 0, 6) * x) * (1/6), operands swapped
        m = g.outputs_of(g.add_op("Mul", [_relu6_plus3(g, x, swap=True), x]))[0]
        out = g.add_op("Mul", [_c(g, 1 / 6, (1, 1, 1, 1)), m], name="hs")
    elif form == "inner_div":  # x * (relu6(x + 3) / 6)
        h = g.outputs_of(g.add_op("Div", [_relu6_plus3(g, x), _c(g, 6.0)]))[0]
        out = g.add_op("Mul", [x, h], name="hs")
    elif form == "hardsigmoid":  # x * HardSigmoid(x) with alpha 1/6 (det model)
        h = g.outputs_of(g.add_op("HardSigmoid", [x], {"alpha": 0.16666670143604279, "beta": 0.5}))[0]
        out = g.add_op("Mul", [h, x], name="hs")
    elif form == "silu":
        s = g.outputs_of(g.add_op("Sigmoid", [x]))[0]
        out = g.add_op("Mul", [x, s], name="hs")
    g.outputs = [g.outputs_of(out)[0]]
    return g


@pytest.mark.parametrize("form", ["div", "mul_sixth", "inner_div", "hardsigmoid"])
def test_hard_swish_forms(form):
    g = _build(form)
    res = assert_preserves(g, RecognizeActivations())
    assert res.stats == {"hard_swish": 1}
    assert kinds(g) == ["Relu", "HardSwish"]
    hs = g.producer(g.outputs[0])
    assert hs.name == "hs" and len(hs.origin) >= 2
    assert g.outputs[0].name == "hs"
    assert not g.constants()


def test_silu():
    g = _build("silu")
    res = assert_preserves(g, RecognizeActivations())
    assert res.stats == {"silu": 1} and kinds(g) == ["Relu", "SiLU"]


def test_se_gate_hardsigmoid_is_not_hard_swish():
    """x * HardSigmoid(y) (a squeeze-excite gate) must stay as it is."""
    g = Graph("se")
    x = g.add_input("x", F32, (1, 4, 5, 5))
    y = g.add_input("y", F32, (1, 4, 1, 1))
    h = g.outputs_of(g.add_op("HardSigmoid", [y], {"alpha": 1 / 6, "beta": 0.5}))[0]
    g.outputs = [g.outputs_of(g.add_op("Mul", [x, h]))[0]]
    assert not apply(g, RecognizeActivations()).changed


def test_spelled_out_hard_sigmoid():
    g = Graph("hsig")
    x = g.add_input("x", F32, (2, 8))
    m = g.outputs_of(g.add_op("Mul", [x, _c(g, 0.2)]))[0]
    a = g.outputs_of(g.add_op("Add", [_c(g, 0.5), m]))[0]
    clip = g.add_op("Clip", [a], {"min": 0.0, "max": 1.0}, name="gate")
    g.outputs = [g.outputs_of(clip)[0]]
    res = assert_preserves(g, RecognizeActivations())
    assert res.stats == {"hard_sigmoid": 1}
    op = g.producer(g.outputs[0])
    assert op.kind == "HardSigmoid" and op.attrs["alpha"] == pytest.approx(0.2) and op.name == "gate"


def test_intermediate_with_outside_reader_blocks_match():
    g = _build("div")
    clip_out = next(g.outputs_of(op)[0] for op in g.ops() if op.kind == "Clip")
    g.outputs.append(clip_out)
    assert not apply(g, RecognizeActivations()).changed
