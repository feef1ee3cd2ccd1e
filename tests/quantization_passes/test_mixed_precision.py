"""Mixed precision: conversion ops are inserted where data types change and show in the text dump."""
from __future__ import annotations

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.printer import to_text
from npuc.quantization.config import QuantConfig
from quant_testing import compare, quantize_graph

F32 = DType.FLOAT32


def _chain(rng) -> Graph:
    g = Graph("chain")
    x = g.add_input("x", F32, (1, 4, 8, 8))
    t = x
    for i in range(4):
        w = g.add_const(f"w{i}", (rng.normal(size=(4, 4, 3, 3)) * 0.3).astype(np.float32))
        b = g.add_const(f"b{i}", rng.normal(size=4).astype(np.float32))
        t = g.outputs_of(g.add_op("Conv", [t, w, b], {"pads": (1, 1, 1, 1), "activation": "relu"}, name=f"conv{i}"))[0]
    g.outputs = [t]
    return g


def _feeds(rng, n=6):
    return [{"x": rng.normal(size=(1, 4, 8, 8)).astype(np.float32)} for _ in range(n)]


def test_mixed_precision_inserts_visible_conversions(rng):
    g = _chain(rng)
    cfg = QuantConfig()
    cfg.set_precision_mode(["conv2", "conv3"], "a16_w16")  # {conv2...}: the tail in 16 bit
    cfg.set_data_type(["conv1"], "float16")
    q = quantize_graph(g, _feeds(rng), cfg)
    text = to_text(q)
    kinds = [op.kind for op in q.ops()]
    assert kinds.count("Quantize") == 2  # graph input -> u8, conv1 (f16) -> conv2 (u16)
    assert kinds.count("Dequantize") == 1  # conv0 (u8) -> conv1 (f16)
    assert "= Quantize(%x) {to=u8}" in text
    assert "= Dequantize(%conv0) {to=f16}" in text
    assert "= Quantize(%conv1) {to=u16}" in text
    assert q.op("conv3").name and q.outputs[0].dtype is DType.UINT16
    assert min(compare(g, q, _feeds(rng, 1)[0]).values()) >= 30


def test_requantize_between_integer_widths_is_shared(rng):
    g = _chain(rng)
    # conv1 output read by an int16 conv2 and, as a second output, by nobody else: one Requantize
    cfg = QuantConfig()
    cfg.set_precision_mode(["conv2", "conv3"], "a16_w8")
    q = quantize_graph(g, _feeds(rng), cfg)
    req = [op for op in q.ops() if op.kind == "Requantize"]
    assert len(req) == 1 and q.outputs_of(req[0])[0].dtype is DType.UINT16
    assert "Requantize(%conv1) {to=u16}" in to_text(q)


def test_add_follows_majority_type(rng):
    """An Add reading two int16 tensors and one int8 tensor's sum runs in int16: one conversion, not two."""
    g = Graph("merge")
    x = g.add_input("x", F32, (1, 4, 4, 4))
    outs = []
    for i in range(2):
        w = g.add_const(f"w{i}", (rng.normal(size=(4, 4, 1, 1)) * 0.5).astype(np.float32))
        outs.append(g.outputs_of(g.add_op("Conv", [x, w], name=f"c{i}"))[0])
    a = g.outputs_of(g.add_op("Add", outs, name="add"))[0]
    g.outputs = [a]
    cfg = QuantConfig()
    cfg.set_precision_mode(["c0", "c1"], "a16_w8")
    q = quantize_graph(g, [{"x": rng.normal(size=(1, 4, 4, 4)).astype(np.float32)} for _ in range(4)], cfg)
    assert q.outputs[0].dtype is DType.UINT16
    assert [op.kind for op in q.ops()].count("Requantize") == 0


def test_forced_ranges_replace_the_calibrated_ones(rng):
    """quantization_param(..., force_range_out / force_range_in): the layer's output (or the tensor it reads)
    gets the given range at whatever precision it runs, not the calibrated one; values beyond it clip."""
    import pytest

    from npuc.errors import QuantizationError
    from npuc.quantization.schemes import representable_range

    g = _chain(rng)
    cfg = QuantConfig()
    cfg.set_layers(["conv1"], force_range_out=(0.0, 2.0))
    cfg.set_layers(["conv3"], force_range_in=(0.0, 50.0))
    cfg.set_precision_mode(["conv2"], "a16_w16")
    q = quantize_graph(g, _feeds(rng), cfg)
    for name, (lo, hi) in (("conv1", (0.0, 2.0)), ("conv2", (0.0, 50.0))):
        qp = q.outputs_of(q.op(name))[0].quant
        got = representable_range(qp)
        assert (float(got[0][0]), float(got[1][0])) == pytest.approx((lo, hi), abs=qp.scale[0]), name
    assert q.outputs_of(q.op("conv2"))[0].quant.bits == 16
    out = compare(g, q, _feeds(rng, 1)[0])  # conv1 clips at 2.0: the chain still runs, with that loss
    assert all(np.isfinite(v) for v in out.values())

    clash = QuantConfig()
    clash.set_layers(["conv1"], force_range_out=(0.0, 2.0))
    clash.set_layers(["conv2"], force_range_in=(0.0, 3.0))
    with pytest.raises(QuantizationError, match=r"'conv1'.*two forced ranges.*force_range_in of layer 'conv2'"):
        quantize_graph(g, _feeds(rng), clash)
    with pytest.raises(QuantizationError, match="finite low < high"):
        QuantConfig().set_layers(["conv1"], force_range_out=(2.0, 1.0))


def test_script_force_range_reaches_the_quantizer():
    from npuc.script import default_registry
    from npuc.script.binder import bind
    from npuc.script.layers import LayerRef
    from npuc.script.parser import parse
    from npuc.script_config import pipeline_settings

    layers = [LayerRef(f"conv{i}", "Conv", (), (f"conv{i}",)) for i in range(4)]
    text = "quantization_param(conv3, force_range_out=[-8, 8])\nquantization_param(conv2, force_range_in=[0, 4])\n"
    s = pipeline_settings(bind(parse(text, "s.alls"), default_registry(), layers))
    assert s.quant_config.for_op("conv3").force_range_out == (-8.0, 8.0)
    assert s.quant_config.for_op("conv2").force_range_in == (0.0, 4.0)
    assert not s.notes  # not 'accepted but has no effect' any more
