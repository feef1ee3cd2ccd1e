"""int8 AVERAGE_POOL_2D (and MEAN) from a TFLite model: npuc's simulator against LiteRT's int8 kernels.

TFLite's int8 average pool sums the raw codes of the valid pixels (SAME padding does not count)
and divides with ``(sum + count/2) / count`` (C truncation: ties away from zero). The importer
marks such pools ``rounding="half_away_from_zero"`` (docs/numerics.md section 8), so npuc's
simulator matches LiteRT exactly. The inputs are exact codes with a small spread around 0 so that
window sums of both signs hit exact ties often (checked below), and border windows of SAME
padding have counts 1, 2, 4, 6 and 9.

MEAN keeps npuc's half-up rule: TFLite's int8 MEAN has three kernels (optimized / integer /
float) with rounding rules of their own; npuc agrees with them within one LSB.
"""
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

S, Z = 0.05, 3  # the one encoding of the input and every pooled tensor (TFLite's int8 pools need equal ones)
HW, C = 9, 4
#: name -> (kernel, stride, padding, fused activation); out size from the geometry
POOLS = {
    "p2v": (2, 2, mm.VALID, mm.NONE),   # count 4 everywhere
    "p3s": (3, 2, mm.SAME, mm.NONE),    # counts 9, 6 (edges), 4 (corner)
    "p2s": (2, 1, mm.SAME, mm.RELU6),   # counts 4, 2, 1 at the far borders; fused relu6
    "p4s": (4, 3, mm.SAME, mm.NONE),    # counts 16, 12, 9 ...
}
#: name -> (TFLite axes, keep_dims, output (scale, zero point)): TFLite's 4-D H,W kernel (kept dims) with
#: equal and with other encodings (its offset 3 * 0.05 / 0.1 = 1.5 is a tie), and its generic kernel
MEANS = {
    "mean_hw": ((1, 2), True, (S, Z)),
    "mean_hw_rescaled": ((1, 2), True, (0.1, 5)),
    "mean_hw_dropped": ((1, 2), False, (0.03, -5)),
    "mean_c": ((3,), False, (0.03, -5)),
    "mean_w_same": ((2,), True, (S, Z)),
}


