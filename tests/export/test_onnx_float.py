"""`npuc compile --export-onnx/--export-onnx-float`, the float exporter, and exporter errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from qdq_testing import pixels, run_onnx  # noqa: E402

from npuc.export import ExportError, export_float_onnx, export_qdq_onnx  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402

pytest.importorskip("onnxruntime")
CLS = Path(__file__).parents[2] / "examples" / "ppocr_cls"


def _small_float_graph() -> Graph:
    """Conv (fused clip) -> ConvTranspose -> Resize -> Concat -> AveragePool -> SiLU -> Gemm (fused relu)."""
    rng = np.random.default_rng(0)
    g = Graph("small")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8), layout="NCHW")
    w = g.add_const("w", rng.normal(size=(4, 3, 3, 3)).astype(np.float32))
    b = g.add_const("b", rng.normal(size=4).astype(np.float32))
    c = g.add_op("Conv", [x, w, b], {"pads": (1, 1, 1, 1), "activation": "clip", "clip_min": 0.0, "clip_max": 6.0})
    wt = g.add_const("wt", rng.normal(size=(4, 2, 2, 2)).astype(np.float32))
    t = g.add_op("ConvTranspose", [g.outputs_of(c)[0], wt], {"strides": (2, 2)})
    r = g.add_op("Resize", [g.outputs_of(c)[0]], {"size": (1, 4, 16, 16), "mode": "nearest",
                                                  "coordinate_transformation_mode": "asymmetric",
                                                  "nearest_mode": "floor"})
    cat = g.add_op("Concat", [g.outputs_of(t)[0], g.outputs_of(r)[0]], {"axis": 1})
    p = g.add_op("AveragePool", [g.outputs_of(cat)[0]], {"kernel": (4, 4), "strides": (4, 4)})
    s = g.add_op("SiLU", [g.outputs_of(p)[0]])
    f = g.add_op("Reshape", [g.outputs_of(s)[0]], {"shape": (1, 96)})
    wf = g.add_const("wf", rng.normal(size=(5, 96)).astype(np.float32))
    y = g.add_op("Gemm", [g.outputs_of(f)[0], wf], {"activation": "relu"}, name="y")
    g.outputs = [g.outputs_of(y)[0]]
    return g


def test_float_export_matches_the_reference_executor():
    from npuc.backends.reference.executor import run_graph

    g = _small_float_graph()
    model = export_float_onnx(g)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    ref = run_graph(g, {"x": x})["y"]
    got = run_onnx(model, {"x": x})["y"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    kinds = {n.op_type for n in model.graph.node}
    assert {"Conv", "Clip", "ConvTranspose", "Resize", "Concat", "AveragePool", "Sigmoid", "Mul", "Gemm",
            "Relu"} <= kinds


def test_unsupported_kinds_are_listed_at_once():
    g = _small_float_graph()
    x = g.outputs[0]
    q = g.add_op("Quantize", [x], {"to": DType.INT8})
    g.outputs = [g.outputs_of(q)[0]]
    with pytest.raises(ExportError, match="Quantize"):
        export_float_onnx(g)
    with pytest.raises(ExportError, match="no quantization parameters"):
        export_qdq_onnx(g)


def test_compile_flags_write_both_onnx_files(tmp_path):
    from npuc.cli import main

    qdq, flt = tmp_path / "m.qdq.onnx", tmp_path / "onnx" / "m.float.onnx"
    code = main(["compile", str(CLS / "model.onnx"), "-s", str(CLS / "model.alls"),
                 "--calib", str(CLS / "calib" / "*.png"), "--letterbox", "topleft",
                 "-o", str(tmp_path / "out"), "--table", "0", "--export-onnx", str(qdq),
                 "--export-onnx-float", str(flt)])
    assert code == 0
    for path in (qdq, flt):
        onnx.checker.check_model(onnx.load(path), full_check=True)
    # a real text line: on random noise the int8 model itself is 0.12 away from the float one
    x = pixels(sorted(CLS.glob("calib/*.png"))[0], (1, 3, 48, 192))
    (p_float,) = run_onnx(onnx.load(flt), {"x": x}).values()
    (p_qdq,) = run_onnx(onnx.load(qdq), {"x": x}).values()
    assert p_float.shape == p_qdq.shape == (1, 2)
    np.testing.assert_allclose(p_float.sum(), 1.0, atol=1e-4)
    assert np.abs(p_float - p_qdq).max() < 0.1
