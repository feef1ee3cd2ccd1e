"""Seeded evaluation and calibration data for the PP-OCR accuracy benchmark.

Everything is rendered by tests/data_gen/text_images.py (pillow + the DejaVu
fonts in matplotlib's wheel); nothing is downloaded. Calibration and
evaluation items come from generators with different seeds, so no evaluation
image is ever seen by calibration.

Preprocessing follows rapidocr_onnxruntime (the package the models come from),
which decodes images with OpenCV, i.e. in BGR channel order:

* cls: resize to height 48 keeping the aspect ratio (width at most 192),
  (x / 255 - 0.5) / 0.5, zero padding on the right up to 192
  (PaddleOCR's ``resize_norm_img``);
* det: the pages are 640x640 already (a multiple of 32, so rapidocr's resize is
  the identity at this size), (x / 255 - mean) / std with rapidocr's
  configured mean = std = 0.5 (its ``config.yaml``, Det section).

Calibration sets are written (into a folder the caller owns) as stacked ``.npy`` arrays of model-ready
tensors (N, 3, H, W); npuc reads them as N items and onnxruntime's
calibration data reader yields the very same arrays.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "data_gen"))
from text_images import HardTextPageGenerator, TextLineGenerator  # noqa: E402

#: generator seeds: calibration and evaluation never share a seed
CLS_CALIB_SEED, CLS_EVAL_SEED = 1001, 2002
DET_CALIB_SEED, DET_EVAL_SEED = 3003, 4004
CALIB_ITEMS = 64

CLS_SHAPE = (1, 3, 48, 192)
DET_SHAPE = (1, 3, 640, 640)
DET_MEAN = (0.5, 0.5, 0.5)  # rapidocr config.yaml, Det: mean / std (BGR order, as cv2 decodes)
DET_STD = (0.5, 0.5, 0.5)


def _bgr(image: Image.Image) -> np.ndarray:
    """HWC uint8 BGR, as rapidocr's cv2-based loader gives."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def cls_preprocess(image: Image.Image) -> np.ndarray:
    """PaddleOCR cls preprocessing of one text line -> (1, 3, 48, 192) float32."""
    _, c, h, w = CLS_SHAPE
    ratio = image.width / image.height
    resized_w = min(w, int(math.ceil(h * ratio)))
    resized = image.convert("RGB").resize((resized_w, h), Image.Resampling.BILINEAR)
    x = _bgr(resized).astype(np.float32).transpose(2, 0, 1) / 255.0
    x = (x - 0.5) / 0.5
    out = np.zeros((1, c, h, w), dtype=np.float32)
    out[0, :, :, :resized_w] = x
    return out


def det_preprocess(image: Image.Image) -> np.ndarray:
    """rapidocr det preprocessing of one 640x640 page -> (1, 3, 640, 640) float32."""
    _, _, h, w = DET_SHAPE
    if image.size != (w, h):
        raise ValueError(f"pages must be {w}x{h}, got {image.size}")
    x = _bgr(image).astype(np.float32) / 255.0
    x = (x - np.array(DET_MEAN, np.float32)) / np.array(DET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


@dataclass(frozen=True)
class ClsItem:
    x: np.ndarray  # (1, 3, 48, 192)
    label: int  # 0 upright, 1 rotated by 180 degrees


@dataclass(frozen=True)
class DetItem:
    x: np.ndarray  # (1, 3, 640, 640)
    boxes: tuple[tuple[int, int, int, int], ...]  # ground-truth line boxes (x0, y0, x1, y1)


def cls_eval_items(count: int) -> list[ClsItem]:
    """`count` evaluation lines, half of them (seeded) rotated by 180 degrees."""
    gen = TextLineGenerator(seed=CLS_EVAL_SEED, rotate_fraction=0.5)
    return [ClsItem(cls_preprocess(line.image), line.label) for line in map(gen.sample, range(count))]


def det_eval_items(count: int) -> list[DetItem]:
    """`count` evaluation pages with their ground-truth text-line boxes."""
    gen = HardTextPageGenerator(seed=DET_EVAL_SEED, width=DET_SHAPE[3], height=DET_SHAPE[2])
    out = []
    for i in range(count):
        page, boxes = gen.sample_with_boxes(i)
        out.append(DetItem(det_preprocess(page), tuple(boxes)))
    return out


def cls_calibration(folder: Path, count: int = CALIB_ITEMS) -> Path:
    """Write the calibration lines (half rotated, like real inputs) as one (count, 3, 48, 192) .npy stack."""
    gen = TextLineGenerator(seed=CLS_CALIB_SEED, rotate_fraction=0.5)
    path = Path(folder) / "cls_calibration.npy"
    np.save(path, np.concatenate([cls_preprocess(gen.sample(i).image) for i in range(count)]))
    return path


def det_calibration(folder: Path, count: int = CALIB_ITEMS) -> Path:
    """Write the calibration pages as one (count, 3, 640, 640) .npy stack."""
    gen = HardTextPageGenerator(seed=DET_CALIB_SEED, width=DET_SHAPE[3], height=DET_SHAPE[2])
    path = Path(folder) / "det_calibration.npy"
    np.save(path, np.concatenate([det_preprocess(gen.sample(i)) for i in range(count)]))
    return path
