"""Calibration data and statistics: datasets, preprocessing, input normalization, encodings overrides.

- dataset: `open_calibration_set(spec, graph, preprocessing) -> CalibrationSet` (streamed, lazily decoded)
- preprocess: `Preprocessing` (letterbox resize, channel order, layout, mean/std)
- normalization: `insert_normalization(graph, mean, std)` folds the script's normalization into the model
- statistics: observers fed by the float executor (`collect_statistics`, `StatisticsCollector`)
- encodings: AIMET/SNPE JSON encodings, `apply_encodings` (import as fixed encodings) and `export_encodings`
"""
from __future__ import annotations

from npuc.calibration.dataset import CalibrationSet, InputSpec, ItemRef, open_calibration_set, resolve_files
from npuc.calibration.encodings import apply_encodings, export_encodings, read_encodings
from npuc.calibration.normalization import insert_normalization
from npuc.calibration.preprocess import Preprocessing

__all__ = [
    "CalibrationSet", "InputSpec", "ItemRef", "Preprocessing", "apply_encodings", "export_encodings",
    "insert_normalization", "open_calibration_set", "read_encodings", "resolve_files",
]
