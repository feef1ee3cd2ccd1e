"""Per-family checks: a one-layer graph quantized int8, quantized executor vs float executor."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from conftest import compare, quantize_graph

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
