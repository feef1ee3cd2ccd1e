"""PP-OCR text-direction classifier (ch_ppocr_mobile_v2.0_cls): accuracy on rendered lines, half rotated 180 deg."""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Sequence

import numpy as np

import data

NAME = "cls"
MODEL = Path(str(importlib.resources.files("rapidocr_onnxruntime") / "models" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"))
INPUT = "x"
SHAPE = data.CLS_SHAPE
METRIC = "accuracy %"
#: items evaluated: full run / --quick
ITEMS, QUICK_ITEMS = 400, 100
HEAD_KINDS = ("MatMul", "Gemm")


def eval_items(count: int) -> list[data.ClsItem]:
    return data.cls_eval_items(count)


def calibration(folder: Path, count: int) -> Path:
    return data.cls_calibration(folder, count)


def head_layers(ops: Sequence) -> list[str]:
    """The classifier head: the first fully connected layer and everything after it."""
    first = next(i for i, op in enumerate(ops) if op.kind in HEAD_KINDS)
    return [op.name for op in ops[first:]]


def score(outputs: Sequence[np.ndarray], items: Sequence[data.ClsItem]) -> dict[str, float]:
    """Accuracy (%) of argmax over the [0 deg, 180 deg] softmax against the rendered labels."""
    predicted = np.array([int(np.argmax(np.asarray(o).reshape(-1)[:2])) for o in outputs])
    labels = np.array([item.label for item in items])
    correct = (predicted == labels).astype(int)
    return {"accuracy %": 100.0 * float(np.mean(correct)), "per_item": [[int(c), 1] for c in correct]}


def metric_from_counts(counts: np.ndarray) -> np.ndarray:
    """Accuracy (%) from per-item counts [correct, 1] summed over the last-but-one axis: (..., 2) -> (...)."""
    return 100.0 * counts[..., 0] / np.maximum(counts[..., 1], 1)
