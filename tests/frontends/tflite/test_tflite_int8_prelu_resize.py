"""Fully int8 TFLite models with PRELU and RESIZE_BILINEAR compile to integer layers only (no float16
fallback) with the models' own encodings, and npuc's simulator matches LiteRT's int8 kernels within 1 LSB
(docs/numerics.md section 8)."""
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

X, P, OUT = (0.02, -3), (0.015, 20), (0.015, 20)
HW, C = (5, 7), 4


def prelu_resize(size, align: bool, half: bool, alpha: np.ndarray | None) -> bytes:
    """QUANTIZE -> PRELU (int8 alpha [1, 1, C]) -> RESIZE_BILINEAR (same encoding) -> DEQUANTIZE
    (without the PRELU when alpha is None)."""
    if alpha is None:
        tensors = [mm.T("x", (1, *HW, C)), mm.T("p", (1, *HW, C), "INT8", None, [P[0]], [P[1]]),
                   mm.T("size", (2,), "INT32", np.array(size)),
                   mm.T("r", (1, *size, C), "INT8", None, [OUT[0]], [OUT[1]]), mm.T("y", (1, *size, C))]
        ops = [mm.Op("QUANTIZE", ["x"], ["p"]),
               mm.Op("RESIZE_BILINEAR", ["p", "size"], ["r"], "ResizeBilinearOptions",
                     {"AlignCorners": align, "HalfPixelCenters": half}),
               mm.Op("DEQUANTIZE", ["r"], ["y"])]
        return mm.build_model(tensors, ops, ["x"], ["y"])
    a_scale = float(np.abs(alpha).max()) / 127
    qa = np.clip(np.round(alpha / a_scale), -127, 127).astype(np.int8).reshape(1, 1, C)
    tensors = [
        mm.T("x", (1, *HW, C)),
        mm.T("xq", (1, *HW, C), "INT8", None, [X[0]], [X[1]]),
        mm.T("alpha", (1, 1, C), "INT8", qa, [a_scale], [0]),
        mm.T("p", (1, *HW, C), "INT8", None, [P[0]], [P[1]]),
        mm.T("size", (2,), "INT32", np.array(size)),
        mm.T("r", (1, *size, C), "INT8", None, [OUT[0]], [OUT[1]]),
        mm.T("y", (1, *size, C)),
    ]
    ops = [
        mm.Op("QUANTIZE", ["x"], ["xq"]),
        mm.Op("PRELU", ["xq", "alpha"], ["p"]),
        mm.Op("RESIZE_BILINEAR", ["p", "size"], ["r"], "ResizeBilinearOptions",
              {"AlignCorners": align, "HalfPixelCenters": half}),
        mm.Op("DEQUANTIZE", ["r"], ["y"]),
    ]
    return mm.build_model(tensors, ops, ["x"], ["y"])


CASES = {
    "half_pixel_up": ((10, 14), False, True),
    "half_pixel_odd": ((9, 11), False, True),
    "align_corners": ((9, 13), True, False),
    "asymmetric": ((9, 11), False, False),
    "asymmetric_down": ((3, 4), False, False),
}


def _compare(model: bytes, tmp_path: Path, seeds: int = 3) -> tuple[int, float, object]:
    """(max |npuc - LiteRT| in output LSB, fraction of outputs differing, the compile result)."""
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    result = compile_model(CompileRequest(model=path))  # the model's own encodings, no calibration
    g = result.quantized
    assert "Cast" not in [op.kind for op in g.ops()]
    assert not any(t.dtype.is_float and t.dtype.bits == 16 for t in g.tensors()), "no float16 fallback"
    binary = write_outputs(result, tmp_path / "out")["binary"]
    layouts = g.meta["io_layouts"]
    worst, differ, total = 0, 0, 0
    for seed in range(seeds):
        x = np.random.default_rng(seed).uniform(-2.5, 2.5, (1, *HW, C)).astype(np.float32)
        ref = litert(model, {"x": x})["y"]
        ref_codes = np.round(ref / OUT[0]).astype(np.int64) + OUT[1]
        ir_x = x.transpose(np.argsort(layouts["x"]["to_source"]))
        got = run_binary(binary, {"x": ir_x}, dequantize=False)["y"].transpose(layouts["y"]["to_source"])
        diff = np.abs(got.astype(np.int64) - ref_codes)
        worst, differ, total = max(worst, int(diff.max())), differ + int((diff > 0).sum()), total + diff.size
    return worst, differ / total, result


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_bilinear_resize_is_bit_exact_with_litert(case, tmp_path):
    """The importer marks an int8 RESIZE_BILINEAR rounding="tflite_bilinear": TFLite's 10-bit coordinates
    and rounding, so npuc's integer kernel reproduces LiteRT's codes exactly."""
    size, align, half = CASES[case]
    worst, frac, result = _compare(prelu_resize(size, align, half, None), tmp_path)
    (resize,) = [op for op in result.quantized.ops() if op.kind == "Resize"]
    assert resize.attrs["rounding"] == "tflite_bilinear"
    assert worst == 0, f"{frac:.2%} of the outputs differ (max {worst} LSB)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_prelu_and_bilinear_resize_match_litert(case, tmp_path):
    size, align, half = CASES[case]
    worst, frac, result = _compare(prelu_resize(size, align, half, np.array([0.25, -0.5, 0.05, 1.1])), tmp_path)
    assert {"PRelu", "Resize"} <= {op.kind for op in result.quantized.ops()}
    # measured over 10 inputs: 0.1-0.2% of the outputs differ by 1 LSB, all from the PRELU (TFLite
    # requantizes with two roundings, npuc with one: docs/numerics.md section 1)
    assert worst <= 1, f"max {worst} LSB"
    assert frac < 0.01, f"{frac:.1%} differ by 1 LSB"
