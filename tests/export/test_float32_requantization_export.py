"""Float32 requantization (docs/numerics.md section 6a) is onnxruntime's QLinearConv / QGemm arithmetic:
checked against onnxruntime directly on tie-heavy hand-built QDQ models, then on npuc-quantized graphs
exported as QDQ, where every fused layer agrees with npuc's integer reference code for code."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "quantization_passes"))
from qdq_testing import layerwise_flips, run_onnx  # noqa: E402
from quant_testing import quantize_graph  # noqa: E402

from npuc.export import export_qdq_onnx  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402
from npuc.quantization.fixed_point import requantize  # noqa: E402
from npuc.quantization.float32_requantization import (encode_float32_multiplier, float32_multiplier,  # noqa: E402
                                                      requantize_float32)

pytest.importorskip("onnxruntime")


def _qdq_conv(x_dtype, sx, zx, sw, sy, zy, w, b, shape):
    """DQ(x) -> Conv(DQ(w), DQ(b)) -> Q, the form onnxruntime fuses into QLinearConv."""
    tt = TensorProto.UINT8 if x_dtype == np.uint8 else TensorProto.INT8
    nodes = [helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xf"]),
             helper.make_node("DequantizeLinear", ["wq", "sw"], ["wf"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "sb"], ["bf"], axis=0),
             helper.make_node("Conv", ["xf", "wf", "bf"], ["yf"]),
             helper.make_node("QuantizeLinear", ["yf", "sy", "zy"], ["yq"])]
    inits = [numpy_helper.from_array(np.array(sx, np.float32), "sx"), numpy_helper.from_array(np.array(zx, x_dtype), "zx"),
             numpy_helper.from_array(w, "wq"), numpy_helper.from_array(sw, "sw"), numpy_helper.from_array(b, "bq"),
             numpy_helper.from_array((np.float32(sx) * sw).astype(np.float32), "sb"),
             numpy_helper.from_array(np.array(sy, np.float32), "sy"), numpy_helper.from_array(np.array(zy, x_dtype), "zy")]
    graph = helper.make_graph(nodes, "qconv", [helper.make_tensor_value_info("xq", tt, list(shape))],
                              [helper.make_tensor_value_info("yq", tt, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("x_dtype, sx, sw, sy, zx, zy, wmax", [
    (np.uint8, 0.5, 0.25, 0.25, 10, 100, 3),     # m = 0.5: every odd accumulator is a tie
    (np.int8, 0.5, 0.25, 0.25, 3, -7, 3),
    (np.int8, 0.5, 0.125, 1.0, 3, -7, 3),        # m = 1/16
    (np.uint8, 0.0173, 0.0041, 0.731, 117, 121, 127),  # an ordinary multiplier, large accumulators
])
def test_onnxruntime_qlinearconv_is_the_float32_rule(x_dtype, sx, sw, sy, zx, zy, wmax):
    rng = np.random.default_rng(0)
    info = np.iinfo(x_dtype)
    C, K = 8, 16
    x = rng.integers(info.min, int(info.max) + 1, (1, K, 12, 12)).astype(x_dtype)
    w = rng.integers(-wmax, wmax + 1, (C, K, 1, 1)).astype(np.int8)
    b = rng.integers(-50, 50, C).astype(np.int32)
    sw_c = np.full(C, sw, np.float32)
    got = run_onnx(_qdq_conv(x_dtype, sx, zx, sw_c, sy, zy, w, b, x.shape), {"xq": x})["yq"][0].astype(np.int64)
    acc = np.einsum("ck,khw->chw", w[:, :, 0, 0].astype(np.int64), x[0].astype(np.int64) - zx) + b[:, None, None]
    M, n = encode_float32_multiplier(float32_multiplier(sx, sw_c, sy))
    expected = requantize_float32(acc, M, n, zy, int(info.min), int(info.max), axis=0)
    assert np.array_equal(got, expected)
    v = acc * (sx * sw / sy)
    ties = np.count_nonzero(v - np.floor(v) == 0.5)
    if ties:  # npuc's default rule (half up) is a different function on ties
        assert not np.array_equal(got, requantize(acc, M, n, zy, int(info.min), int(info.max), axis=0))


def _graph() -> Graph:
    """Conv 3x3 + ReLU -> depthwise Conv + clip -> strided grouped Conv -> GlobalAveragePool -> Gemm, and a
    ConvTranspose branch (onnxruntime runs that one in float32: it does not fuse it)."""
    rng = np.random.default_rng(0)
    g = Graph("float32_requant")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 16, 16), layout="NCHW")

    def conv(src, cout, cin, k, name, **attrs):
        w = g.add_const(f"{name}.w", (rng.normal(size=(cout, cin, k, k)) * 0.4).astype(np.float32))
        b = g.add_const(f"{name}.b", rng.normal(size=cout).astype(np.float32) * 0.1)
        return g.outputs_of(g.add_op("Conv", [src, w, b], attrs, name=name))[0]

    c1 = conv(x, 16, 3, 3, "c1", pads=(1, 1, 1, 1), activation="relu")
    c2 = conv(c1, 16, 1, 3, "c2", pads=(1, 1, 1, 1), group=16, activation="clip", clip_min=0.0, clip_max=6.0)
    c3 = conv(c2, 24, 8, 3, "c3", pads=(1, 1, 1, 1), strides=(2, 2), group=2)
    p = g.outputs_of(g.add_op("GlobalAveragePool", [c3]))[0]
    f = g.outputs_of(g.add_op("Reshape", [p], {"shape": (1, 24)}))[0]
    wf = g.add_const("fc.w", rng.normal(size=(10, 24)).astype(np.float32))
    y = g.outputs_of(g.add_op("Gemm", [f, wf], name="fc"))[0]
    wt = g.add_const("up.w", (rng.normal(size=(24, 4, 2, 2)) * 0.3).astype(np.float32))
    up = g.outputs_of(g.add_op("ConvTranspose", [c3, wt], {"strides": (2, 2)}, name="up"))[0]
    g.outputs = [y, up]
    return g


def _feeds(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [{"x": (rng.normal(size=(1, 3, 16, 16)) * 2).astype(np.float32)} for _ in range(n)]


@pytest.mark.parametrize("per_channel", [True, False])
def test_exported_layers_agree_code_for_code(per_channel):
    g = _graph()
    q = quantize_graph(g, _feeds(8, seed=1), requantization="float32", per_channel=per_channel)
    model = export_qdq_onnx(q)
    onnx.checker.check_model(model, full_check=True)
    checked = 0
    for feeds in _feeds(6, seed=5):
        layers = layerwise_flips(q, model, feeds)
        fused = {name: r for name, r in layers.items() if r[0] in ("Conv", "Gemm")}
        assert len(fused) == 4
        assert all(r[2] == 0 for r in fused.values()), fused
        assert all(r[3] <= 1 for r in layers.values()), layers  # ConvTranspose (float32 in onnxruntime): 1 LSB
        checked += sum(r[1] for r in fused.values())
    assert checked > 10_000


def test_exactness_note_names_the_knob_only_when_needed():
    from npuc.export import exactness_note

    g = _graph()
    default = quantize_graph(g, _feeds(2, seed=1))
    note = exactness_note(default)
    assert note is not None and note.startswith("5 MAC layer(s)") and "quantize(requantization=float32)" in note
    assert exactness_note(quantize_graph(g, _feeds(2, seed=1), requantization="float32")) is None
