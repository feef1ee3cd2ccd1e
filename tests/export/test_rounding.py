"""The QDQ exporter's rounding choices (npuc.export.rounding): tie-break offsets and MAC weight scales."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from qdq_testing import run_onnx  # noqa: E402

import npuc.export.onnx_qdq as onnx_qdq  # noqa: E402
from npuc.backends.reference.quantized_executor import run_quantized  # noqa: E402
from npuc.export import export_qdq_onnx  # noqa: E402
from npuc.export.rounding import _q31_multipliers, mac_weight_scales, tie_offset  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402
from npuc.ir.quant_params import QuantParams  # noqa: E402

pytest.importorskip("onnxruntime")


def _binary_graph(kind: str, sa: float, sb: float, sy: float, zp: int = 101) -> Graph:
    """y = a <kind> b over every pair of uint8 codes (a: 256x1, b: 1x256)."""
    g = Graph(kind.lower())
    a = g.add_input("a", DType.UINT8, (256, 1))
    b = g.add_input("b", DType.UINT8, (1, 256))
    a.quant = QuantParams.per_tensor(sa, zp, 8, False)
    b.quant = QuantParams.per_tensor(sb, zp, 8, False)
    op = g.add_op(kind, [a, b], name="y")
    y = g.outputs_of(op)[0]
    y.quant = QuantParams.per_tensor(sy, zp, 8, False)
    g.outputs = [y]
    return g


def _codes() -> dict[str, np.ndarray]:
    q = np.arange(256, dtype=np.uint8)
    return {"a": q.reshape(256, 1), "b": q.reshape(1, 256)}


def _mismatches(g: Graph, model: onnx.ModelProto) -> int:
    npuc = run_quantized(g, _codes(), dequantize=False)["y"].astype(np.int64)
    s = float(g.outputs[0].quant.scale[0])
    z = int(g.outputs[0].quant.zero_point[0])
    got = np.rint(run_onnx(model, _codes())["y"].astype(np.float64) / s).astype(np.int64) + z
    return int(np.count_nonzero(got != npuc))


def test_add_of_equal_scales_gets_a_tie_break_and_then_agrees_on_every_pair(monkeypatch):
    # a + b with s_a = s_b = s, s_y = 2 s: every odd sum of codes is an exact tie k + 1/2
    g = _binary_graph("Add", 1.7939684101179534, 1.7939684101179534, 3.5879368202359068)
    op = g.ops()[0]
    assert tie_offset(g, op) > 0
    model = export_qdq_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    assert [n for n in model.graph.node if n.name == "y/tie_break" and n.op_type == "Add"]
    assert _mismatches(g, model) == 0
    monkeypatch.setattr(onnx_qdq, "tie_offset", lambda graph, op: 0.0)
    assert _mismatches(g, export_qdq_onnx(g)) > 10_000  # round half to even flips a quarter of the pairs


def test_ops_without_systematic_ties_get_no_extra_node():
    for kind, sa, sb, sy in (("Add", 0.0312, 0.0471, 0.0655), ("Mul", 0.0312, 0.0471, 0.391), ("Sub", 0.02, 0.03, 0.05)):
        g = _binary_graph(kind, sa, sb, sy)
        assert tie_offset(g, g.ops()[0]) == 0.0
        model = export_qdq_onnx(g)
        assert not [n for n in model.graph.node if n.name.endswith("/tie_break")]
        assert _mismatches(g, model) < 5


def test_conv_weight_scales_give_the_float32_multiplier_nearest_to_npucs():
    rng = np.random.default_rng(0)
    g = Graph("conv")
    x = g.add_input("x", DType.UINT8, (1, 8, 6, 6))
    x.quant = QuantParams.per_tensor(0.0183, 7, 8, False)
    w = g.add_const("w", rng.integers(-127, 128, (16, 8, 3, 3)).astype(np.int8))
    w.quant = QuantParams.per_channel(list(rng.uniform(0.001, 0.03, 16)), [0] * 16, 0)
    op = g.add_op("Conv", [x, w], {"pads": (1, 1, 1, 1)}, name="y")
    y = g.outputs_of(op)[0]
    y.dtype = DType.UINT8
    y.quant = QuantParams.per_tensor(0.1631, 109, 8, False)
    g.outputs = [y]
    base = onnx_qdq.float32_scale_below(w.quant.scale)
    tuned = mac_weight_scales(g, op, base)
    assert np.all(np.abs(tuned.view(np.int32) - base.view(np.int32)) <= 64)
    sx, sy = onnx_qdq.float32_scale_below(x.quant.scale)[0], onnx_qdq.float32_scale_below(y.quant.scale)[0]
    m32 = (sx * tuned) / sy  # what onnxruntime's QLinearConv multiplies the int32 accumulator by
    target = _q31_multipliers(g, op)
    err = np.abs(m32.astype(np.float64) - target)
    assert np.all(err <= np.abs((sx * base) / sy - target))
    assert np.all(err <= np.spacing(target.astype(np.float32)).astype(np.float64))  # within 1 ulp of m'
