"""QDQ export of integer PRelu and bilinear Resize layers: the slope is an int16 (or the model's) initializer
behind a DequantizeLinear, the resize a float Resize between Q/DQ pairs; onnxruntime agrees with npuc's
integer kernels within 1 LSB (docs/numerics.md section 8)."""
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

from npuc.backends.reference.quantized_executor import run_quantized  # noqa: E402
from npuc.export import export_qdq_onnx  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402

pytest.importorskip("onnxruntime")


def _graph(coords: str) -> Graph:
    """Conv -> PRelu (per-channel slope, one negative) -> bilinear Resize x2."""
    rng = np.random.default_rng(0)
    g = Graph("prelu_resize")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8), layout="NCHW")
    w = g.add_const("w", rng.normal(size=(4, 3, 3, 3)).astype(np.float32))
    c = g.add_op("Conv", [x, w], {"pads": (1, 1, 1, 1)}, name="conv")
    slope = g.add_const("slope", np.array([0.25, -0.3, 0.01, 1.2], np.float32).reshape(4, 1, 1))
    p = g.add_op("PRelu", [g.outputs_of(c)[0], slope], name="prelu")
    r = g.add_op("Resize", g.outputs_of(p), {"size": (1, 4, 16, 16), "mode": "linear",
                                             "coordinate_transformation_mode": coords}, name="up")
    g.outputs = g.outputs_of(r)
    return g


@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
@pytest.mark.parametrize("coords", ["half_pixel", "align_corners", "asymmetric"])
def test_qdq_export_matches_integer_kernels(mode, coords):
    rng = np.random.default_rng(1)
    feeds = [{"x": (rng.normal(size=(1, 3, 8, 8)) * 2).astype(np.float32)} for _ in range(4)]
    q = quantize_graph(_graph(coords), feeds, precision_mode=mode)
    assert {op.kind for op in q.ops()} == {"Quantize", "Conv", "PRelu", "Resize"}  # no float16 layer
    model = export_qdq_onnx(q)
    onnx.checker.check_model(model, full_check=True)
    kinds = {n.op_type for n in model.graph.node}
    assert {"PRelu", "Resize", "QuantizeLinear", "DequantizeLinear"} <= kinds and "Cast" not in kinds
    (out,) = q.outputs
    differ = 0
    for f in feeds:
        ref = run_quantized(q, f, dequantize=False)[out.name].astype(np.int64)
        got = run_onnx(model, f)[out.name]
        codes = np.rint(got.astype(np.float64) / out.quant.scale[0]).astype(np.int64) + out.quant.zero_point[0]
        assert np.abs(codes - ref).max() <= 1
        differ += int(np.count_nonzero(codes != ref))
    # the resize's exact ties get a tie-break offset (export/rounding.py): what is left is rare
    assert differ <= 0.005 * len(feeds) * out.size, f"{differ} outputs differ"
