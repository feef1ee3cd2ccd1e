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
