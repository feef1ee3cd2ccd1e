"""Per-family checks: a one-layer graph quantized int8, quantized executor vs float executor."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from quant_testing import compare, quantize_graph

F32 = DType.FLOAT32


def _feeds(rng, shape, n=8, scale=1.0, name="x"):
    return [{name: (rng.normal(size=shape) * scale).astype(np.float32)} for _ in range(n)]


def _single(kind, shape, attrs=None, consts=(), rng=None):
    g = Graph("t")
    x = g.add_input("x", F32, shape)
    ins = [x] + [g.add_const(f"c{i}", c) for i, c in enumerate(consts)]
    op = g.add_op(kind, ins, attrs or {}, name="layer")
    g.outputs = g.outputs_of(op)
    return g


@pytest.mark.parametrize("act", [None, "relu", "clip"])
def test_conv_int8_snr_and_fused_clamp(rng, act):
    w = (rng.normal(size=(16, 8, 3, 3)) * 0.2).astype(np.float32)
    b = rng.normal(size=16).astype(np.float32)
    attrs = {"pads": (1, 1, 1, 1), "activation": act}
    if act == "clip":
        attrs.update(clip_min=0.0, clip_max=2.0)
    g = _single("Conv", (1, 8, 12, 12), attrs, (w, b))
    feeds = _feeds(rng, (1, 8, 12, 12))
    q = quantize_graph(g, feeds)
    snr = compare(g, q, feeds[0])
    assert min(snr.values()) >= 30, snr
    out = q.outputs[0]
    assert out.dtype is DType.UINT8
    from npuc.backends.reference.quantized_executor import QuantizedExecutor
    codes = QuantizedExecutor(q).run(feeds[0], dequantize=False)[out.name]
    real = out.quant.scale[0] * (codes.astype(np.int64) - out.quant.zero_point[0])
    if act in ("relu", "clip"):
        assert real.min() >= 0 and codes.min() >= out.quant.zero_point[0]
    if act == "clip":
        assert real.max() <= 2.0 + out.quant.scale[0]


def _two_input(kind, shape_a, shape_b, attrs=None):
    g = Graph("t")
    a = g.add_input("a", F32, shape_a)
    b = g.add_input("b", F32, shape_b)
    op = g.add_op(kind, [a, b], attrs or {}, name="layer")
    g.outputs = g.outputs_of(op)
    return g


def _feeds2(rng, sa, sb, n=8):
    return [{"a": rng.normal(size=sa).astype(np.float32), "b": (rng.normal(size=sb) * 3).astype(np.float32)}
            for _ in range(n)]


@pytest.mark.parametrize("kind", ["Add", "Sub", "Mul", "Max", "Min"])
def test_binary_elementwise_int8(rng, kind):
    g = _two_input(kind, (1, 4, 6, 6), (1, 4, 6, 6))
    feeds = _feeds2(rng, (1, 4, 6, 6), (1, 4, 6, 6))
    snr = compare(g, quantize_graph(g, feeds), feeds[0])
    assert min(snr.values()) >= 30, snr


def test_concat_rescales_inputs_without_conversions(rng):
    g = Graph("t")
    a = g.add_input("a", F32, (1, 2, 4, 4))
    b = g.add_input("b", F32, (1, 3, 4, 4))
    op = g.add_op("Concat", [a, b], {"axis": 1}, name="cat")
    g.outputs = g.outputs_of(op)
    feeds = _feeds2(rng, (1, 2, 4, 4), (1, 3, 4, 4))
    q = quantize_graph(g, feeds)
    assert sorted(o.kind for o in q.ops()).count("Requantize") == 0
    assert min(compare(g, q, feeds[0]).values()) >= 30


@pytest.mark.parametrize("kind,attrs", [
    ("MaxPool", {"kernel": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}),
    ("AveragePool", {"kernel": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}),
    ("AveragePool", {"kernel": (2, 2), "strides": (2, 2), "ceil_mode": True}),
    ("GlobalAveragePool", {}),
    ("ReduceMean", {"axes": (2, 3)}),
])
def test_pooling_int8(rng, kind, attrs):
    g = _single(kind, (1, 4, 7, 7), attrs)
    feeds = _feeds(rng, (1, 4, 7, 7))
    snr = compare(g, quantize_graph(g, feeds), feeds[0])
    assert min(snr.values()) >= 30, snr


@pytest.mark.parametrize("kind", ["Sigmoid", "Tanh", "SiLU", "HardSwish", "HardSigmoid", "LeakyRelu", "Relu"])
@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
def test_activations_lut_and_clamp(rng, kind, mode):
    g = _single(kind, (1, 4, 8, 8))
    feeds = _feeds(rng, (1, 4, 8, 8), scale=3.0)
    q = quantize_graph(g, feeds, precision_mode=mode)
    layer = q.op("layer")
    if kind != "Relu":
        from npuc.quantization.op_params import derive_op_params
        assert derive_op_params(q, layer)["lut"].shape == ((256,) if mode == "a8_w8" else (65536,))
    snr = compare(g, q, feeds[0])
    assert min(snr.values()) >= (30 if mode == "a8_w8" else 60), snr


def test_softmax_int8(rng):
    g = _single("Softmax", (2, 10), {"axis": -1})
    feeds = _feeds(rng, (2, 10), scale=2.0)
    q = quantize_graph(g, feeds)
    assert q.outputs[0].quant.scale[0] == 2.0 ** -8
    assert min(compare(g, q, feeds[0]).values()) >= 30


@pytest.mark.parametrize("kind", ["Gemm", "MatMul"])
@pytest.mark.parametrize("mode", ["a8_w8", "a8_w4", "a16_w8", "a8_w16", "a16_w16"])
def test_dense_precision_modes(rng, kind, mode):
    w = (rng.normal(size=(32, 64)) * 0.1).astype(np.float32)
    consts = (w, rng.normal(size=32).astype(np.float32)) if kind == "Gemm" else (np.ascontiguousarray(w.T),)
    g = _single(kind, (4, 64), {}, consts)
    feeds = _feeds(rng, (4, 64))
    q = quantize_graph(g, feeds, precision_mode=mode)
    snr = compare(g, q, feeds[0])[q.outputs[0].name]
    bound = {"a8_w4": 18, "a8_w8": 30, "a16_w8": 35, "a8_w16": 35, "a16_w16": 60}[mode]
    assert snr >= bound, (mode, snr)
    weight = q.inputs_of(q.op("layer"))[1]
    assert weight.quant.bits == int(mode.split("_w")[1]) and weight.quant.is_symmetric


@pytest.mark.parametrize("bias_mode,bias_bits", [("single_scale_decomposition", 32), ("single_scale_decomposition", 16),
                                                 ("double_scale_initialization", 32)])
def test_bias_modes(rng, bias_mode, bias_bits):
    w = (rng.normal(size=(8, 4, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.normal(size=8) * 2).astype(np.float32)
    g = _single("Conv", (1, 4, 8, 8), {"pads": (1, 1, 1, 1)}, (w, b))
    feeds = _feeds(rng, (1, 4, 8, 8))
    q = quantize_graph(g, feeds, bias_mode=bias_mode, bias_bits=bias_bits)
    from npuc.quantization.op_params import derive_op_params
    p = derive_op_params(q, q.op("layer"))
    expected_words = 2 if bias_mode.startswith("double") else 1
    assert p["bias_words"].shape == (expected_words, 8)
    assert min(compare(g, q, feeds[0]).values()) >= 30


@pytest.mark.parametrize("scheme", ["asymmetric", "symmetric", "power_of_two"])
def test_schemes_conv(rng, scheme):
    w = (rng.normal(size=(8, 4, 3, 3)) * 0.3).astype(np.float32)
    g = _single("Conv", (1, 4, 8, 8), {"pads": (1, 1, 1, 1)}, (w,))
    feeds = _feeds(rng, (1, 4, 8, 8))
    q = quantize_graph(g, feeds, scheme=scheme)
    out = q.outputs[0].quant
    assert out.signed == (scheme != "asymmetric")
    if scheme == "power_of_two":
        assert np.log2(out.scale[0]).is_integer()
    assert min(compare(g, q, feeds[0]).values()) >= 25


def test_saturation_and_zero_point(rng):
    """Inputs beyond the calibrated range saturate to qmin/qmax; real 0.0 maps exactly to the zero point."""
    g = _single("Relu", (1, 1, 4, 4))
    q = quantize_graph(g, [{"x": np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 1, 4, 4)}])
    from npuc.backends.reference.quantized_executor import QuantizedExecutor
    x = np.array([-5, -1, 0, 0.5, 1, 7, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0], np.float32).reshape(1, 1, 4, 4)
    seen = {}
    codes = QuantizedExecutor(q).run({"x": x}, dequantize=False, on_tensor=lambda t, v: seen.setdefault(t.name, v))
    codes = codes[q.outputs[0].name].reshape(-1)
    qp = q.outputs[0].quant
    assert codes[2] == qp.zero_point[0] and codes[0] == qp.zero_point[0]  # 0.0 exact; relu clamps at zp
    xq = [t for t in q.tensors() if t.name.startswith("x:")][0]
    assert seen[xq.name].reshape(-1)[5] == xq.quant.qmax == seen[xq.name].reshape(-1)[6]  # input saturates
    assert seen[xq.name].reshape(-1)[0] == xq.quant.qmin
    assert codes[5] == codes[6] == codes.max()


def test_float16_fallback_warns(rng, caplog):
    g = _two_input("Div", (1, 8), (1, 8))
    feeds = [{"a": rng.normal(size=(1, 8)).astype(np.float32),
              "b": rng.uniform(1, 2, size=(1, 8)).astype(np.float32)} for _ in range(4)]
    with caplog.at_level("WARNING"):
        q = quantize_graph(g, feeds)
    assert "float16" in caplog.text
    assert q.outputs[0].dtype is DType.FLOAT16
    assert min(compare(g, q, feeds[0]).values()) >= 50


def test_fallback_error_lists_ops(rng):
    from npuc.errors import QuantizationError
    g = _two_input("Div", (1, 8), (1, 8))
    feeds = [{"a": np.ones((1, 8), np.float32), "b": np.ones((1, 8), np.float32)}]
    with pytest.raises(QuantizationError, match="Div 'layer'"):
        quantize_graph(g, feeds, fallback="error")


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_int8(rng, group):
    w = (rng.normal(size=(4, 6 // group, 3, 3)) * 0.3).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    g = _single("ConvTranspose", (1, 4, 5, 5), {"strides": (2, 2), "pads": (1, 1, 1, 1), "group": group}, (w, b))
    feeds = _feeds(rng, (1, 4, 5, 5))
    q = quantize_graph(g, feeds)
    assert min(compare(g, q, feeds[0]).values()) >= 30


def test_depthwise_conv_int8(rng):
    w = (rng.normal(size=(6, 1, 3, 3)) * 0.3).astype(np.float32)
    g = _single("Conv", (1, 6, 9, 9), {"pads": (1, 1, 1, 1), "group": 6, "strides": (2, 2)}, (w,))
    feeds = _feeds(rng, (1, 6, 9, 9))
    assert min(compare(g, quantize_graph(g, feeds), feeds[0]).values()) >= 30
