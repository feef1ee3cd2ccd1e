"""The real PP-OCR models compiled int8 and a16_w16: simulator outputs identical to the reference executor."""
from __future__ import annotations

import importlib.resources

import numpy as np
import pytest

from npuc.backends.reference.emulation import quantize_for_emulation, run_float_passes
from npuc.frontends.onnx import load_onnx
from sim_helpers import assert_bit_exact

MODELS = importlib.resources.files("rapidocr_onnxruntime") / "models"
CLS = MODELS / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
DET = MODELS / "ch_PP-OCRv4_det_infer.onnx"


def _images(shape: tuple[int, ...], n: int, seed: int) -> list[np.ndarray]:
    """Text-like inputs: bright background, dark strokes, normalised like PP-OCR ((x/255 - 0.5) / 0.5)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.full(shape, 230.0) + rng.normal(0, 8, shape)
        h, w = shape[2], shape[3]
        for _ in range(max(4, w // 12)):
            y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
            img[..., y:y + rng.integers(2, max(3, h // 3)), x:x + rng.integers(1, 6)] = rng.uniform(0, 80)
        out.append(((np.clip(img, 0, 255) / 255.0 - 0.5) / 0.5).astype(np.float32))
    return out


def _check(path, shape, mode: str, n_calib: int, n_test: int) -> None:
    if not path.is_file():
        pytest.skip(f"{path.name} not installed (rapidocr_onnxruntime)")
    graph = load_onnx(str(path), {"x": shape})
    fp = run_float_passes(graph)
    images = _images(shape, n_calib + n_test, seed=11)
    q = quantize_for_emulation(fp, [{"x": a} for a in images[:n_calib]], precision_mode=mode)
    assert_bit_exact(q, [{"x": a} for a in images[n_calib:]])


@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
def test_ppocr_cls_identical(mode):
    _check(CLS, (1, 3, 48, 192), mode, n_calib=8, n_test=3)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
def test_ppocr_det_identical(mode):
    _check(DET, (1, 3, 640, 640), mode, n_calib=2, n_test=1)
