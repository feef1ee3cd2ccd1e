"""Simulator == reference quantized executor, bit for bit, for every op kind on 8- and 16-bit paths.

Each case builds a small float graph (hypothesis draws shapes, attributes and
the random seed), calibrates it with the real statistics code, quantizes it with
the quantize pass, lowers, emits and decodes it, and compares the simulator's
integer outputs with `run_quantized` on the same quantized graph (np.array_equal).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.quantization.config import QuantConfig
from sim_helpers import assert_bit_exact, quantize_graph

F32 = DType.FLOAT32
MODES = ("a8_w8", "a16_w16")


class Case:
    """A graph under construction: graph inputs with their float feed generators."""

    def __init__(self, draw, seed: int) -> None:
        self.g = Graph("case")
        self.draw = draw
        self.rng = np.random.default_rng(seed)
        self.shapes: dict[str, tuple[tuple[int, ...], float, float]] = {}

    def input(self, shape, scale: float = 1.0, offset: float = 0.0):
        name = f"in{len(self.shapes)}"
        self.shapes[name] = (tuple(shape), scale, offset)
        return self.g.add_input(name, F32, tuple(shape))

    def const(self, name: str, value) -> object:
        return self.g.add_const(name, np.asarray(value, dtype=np.float32))

    def op(self, kind: str, ins, attrs=None, name: str = "layer"):
        op = self.g.add_op(kind, list(ins), attrs or {}, name=name)
        return self.g.outputs_of(op)

    def feeds(self, n: int) -> list[dict[str, np.ndarray]]:
        return [{k: (self.rng.normal(size=s) * sc + off).astype(np.float32) for k, (s, sc, off) in self.shapes.items()}
                for _ in range(n)]


def ints(lo, hi):
    return st.integers(lo, hi)


# ---------------------------------------------------------------- builders (one per op family)
def channel_clip(c: Case, channels: int) -> dict:
    """A fused clip with per-output-channel bounds (what cross-layer equalization makes of a ReLU6):
    upper bounds from tiny (clamps most values) to wide; lower bounds 0, or per channel too."""
    hi = 10.0 ** c.rng.uniform(-1.5, 0.5, channels)
    lo = 0.0 if c.draw(st.booleans()) else tuple(float(v) for v in -hi * c.rng.uniform(0.0, 1.0, channels))
    return {"activation": "clip", "clip_min": lo, "clip_max": tuple(float(v) for v in hi)}


def conv(c: Case):
    d = c.draw
    g = d(st.sampled_from([1, 2, "dw"]))
    cin = d(ints(1, 4)) * (2 if g == 2 else 1)
    if g == "dw":
        g = cin = d(ints(2, 6))
    cout = g * d(ints(1, 3))
    k = d(st.sampled_from([1, 2, 3]))
    s, dil = d(ints(1, 2)), d(ints(1, 2))
    pads = tuple(d(ints(0, 2)) for _ in range(4))
    h = d(ints(dil * (k - 1) + 1, 9))
    act = d(st.sampled_from([None, "relu", "clip", "clip_channels"]))
    attrs = {"strides": (s, s), "dilations": (dil, dil), "pads": pads, "group": g, "activation": act}
    if act == "clip":
        attrs.update(clip_min=0.0, clip_max=1.5)
    elif act == "clip_channels":
        attrs.update(channel_clip(c, cout))
    x = c.input((1, cin, h, h + 1))
    w = c.const("w", c.rng.normal(size=(cout, cin // g, k, k)) * 0.3)
    ins = [x, w] + ([c.const("b", c.rng.normal(size=cout) * 0.2)] if d(st.booleans()) else [])
    return c.op("Conv", ins, attrs)


def conv_transpose(c: Case):
    d = c.draw
    g = d(st.sampled_from([1, 2]))
    cin, og = g * d(ints(1, 3)), d(ints(1, 3))
    k, s = d(st.sampled_from([1, 2, 3])), d(ints(1, 2))
    pads = tuple(d(ints(0, k // 2)) for _ in range(4))  # keeps the output non-empty
    x = c.input((1, cin, d(ints(2, 6)), d(ints(2, 6))))
    w = c.const("w", c.rng.normal(size=(cin, og, k, k)) * 0.3)
    attrs = {"strides": (s, s), "pads": pads, "group": g, "output_padding": (s - 1, 0)}
    if d(st.booleans()):
        attrs.update(channel_clip(c, og * g))
    return c.op("ConvTranspose", [x, w, c.const("b", c.rng.normal(size=og * g))], attrs)


def gemm(c: Case):
    d = c.draw
    k, n = d(ints(1, 24)), d(ints(1, 10))
    x = c.input((d(ints(1, 3)), k))
    act = d(st.sampled_from([None, "relu", "clip_channels"]))
    attrs = channel_clip(c, n) if act == "clip_channels" else {"activation": act}
    return c.op("Gemm", [x, c.const("w", c.rng.normal(size=(n, k)) * 0.3), c.const("b", c.rng.normal(size=n))],
                attrs)


def matmul(c: Case):
    d = c.draw
    k, n = d(ints(1, 12)), d(ints(1, 6))
    x = c.input((d(ints(1, 2)), d(ints(1, 4)), k))
    if d(st.booleans()):
        attrs = channel_clip(c, n) if d(st.booleans()) else {}
        return c.op("MatMul", [x, c.const("w", c.rng.normal(size=(k, n)) * 0.3)], attrs)
    y = c.input((1, k, n), scale=2.0)
    return c.op("MatMul", [x, y])


def pool(c: Case):
    d = c.draw
    kind = d(st.sampled_from(["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"]))
    x = c.input((d(ints(1, 2)), d(ints(1, 4)), d(ints(5, 9)), d(ints(5, 9))))  # >= a dilated 3-tap window
    if kind.startswith("Global"):
        return c.op(kind, [x])
    k = d(ints(1, 3))
    attrs = {"kernel": (k, k + 1 if k < 3 else k), "strides": (d(ints(1, 2)), d(ints(1, 3))),
             "pads": tuple(d(ints(0, k - 1)) for _ in range(4)), "ceil_mode": d(st.booleans())}
    if kind == "AveragePool":
        attrs["count_include_pad"] = d(st.booleans())
    else:
        attrs["dilations"] = (d(ints(1, 2)), 1)
    return c.op(kind, [x], attrs)


def reduce(c: Case):
    d = c.draw
    kind = d(st.sampled_from(["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"]))
    x = c.input((1, d(ints(1, 4)), d(ints(1, 5)), d(ints(1, 5))))
    axes = d(st.sampled_from([None, (1,), (2, 3), (-1,), (1, 3)]))
    keep = d(st.booleans())
    return c.op(kind, [x], {"axes": axes, "keepdims": keep})


def _broadcast_pair(c: Case):
    d = c.draw
    shape = (1, d(ints(1, 4)), d(ints(1, 4)), d(ints(1, 5)))
    other = tuple(s if d(st.booleans()) else 1 for s in shape)[d(ints(0, 2)):]
    x = c.input(shape)
    y = c.input(other, scale=d(st.sampled_from([0.1, 1.0, 7.0])), offset=d(st.sampled_from([0.0, 2.0])))
    return (x, y) if d(st.booleans()) else (y, x)


def arithmetic(c: Case):
    kind = c.draw(st.sampled_from(["Add", "Sub", "Mul", "Max", "Min"]))
    return c.op(kind, _broadcast_pair(c))


def div_const(c: Case):
    x = c.input((1, 3, 4, 5))
    return c.op("Div", [x, c.const("k", [c.draw(st.sampled_from([0.5, 3.0, 6.0]))])])


def concat(c: Case):
    d = c.draw
    axis = d(ints(1, 3))
    parts = []
    for i in range(d(ints(2, 3))):
        shape = [1, 2, 3, 4]
        shape[axis] = d(ints(1, 3))
        parts.append(c.input(shape, scale=d(st.sampled_from([0.5, 1.0, 4.0]))))
    return c.op("Concat", parts, {"axis": axis})


MOVEMENT_KINDS = ("Reshape", "Transpose", "Slice", "Split", "Pad", "Resize", "DepthToSpace", "SpaceToDepth",
                  "Gather", "Expand", "Tile", "Identity")
ACTIVATION_KINDS = ("Sigmoid", "Tanh", "SiLU", "HardSwish", "HardSigmoid", "LeakyRelu", "Exp", "Abs", "Neg",
                    "Relu", "Clip")


def movement(c: Case, kind: str):
    d = c.draw
    x = c.input((1, 4, 4, 6))
    attrs, extra = {}, []
    if kind == "Reshape":
        attrs = {"shape": d(st.sampled_from([(1, 96), (4, 4, 6), (1, 2, 2, 4, 6)]))}
    elif kind == "Transpose":
        attrs = {"perm": d(st.permutations(range(4)))}
    elif kind == "Slice":
        attrs = {"starts": (d(ints(0, 2)), d(ints(-5, 1))), "ends": (4, d(ints(2, 6))), "axes": (2, 3),
                 "steps": (1, d(ints(1, 2)))}
    elif kind == "Split":
        attrs = {"axis": 3, "split": (2, 4)}
    elif kind == "Pad":
        mode = d(st.sampled_from(["constant", "reflect", "edge"]))
        attrs = {"pads": (0, 0, d(ints(0, 2)), 1, 0, 0, 1, d(ints(0, 2))), "mode": mode,
                 "value": d(st.sampled_from([0.0, 0.5]))}
    elif kind == "Resize":
        attrs = {"size": (1, 4, d(ints(2, 9)), d(ints(3, 12))), "mode": "nearest",
                 "coordinate_transformation_mode": d(st.sampled_from(["half_pixel", "asymmetric", "align_corners"])),
                 "nearest_mode": d(st.sampled_from(["round_prefer_floor", "floor", "ceil"]))}
    elif kind == "DepthToSpace":
        attrs = {"blocksize": 2, "mode": d(st.sampled_from(["DCR", "CRD"]))}
    elif kind == "SpaceToDepth":
        attrs = {"blocksize": 2}
    elif kind == "Gather":
        attrs = {"axis": d(ints(1, 3))}
        extra = [c.g.add_const("idx", np.array([0, -1, 1], np.int64))]
    elif kind == "Expand":
        attrs = {"shape": (2, 4, 4, 6)}
    elif kind == "Tile":
        attrs = {"repeats": (1, 1, d(ints(1, 2)), 2)}
    return c.op(kind, [x, *extra], attrs)


def activation(c: Case, kind: str):
    x = c.input((1, 3, 5, 7), scale=2.0)
    attrs = {"min": -0.5, "max": 1.0} if kind == "Clip" else {}
    return c.op(kind, [x], attrs)


def prelu(c: Case):
    """PRelu with a scalar, per-channel or [C, 1, W] slope, negative and zero slopes included."""
    d = c.draw
    ch = d(ints(1, 4))
    x = c.input((1, ch, d(ints(1, 5)), d(ints(1, 6))), scale=2.0, offset=d(st.sampled_from([0.0, -1.0])))
    shape = d(st.sampled_from([(1,), (ch, 1, 1), (1, ch, 1, 1), (ch, 1, x.shape[3])]))
    slope = c.rng.choice([0.0, 0.1, 0.25, -0.3, 1.0, 1.7], size=shape) + c.rng.normal(size=shape) * 0.01
    return c.op("PRelu", [x, c.const("slope", slope)])


def resize_linear(c: Case):
    """Bilinear Resize (up and down) in every coordinate mode the float kernel supports."""
    d = c.draw
    ch, h, w = d(ints(1, 3)), d(ints(1, 6)), d(ints(1, 7))
    x = c.input((d(ints(1, 2)), ch, h, w), offset=d(st.sampled_from([0.0, 1.5])))
    mode = d(st.sampled_from(["half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners",
                              "half_pixel_symmetric"]))
    return c.op("Resize", [x], {"size": (x.shape[0], ch, d(ints(1, 13)), d(ints(1, 15))), "mode": "linear",
                                "coordinate_transformation_mode": mode})


def softmax(c: Case):
    x = c.input((c.draw(ints(1, 3)), c.draw(ints(1, 4)), c.draw(ints(1, 12))), scale=c.draw(st.sampled_from([0.5, 3.0])))
    return c.op("Softmax", [x], {"axis": -1})


BUILDERS: dict[str, Callable[[Case], list]] = {
    "conv": conv, "conv_transpose": conv_transpose, "gemm": gemm, "matmul": matmul, "pool": pool,
    "reduce": reduce, "arithmetic": arithmetic, "div_const": div_const, "concat": concat, "softmax": softmax,
    "prelu": prelu, "resize_linear": resize_linear,
    **{k: (lambda c, k=k: movement(c, k)) for k in MOVEMENT_KINDS},
    **{k: (lambda c, k=k: activation(c, k)) for k in ACTIVATION_KINDS},
}
#: families with few attribute choices need fewer examples
FEW = set(MOVEMENT_KINDS) | set(ACTIVATION_KINDS) | {"div_const"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_family_bit_exact(family, mode):
    examples = 3 if family in FEW else 10

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(data=st.data(), seed=st.integers(0, 2 ** 16))
    def check(data, seed):
        _check_family(family, mode, data, seed)

    check()


def _check_family(family, mode, data, seed):
    c = Case(data.draw, seed)
    c.g.outputs = list(BUILDERS[family](c))
    feeds = c.feeds(4)
    q = quantize_graph(c.g, feeds, precision_mode=mode)
    assert_bit_exact(q, feeds + c.feeds(1))


@pytest.mark.parametrize("scheme", ["symmetric", "power_of_two"])
def test_signed_activation_schemes(scheme):
    """int8 activations (symmetric / power-of-two scales) through conv, add, pooling and a LUT."""
    rng = np.random.default_rng(3)
    g = Graph("signed")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    w = g.add_const("w", rng.normal(size=(6, 3, 3, 3)).astype(np.float32) * 0.3)
    y = g.outputs_of(g.add_op("Conv", [x, w], {"pads": (1, 1, 1, 1)}, name="conv"))[0]
    s = g.outputs_of(g.add_op("Tanh", [y], name="tanh"))[0]
    a = g.outputs_of(g.add_op("Add", [y, s], name="add"))[0]
    p = g.outputs_of(g.add_op("AveragePool", [a], {"kernel": (2, 2), "strides": (2, 2)}, name="pool"))[0]
    g.outputs = [p]
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    for mode in MODES:
        assert_bit_exact(quantize_graph(g, feeds, scheme=scheme, precision_mode=mode), feeds)


def _chain() -> tuple[Graph, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(5)
    g = Graph("chain")
    x = g.add_input("x", F32, (1, 4, 8, 8))
    t = x
    for i in range(3):
        w = g.add_const(f"w{i}", rng.normal(size=(4, 4, 3, 3)).astype(np.float32) * 0.3)
        t = g.outputs_of(g.add_op("Conv", [t, w], {"pads": (1, 1, 1, 1), "activation": "relu"}, name=f"conv{i}"))[0]
    r = g.outputs_of(g.add_op("Resize", [t], {"size": (1, 4, 12, 12), "mode": "linear"}, name="up"))[0]
    g.outputs = [r]
    return g, [{"x": rng.normal(size=(1, 4, 8, 8)).astype(np.float32)} for _ in range(4)]


def test_mixed_precision_requantize_and_float16_layers():
    """int8 -> int16 -> float16 boundaries: Requantize, Dequantize/Quantize to float16, linear Resize in float16."""
    g, feeds = _chain()
    cfg = QuantConfig()
    cfg.set_precision_mode(["conv1"], "a16_w16")
    cfg.set_precision_mode(["conv2"], "float16")
    q = assert_bit_exact(quantize_graph(g, feeds, cfg), feeds)
    kinds = {layer.kind for layer in q.program.layers}
    assert {"Requantize", "Quantize"} <= kinds
    f16 = [e for e in q.program.tensors if e.dtype is DType.FLOAT16 and e.role != "constant"]
    assert f16, "expected float16 activations"


def test_double_scale_and_16_bit_bias():
    g, feeds = _chain()
    g.outputs = [g.tensor(g.op("conv2").name) if False else g.outputs_of(g.op("conv2"))[0]]
    g.remove_op(g.op("up"))
    for opts in ({"bias_mode": "double_scale_initialization"}, {"bias_bits": 16}):
        bias_g = g.copy()
        for i in range(3):
            op = bias_g.op(f"conv{i}")
            bias_g.set_input(op, 2, bias_g.add_const(f"b{i}", np.linspace(-1, 1, 4).astype(np.float32)))
        assert_bit_exact(quantize_graph(bias_g, feeds, **opts), feeds)
