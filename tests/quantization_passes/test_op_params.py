"""derive_op_params on hand-built quantized graphs: hand-computed constants."""
from __future__ import annotations

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.quant_params import QuantParams
from npuc.quantization.op_params import DOUBLE_SCALE_BIAS_LAYOUT, derive_op_params
from npuc.backends.reference.quantized_executor import QuantizedExecutor


def _conv_graph(bias_dtype=DType.INT32, layout=None, activation=None):
    g = Graph("q")
    x = g.add_input("x", DType.FLOAT32, (1, 1, 2, 2))
    qx = QuantParams.per_tensor(0.5, 10, 8, False)
    xq = g.outputs_of(g.add_op("Quantize", [x], {"to": DType.UINT8}))[0]
    xq.quant = qx
    w = g.add_const("w", np.array([[[[2]]], [[[-3]]]], dtype=np.int8))
    w.quant = QuantParams.per_channel([0.25, 0.125], [0, 0], 0)
    b = g.add_const("b", np.array([7, -1 << 20], dtype=bias_dtype.numpy))
    b.quant = QuantParams.per_channel([0.125, 0.0625], [0, 0], 0, bias_dtype.bits)
    b.layout = layout
    y = g.outputs_of(g.add_op("Conv", [xq, w, b], {"activation": activation}, name="conv"))[0]
    y.quant = QuantParams.per_tensor(0.25, 128, 8, False)
    g.outputs = [y]
    return g


def test_conv_constants_hand_computed():
    g = _conv_graph()
    p = derive_op_params(g, g.op("conv"))
    # multipliers s_x * s_w / s_y = 0.5, 0.25 -> M = 2**30, n = 0 and 1
    assert p["multiplier"].tolist() == [1 << 30, 1 << 30] and p["shift"].tolist() == [0, 1]
    assert p["input_zero_point"].tolist() == [10] and p["output_zero_point"].tolist() == [128]
    assert p["bias_words"].tolist() == [[7, -(1 << 20)]] and p["bias_shift"].tolist() == [0]
    assert (p["clamp_min"][0], p["clamp_max"][0], p["acc_bits"][0]) == (0, 255, 32)


def test_conv_integer_result_hand_computed():
    g = _conv_graph()
    # x = 1.5 -> q = 13 (centered 3); ch0: acc = 3*2 + 7 = 13, 13 * 0.5 = 6.5 -> round half up 7 -> 135
    out = QuantizedExecutor(g).run({"x": np.full((1, 1, 2, 2), 1.5, np.float32)}, dequantize=False)
    codes = out["conv"]
    assert codes[0, 0, 0, 0] == 135
    assert codes[0, 1, 0, 0] == 0  # -9 - 2**20 on a 0.25 multiplier saturates at qmin


def test_fused_relu_clamp_is_zero_point():
    g = _conv_graph(activation="relu")
    p = derive_op_params(g, g.op("conv"))
    assert p["clamp_min"][0] == 128


def test_double_scale_bias_words():
    g = _conv_graph(layout=DOUBLE_SCALE_BIAS_LAYOUT)
    p = derive_op_params(g, g.op("conv"))
    words = p["bias_words"]
    assert p["bias_shift"].tolist() == [15, 0]
    assert (words[0] * (1 << 15) + words[1]).tolist() == [7, -(1 << 20)]
    assert words[1].min() >= 0 and words[1].max() < (1 << 15)
