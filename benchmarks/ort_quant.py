"""onnxruntime's static quantization as the baseline npuc is compared with (benchmarks/calibration.py, accuracy/run.py).

QDQ format, per-channel int8 weights, uint8 activations (onnxruntime's
defaults), calibrated on exactly the arrays npuc calibrates on (a stacked
``(N, ...)`` array, one item per row, fed at batch 1).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

onnxruntime.set_default_logger_severity(3)  # its graph clean-up warnings drown the benchmark output
METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}


class StackReader(CalibrationDataReader):
    """Feeds the rows of a stacked array, one item (batch 1) at a time."""

    def __init__(self, input_name: str, stack: np.ndarray) -> None:
        self.input_name, self.stack, self.index = input_name, stack, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.index >= len(self.stack):
            return None
        item = np.ascontiguousarray(self.stack[self.index: self.index + 1], dtype=np.float32)
        self.index += 1
        return {self.input_name: item}

    def rewind(self) -> None:
        self.index = 0


def ort_quantize(model: Path, out: Path, input_name: str, stack: np.ndarray, method: str) -> Path:
    """quantize_static(QDQ, per-channel) of `model` into `out`; method 'minmax' or 'entropy'."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its per-weight advice ("consider pre-processing") goes to the root logger
    try:
        _quantize(model, out, input_name, stack, method)
    finally:
        root.setLevel(level)
    return out


def _quantize(model: Path, out: Path, input_name: str, stack: np.ndarray, method: str) -> None:
    quantize_static(
        str(model), str(out), StackReader(input_name, stack),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=METHODS[method],
        # entropy keeps every intermediate output until it builds its histograms: flush every 4 items
        # (16 items of the 640x640 det model took > 23 GB and were OOM-killed); not for minmax:
        # onnxruntime 1.32 then fails with "No data is collected" when the flush size divides N
        extra_options={"CalibMaxIntermediateOutputs": 4} if method == "entropy" else {},
    )
