"""The executor on the real PP-OCR models (shipped in the rapidocr_onnxruntime wheel) against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from npuc.backends.reference.executor import Executor
from npuc_testing import ppocr_model

load_onnx = pytest.importorskip("npuc.frontends.onnx").load_onnx


def _model(name: str) -> str:
    return str(ppocr_model(name))


def _compare(name: str, shape: tuple[int, ...]) -> None:
    path = _model(name)
    graph = load_onnx(path, input_shapes={"x": shape})
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    got = Executor(graph).run({"x": x})
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert len(got) == len(want)
    for g, w in zip(got.values(), want):
        assert g.shape == w.shape
        assert float(np.max(np.abs(g - w))) <= 1e-4 * max(1.0, float(np.ptp(w)))


def test_cls_model_matches_onnxruntime():
    _compare("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192))


@pytest.mark.slow
def test_det_model_matches_onnxruntime_at_640():
    _compare("ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640))
