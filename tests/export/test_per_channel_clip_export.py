"""Export of fused clips with per-output-channel bounds (cross-layer equalization's ReLU6): ONNX Clip takes
scalar bounds only, so they are written as Max / Min with a per-channel constant."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "quantization_passes"))
from qdq_testing import run_onnx  # noqa: E402
from quant_testing import quantize_graph  # noqa: E402

from npuc.backends.reference.executor import run_graph  # noqa: E402
from npuc.backends.reference.quantized_executor import run_quantized  # noqa: E402
from npuc.export import export_float_onnx, export_qdq_onnx  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402

pytest.importorskip("onnxruntime")


def _graph() -> Graph:
    """Conv (clip(0, hi_c)) -> GlobalAveragePool -> Reshape -> Gemm (clip(lo_c, hi_c))."""
    rng = np.random.default_rng(0)
    g = Graph("per_channel_clip")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8), layout="NCHW")
    w = g.add_const("w", rng.normal(size=(6, 3, 3, 3)).astype(np.float32))
    b = g.add_const("b", rng.normal(size=6).astype(np.float32))
    hi = (0.1, 0.5, 1.0, 2.0, 4.0, 6.0)
    c = g.add_op("Conv", [x, w, b], {"pads": (1, 1, 1, 1), "activation": "clip", "clip_min": 0.0, "clip_max": hi},
                 name="conv")
    p = g.add_op("GlobalAveragePool", g.outputs_of(c))
    f = g.add_op("Reshape", g.outputs_of(p), {"shape": (1, 6)})
    wf = g.add_const("wf", rng.normal(size=(4, 6)).astype(np.float32))
    y = g.add_op("Gemm", [g.outputs_of(f)[0], wf],
                 {"activation": "clip", "clip_min": (-0.2, -1.0, 0.0, -0.5), "clip_max": (0.2, 1.0, 0.3, 3.0)},
                 name="y")
    g.outputs = g.outputs_of(y) + g.outputs_of(c)
    return g


def _feeds(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [{"x": (rng.normal(size=(1, 3, 8, 8)) * 2).astype(np.float32)} for _ in range(n)]


def test_float_export_of_per_channel_clip():
    g = _graph()
    model = export_float_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    kinds = [n.op_type for n in model.graph.node]
    assert "Clip" not in kinds and kinds.count("Max") == 2 and kinds.count("Min") == 2
    for feeds in _feeds(3):
        np.testing.assert_allclose(run_onnx(model, feeds)["y"], run_graph(g, feeds)["y"], rtol=1e-5, atol=1e-5)


def test_qdq_export_of_per_channel_clip_agrees_with_the_integer_reference():
    g = _graph()
    q = quantize_graph(g, _feeds(8))
    assert q.op("y").attrs["clip_max"] == (0.2, 1.0, 0.3, 3.0)
    model = export_qdq_onnx(q)
    onnx.checker.check_model(model, full_check=True)
    conv_out = q.outputs[1].name
    for feeds in _feeds(4, seed=7):
        ref, got = run_quantized(q, feeds), run_onnx(model, feeds)
        # the conv output: onnxruntime's float conv + Q vs the exact integer requantization, one step apart
        # at most; the clamp binds on both sides (channel 0 saturates at 0.1)
        step = float(q.outputs[1].quant.scale[0])
        assert np.max(np.abs(got[conv_out] - ref[conv_out])) <= step + 1e-6
        assert np.mean(np.abs(ref[conv_out][0, 0] - 0.1) <= step) > 0.2
        np.testing.assert_allclose(got[conv_out].max(axis=(0, 2, 3)), ref[conv_out].max(axis=(0, 2, 3)),
                                   atol=step + 1e-6)
        assert np.all(ref[conv_out].max(axis=(0, 2, 3)) <= np.array(q.op("conv").attrs["clip_max"]) + step)
        # the Gemm output after pooling: a few steps (the rounding differences add up)
        step = float(q.outputs[0].quant.scale[0])
        assert np.max(np.abs(got["y"] - ref["y"])) <= 4 * step + 1e-6


def test_exported_float_model_imports_back_with_per_channel_clips():
    """export -> import -> float rewrites: Max / Min fuse back into the same per-channel clips."""
    from npuc.backends.reference.emulation import run_float_passes
    from npuc.frontends.onnx import load_onnx

    g = _graph()
    back = run_float_passes(load_onnx(export_float_onnx(g), {"x": (1, 3, 8, 8)}))
    macs = {op.kind: op for op in back.ops() if op.kind in ("Conv", "Gemm")}
    assert set(macs) == {"Conv", "Gemm"} and not any(op.kind in ("Max", "Min") for op in back.ops())
    for op in g.ops():
        if op.kind in macs:
            for k in ("clip_min", "clip_max"):
                np.testing.assert_allclose(macs[op.kind].attrs[k], np.float32(op.attrs[k]), rtol=1e-7)
    for feeds in _feeds(2):
        ref, got = run_graph(g, feeds), run_graph(back, feeds)
        for name in ref:
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5)
