"""A fully int8 TFLite model compiles with its own encodings (no calibration) and npuc's simulator
matches LiteRT's int8 kernels within 1 LSB."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "export"))
import make_models as mm  # noqa: E402
from qdq_testing import run_binary  # noqa: E402
from tflite_testing import litert  # noqa: E402

from npuc.driver import CompileRequest, compile_model, write_outputs  # noqa: E402

pytest.importorskip("ai_edge_litert.interpreter")

X, A, B, C, OUT = (0.02, -3), (0.03, -128), (6 / 255, -128), (0.06, -128), (0.06, -128)


def _int8_weights(w: np.ndarray, x_scale: float) -> tuple[np.ndarray, list[float], np.ndarray]:
    """Per-channel symmetric int8 weights (channel = last axis for depthwise, first otherwise)."""
    axis = 3 if w.shape[0] == 1 else 0
    other = tuple(i for i in range(4) if i != axis)
    scale = np.abs(w).max(axis=other) / 127
    q = np.clip(np.round(w / np.expand_dims(scale, other)), -127, 127).astype(np.int8)
    bias = np.round(mm._w(len(scale), scale=0.2) / (x_scale * scale)).astype(np.int32)
    return q, scale.tolist(), bias


def int8_block() -> bytes:
    """QUANTIZE -> CONV_2D(relu) -> DEPTHWISE_CONV_2D(relu6) -> ADD(skip) -> MAX_POOL_2D -> DEQUANTIZE.

    (AVERAGE_POOL_2D and MEAN have their own tie-heavy test: test_tflite_int8_avgpool.py.)"""
    wc, sc, bc = _int8_weights(mm._w(8, 3, 3, 3, scale=0.4), X[0])
    wd, sd, bd = _int8_weights(mm._w(1, 3, 3, 8, scale=0.4), A[0])
    tensors = [
        mm.T("x", (1, 8, 8, 3)),
        mm.T("xq", (1, 8, 8, 3), "INT8", None, [X[0]], [X[1]]),
        mm.T("wc", wc.shape, "INT8", wc, sc, [0] * 8, 0),
        mm.T("bc", (8,), "INT32", bc, [X[0] * s for s in sc], [0] * 8, 0),
        mm.T("a", (1, 8, 8, 8), "INT8", None, [A[0]], [A[1]]),
        mm.T("wd", wd.shape, "INT8", wd, sd, [0] * 8, 3),
        mm.T("bd", (8,), "INT32", bd, [A[0] * s for s in sd], [0] * 8, 0),
        mm.T("b", (1, 8, 8, 8), "INT8", None, [B[0]], [B[1]]),
        mm.T("c", (1, 8, 8, 8), "INT8", None, [C[0]], [C[1]]),
        mm.T("d", (1, 4, 4, 8), "INT8", None, [OUT[0]], [OUT[1]]),
        mm.T("y", (1, 4, 4, 8)),
    ]
    conv = {"Padding": mm.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1, "DilationHFactor": 1}
    ops = [
        mm.Op("QUANTIZE", ["x"], ["xq"]),
        mm.Op("CONV_2D", ["xq", "wc", "bc"], ["a"], "Conv2DOptions", {**conv, "FusedActivationFunction": mm.RELU}),
        mm.Op("DEPTHWISE_CONV_2D", ["a", "wd", "bd"], ["b"], "DepthwiseConv2DOptions",
              {**conv, "DepthMultiplier": 1, "FusedActivationFunction": mm.RELU6}),
        mm.Op("ADD", ["a", "b"], ["c"], "AddOptions", {"FusedActivationFunction": mm.NONE}),
        mm.Op("MAX_POOL_2D", ["c"], ["d"], "Pool2DOptions",
              {"Padding": mm.VALID, "StrideW": 2, "StrideH": 2, "FilterWidth": 2, "FilterHeight": 2,
               "FusedActivationFunction": mm.NONE}),
        mm.Op("DEQUANTIZE", ["d"], ["y"]),
    ]
    return mm.build_model(tensors, ops, ["x"], ["y"])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[bytes, Path, object]:
    folder = tmp_path_factory.mktemp("int8")
    model = folder / "block.tflite"
    model.write_bytes(int8_block())
    result = compile_model(CompileRequest(model=model))  # no calib: the model's own encodings
    files = write_outputs(result, folder / "out")
    return model.read_bytes(), files["binary"], result


def test_compiles_without_calibration_keeping_the_encodings(compiled):
    _, _, result = compiled
    g = result.quantized
    (out,) = g.outputs
    assert out.quant.scale == pytest.approx((OUT[0],), rel=1e-6) and out.quant.zero_point == (OUT[1],)
    assert out.dtype.value == "i8"
    xq = g.outputs_of(next(op for op in g.ops() if op.kind == "Quantize"))[0].quant
    assert xq.scale == pytest.approx((X[0],), rel=1e-6) and xq.zero_point == (X[1],)
    weights = [t for t in g.constants() if t.quant is not None and t.quant.is_per_channel and t.dtype.value == "i8"]
    assert len(weights) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulator_matches_litert_within_one_lsb(compiled, seed):
    model, binary, result = compiled
    x = np.random.default_rng(seed).uniform(-2.6, 2.6, (1, 8, 8, 3)).astype(np.float32)
    ref = litert(model, {"x": x})["y"]
    ref_codes = np.round(ref / OUT[0]).astype(np.int64) + OUT[1]
    layouts = result.quantized.meta["io_layouts"]
    ir_x = x.transpose(np.argsort(layouts["x"]["to_source"]))
    got = run_binary(binary, {"x": ir_x}, dequantize=False)["y"].transpose(layouts["y"]["to_source"])
    diff = np.abs(got.astype(np.int64) - ref_codes)
    assert diff.max() <= 1, f"max {diff.max()} LSB, {np.mean(diff > 0):.1%} differ"
    assert np.mean(diff > 0) < 0.05
