"""End to end on a real model: PP-OCR direction classifier calibrated on rendered text lines."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data_gen"))
from text_images import write_lines  # noqa: E402

from npuc.calibration import Preprocessing, insert_normalization  # noqa: E402
from npuc.calibration.statistics import OBSERVER, observed_tensors  # noqa: E402
from npuc.passes.base import PassContext  # noqa: E402
from npuc.passes.calibrate import Calibrate  # noqa: E402
from npuc.passes.manager import PassManager  # noqa: E402
from npuc_testing import ppocr_model  # noqa: E402

onnx_frontend = pytest.importorskip("npuc.frontends.onnx")


def cls_model_path() -> Path:
    try:
        return ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")
    except ModuleNotFoundError:
        pytest.skip("rapidocr_onnxruntime is not installed")


@pytest.mark.slow
def test_pp_ocr_cls_calibrates_on_text_lines(tmp_path):
    graph = onnx_frontend.load_onnx(str(cls_model_path()), input_shapes={"x": (1, 3, 48, 192)})
    insert_normalization(graph, [127.5] * 3, [127.5] * 3)  # PaddleOCR cls: (x / 255 - 0.5) / 0.5
    write_lines(tmp_path, 24, seed=1)
    ctx = PassContext(state={"calibration_set": str(tmp_path),
                             "preprocessing": Preprocessing(channel_order="BGR", align="topleft")})
    res = PassManager([Calibrate(method="percentile", percentile=99.9, calibset_size=12)]).run(graph, ctx)
    assert res.records[0].result.stats["items"] == 12
    observed = observed_tensors(graph)
    assert len(observed) > 50 and all(OBSERVER in t.meta for t in observed)
    assert graph.tensor("x").meta[OBSERVER].range() == pytest.approx((0.0, 255.0), abs=1.0)
    lo, hi = graph.outputs[0].meta[OBSERVER].range()
    assert 0.0 <= lo <= hi <= 1.0  # softmax probabilities
