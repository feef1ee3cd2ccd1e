"""Helpers shared by several test folders (tests/conftest.py puts this folder on sys.path)."""
from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from npuc.analysis.snr import snr_db as _snr_db


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10*log10(sum ref^2 / sum (ref - test)^2) in dB, by npuc.analysis.snr.snr_db; inf when identical."""
    ref = np.asarray(ref, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2))
    db = _snr_db(float(np.sum(ref ** 2)), noise)
    return float("inf") if db is None else db


def ppocr_model(name: str) -> Path:
    """Path of a PP-OCR model shipped in the rapidocr_onnxruntime wheel (it may not exist: callers skip)."""
    return Path(str(importlib.resources.files("rapidocr_onnxruntime") / "models" / name))