def _out(k: int, s: int, padding: int) -> int:
    return -(-HW // s) if padding == mm.SAME else (HW - k) // s + 1


def avgpool_model() -> bytes:
    tensors = [mm.T("x", (1, HW, HW, C)), mm.T("xq", (1, HW, HW, C), "INT8", None, [S], [Z]),
               ]
    ops = [mm.Op("QUANTIZE", ["x"], ["xq"])]
    for name, (k, s, pad, act) in POOLS.items():
        o = _out(k, s, pad)
        tensors += [mm.T(name + "q", (1, o, o, C), "INT8", None, [S], [Z]), mm.T(name, (1, o, o, C))]
        ops += [mm.Op("AVERAGE_POOL_2D", ["xq"], [name + "q"], "Pool2DOptions",
                      {"Padding": pad, "StrideW": s, "StrideH": s, "FilterWidth": k, "FilterHeight": k,
                       "FusedActivationFunction": act}),
                mm.Op("DEQUANTIZE", [name + "q"], [name])]
    shape = (1, HW, HW, C)
    for name, (axes, keep, (s, z)) in MEANS.items():
        out = [1 if i in axes else d for i, d in enumerate(shape)]
        out = out if keep else [d for i, d in enumerate(shape) if i not in axes]
        tensors += [mm.T(name + "_axes", (len(axes),), "INT32", np.array(axes)),
                    mm.T(name + "q", out, "INT8", None, [s], [z]), mm.T(name, out)]
        ops += [mm.Op("MEAN", ["xq", name + "_axes"], [name + "q"], "ReducerOptions", {"KeepDims": keep}),
                mm.Op("DEQUANTIZE", [name + "q"], [name])]
    return mm.build_model(tensors, ops, ["x"], [*POOLS, *MEANS])


def _codes(seed: int) -> np.ndarray:
    """Exact input codes. A narrow spread gives many exact ties: around code 0 the window sums take
    both signs (where TFLite's rule differs from half up), around code Z the real values do (so the
    fused RELU6 both clamps and passes)."""
    rng = np.random.default_rng(seed)
    spread, center = [(3, 0), (3, Z), (8, 0), (120, 0)][seed % 4]
    return np.clip(rng.integers(-spread, spread + 1, (1, HW, HW, C)) + center, -128, 127)


def _tflite_pool(q: np.ndarray, k: int, s: int, padding: int) -> tuple[np.ndarray, int]:
    """TFLite's reference int8 average pool (before the activation clamp); also counts exact ties."""
    o = _out(k, s, padding)
    p0 = max((o - 1) * s + k - HW, 0) // 2 if padding == mm.SAME else 0
    out = np.zeros((1, o, o, C), np.int64)
    ties = 0
    for oy in range(o):
        for ox in range(o):
            y0, x0 = oy * s - p0, ox * s - p0
            win = q[0, max(y0, 0):min(y0 + k, HW), max(x0, 0):min(x0 + k, HW)].astype(np.int64)
            n = win.shape[0] * win.shape[1]
            acc = win.sum(axis=(0, 1))
            out[0, oy, ox] = np.where(acc > 0, (acc + n // 2) // n, -((-acc + n // 2) // n))
            ties += int(np.sum(2 * (acc % n) == n))
    return out, ties


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8_avgpool")
    model = folder / "avgpool.tflite"
    model.write_bytes(avgpool_model())
    result = compile_model(CompileRequest(model=model))  # the model's own encodings
    files = write_outputs(result, folder / "out")
    return model.read_bytes(), files["binary"], result


def test_importer_marks_the_int8_pools_and_means(compiled):
    _, _, result = compiled
    pools = [op for op in result.quantized.ops() if op.kind == "AveragePool"]
    assert len(pools) == len(POOLS)
    assert all(op.attrs["rounding"] == "half_away_from_zero" for op in pools)
    means = sorted(op.attrs["rounding"] for op in result.quantized.ops() if op.kind == "ReduceMean")
    assert means == ["tflite_mean"] * 3 + ["tflite_mean_hw"] * 2


def _run_both(compiled, seed: int):
    model, binary, result = compiled
    q = _codes(seed)
    x = ((q - Z) * S).astype(np.float32)
    ref = litert(model, {"x": x})
    layouts = result.quantized.meta["io_layouts"]
    got = run_binary(binary, {"x": x.transpose(np.argsort(layouts["x"]["to_source"]))}, dequantize=False)
    got = {k: v.transpose(layouts[k]["to_source"]).astype(np.int64) for k, v in got.items()}
    return q, ref, got


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_average_pool_matches_litert_exactly(compiled, seed):
    q, ref, got = _run_both(compiled, seed)
    total_ties = 0
    for name, (k, s, pad, act) in POOLS.items():
        ref_codes = np.round(ref[name] / S).astype(np.int64) + Z
        expect, ties = _tflite_pool(q, k, s, pad)
        if act == mm.RELU6:
            expect = np.clip(expect, Z, Z + round(6 / S))
        total_ties += ties
        assert np.array_equal(ref_codes, expect), f"{name}: LiteRT is not TFLite's reference kernel"
        diff = np.abs(got[name] - ref_codes)
        assert diff.max() == 0, f"{name}: max {diff.max()} LSB, {np.mean(diff > 0):.1%} of outputs differ"
    if seed < 3:  # the narrow spreads really exercise the tie rule
        assert total_ties >= 20


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mean_matches_litert_exactly(compiled, seed):
    _, ref, got = _run_both(compiled, seed)
    for name, (_, _, (s, z)) in MEANS.items():
        ref_codes = np.round(ref[name] / s).astype(np.int64) + z
        diff = np.abs(got[name] - ref_codes)
        assert diff.max() == 0, f"{name}: max {diff.max()} LSB, {np.mean(diff > 0):.1%} of outputs differ"


def test_half_up_would_miss_the_ties():
    """Control: npuc's default rule on the same sums differs from TFLite on ties of negative codes."""
    q = _codes(0)
    expect, ties = _tflite_pool(q, 2, 2, mm.VALID)
    win = q[0, :8, :8].reshape(4, 2, 4, 2, C).astype(np.int64).sum(axis=(1, 3))
    half_up = np.floor(win / 4 + 0.5).astype(np.int64)
    assert ties > 0 and not np.array_equal(half_up, expect[0])
