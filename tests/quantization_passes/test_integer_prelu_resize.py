"""PRelu and bilinear Resize run as integer layers (no float16 fallback) and stay within 1 LSB of the
float kernel applied to the dequantized input and then quantized (docs/numerics.md section 8)."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.reference.kernels import kernel_for
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.quantization.integer_ops import interpolate_linear, quantized_prelu
from npuc.quantization.op_params import derive_op_params, integer_form_problem
from npuc.quantization.schemes import dequantize, quantize
from quant_testing import quantize_graph

MODES = ("a8_w8", "a16_w16")
COORDS = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners", "half_pixel_symmetric")


def _graph(kind: str, attrs: dict, shape=(1, 3, 6, 7), slope=None) -> Graph:
    g = Graph(kind)
    x = g.add_input("x", DType.FLOAT32, shape)
    ins = [x] if slope is None else [x, g.add_const("slope", np.asarray(slope, np.float32))]
    g.outputs = list(g.outputs_of(g.add_op(kind, ins, attrs, name="layer")))
    return g


def _float_then_quantize_lsb(g: Graph, mode: str, seed: int = 0) -> tuple[int, float]:
    """(max |integer - quantize(float kernel(dequantized input))| in LSB, fraction of outputs differing)."""
    rng = np.random.default_rng(seed)
    shape = g.inputs[0].shape
    feeds = [{"x": (rng.normal(size=shape) * 2 + 0.3).astype(np.float32)} for _ in range(6)]
    q = quantize_graph(g, feeds, precision_mode=mode)
    layer = q.op("layer")
    assert not any(t.dtype is DType.FLOAT16 for t in q.tensors()), "no float16 fallback"
    assert [op.kind for op in q.ops()] == ["Quantize", g.ops()[0].kind]
    x_t, y_t = q.inputs_of(layer)[0], q.outputs_of(layer)[0]
    extra = [dequantize(t.data, t.quant, np.float32) for t in q.inputs_of(layer)[1:]]
    ex = QuantizedExecutor(q)
    worst, differ, total = 0, 0, 0
    for f in feeds:
        seen = {}
        out = ex.run(f, dequantize=False, on_tensor=lambda t, v: seen.__setitem__(t.name, v))
        xq = seen[x_t.name]
        y_float = kernel_for(layer.kind)(layer, [dequantize(xq, x_t.quant, np.float32), *extra])[0]
        d = np.abs(quantize(y_float, y_t.quant).astype(np.int64) - out[y_t.name].astype(np.int64))
        worst, differ, total = max(worst, int(d.max())), differ + int((d > 0).sum()), total + d.size
    return worst, differ / total


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1), (1, 3, 1, 7)])
def test_prelu_within_one_lsb_of_float_then_quantize(mode, slope_shape):
    slope = np.resize(np.array([0.25, -0.4, 1.3, 0.0, 0.07]), slope_shape)
    worst, frac = _float_then_quantize_lsb(_graph("PRelu", {}, slope=slope), mode)
    assert worst <= 1 and frac < 0.02


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("coords", COORDS)
@pytest.mark.parametrize("size", [(13, 15), (3, 4), (6, 14)])
def test_bilinear_resize_within_one_lsb_of_float_then_quantize(mode, coords, size):
    g = _graph("Resize", {"size": (1, 3, *size), "mode": "linear", "coordinate_transformation_mode": coords})
    worst, frac = _float_then_quantize_lsb(g, mode)
    # differences are rounding ties (quarter-pixel weights put many values on .5) and weight rounding
    assert worst <= 1 and frac < 0.2


def test_prelu_hand_computed():
    """s_x = 0.5, z_x = 10, s_y = 0.25, z_y = -3; slope (0.5, -2): q = 4 -> x = -6 (real -3)."""
    q = np.array([[4, 13], [4, 13]], np.int64)
    # positive branch: x = 3, real 1.5 -> 1.5 / 0.25 = 6 -> -3 + 6 = 3
    # slope 0.5: real -1.5 -> -6 -> -9; slope -2: real 6 -> 24 -> 21
    y = quantized_prelu(q, 10, 1 << 30, -2, np.array([[1 << 30], [1 << 30]]), np.array([[-1], [-3]]),
                        np.array([[1], [-1]]), -3, -128, 127)
    assert y.tolist() == [[-9, 3], [21, 3]]


def test_bilinear_hand_computed():
    """2x2 -> 1x1 at the centre: weights 2**9 of 2**10 each way; (10 + 20 + 30 + 41) / 4 = 25.25 -> 25."""
    q = np.array([[10, 20], [30, 41]], np.int64)
    idx = np.array([[0], [1]])
    w = np.array([512])
    y = interpolate_linear(q, 0, idx, w, idx, w, 10, 1 << 30, 19, 0, -128, 127)
    assert y.tolist() == [[25]]
    tie = interpolate_linear(np.array([[10, 20], [30, 40]]), 0, idx, w, idx, w, 10, 1 << 30, 19, 0, -128, 127)
    assert tie.tolist() == [[25]]  # exactly 25


def test_remaining_fallbacks_are_reported():
    channels = _graph("Resize", {"size": (1, 6, 12, 14), "mode": "linear"})
    assert "last two axes" in integer_form_problem(channels, channels.op("layer"))
    g = Graph("dyn")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 4))
    s = g.add_input("s", DType.FLOAT32, (3, 1, 1))
    op = g.add_op("PRelu", [x, s], name="layer")
    assert "constant slope" in integer_form_problem(g, op)


def test_prelu_params_follow_the_slope_shape():
    g = _graph("PRelu", {}, slope=[[[0.5]], [[-0.25]], [[0.0]]])
    feeds = [{"x": np.linspace(-3, 3, 126, dtype=np.float32).reshape(1, 3, 6, 7)}]
    q = quantize_graph(g, feeds)
    p = derive_op_params(q, q.op("layer"))
    assert p["negative_multiplier"].shape == (1, 3, 1, 1)
    assert p["negative_sign"].reshape(-1).tolist() == [1, -1, 1]
    assert p["negative_multiplier"].reshape(-1)[2] == 0
    slope = q.inputs_of(q.op("layer"))[1]
    assert slope.dtype is DType.INT16 and slope.quant.zero_point == (0,)
    with pytest.raises(QuantizationError):
        bad = q.copy()
        bad.op("layer").attrs["mode"] = "x"  # not a resize: still PRelu params
        from npuc.quantization.op_params import resize_params
        resize_params(bad, bad.op("layer"))
