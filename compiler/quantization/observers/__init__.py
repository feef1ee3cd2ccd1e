"""Streaming, mergeable range observers and the factory used by calibration."""
from __future__ import annotations

from npuc.errors import QuantizationError
from npuc.quantization.observers.base import Observer, Range
from npuc.quantization.observers.histogram import Histogram, HistogramObserver
from npuc.quantization.observers.kl import KLObserver
from npuc.quantization.observers.minmax import MinMaxObserver
from npuc.quantization.observers.mse import MSEObserver
from npuc.quantization.observers.percentile import PercentileObserver

#: Range algorithm names accepted by `make_observer` (and the script's calibration(method=...)).
METHODS = ("minmax", "percentile", "mse", "kl")


def make_observer(method: str = "minmax", axis: int | None = None, percentile: float = 99.99) -> Observer:
    """A fresh observer for a range algorithm: 'minmax', 'percentile', 'mse' or 'kl'."""
    if method == "minmax":
        return MinMaxObserver(axis)
    if method == "percentile":
        return PercentileObserver(percentile, axis)
    if method == "mse":
        return MSEObserver(axis)
    if method == "kl":
        return KLObserver(axis)
    raise QuantizationError(f"unknown range algorithm '{method}' (use one of {', '.join(METHODS)})")


__all__ = ["METHODS", "Histogram", "HistogramObserver", "KLObserver", "MSEObserver", "MinMaxObserver",
           "Observer", "PercentileObserver", "Range", "make_observer"]
