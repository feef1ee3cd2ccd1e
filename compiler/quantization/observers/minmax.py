"""True min/max observer (the default range algorithm)."""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError
from npuc.quantization.observers.base import Observer, Range, channel_view


class MinMaxObserver(Observer):
    """Running minimum and maximum, per tensor or per channel."""

    def __init__(self, axis: int | None = None) -> None:
        super().__init__(axis)
        self.min: np.ndarray | None = None
        self.max: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return self.min is None

    def observe(self, x: np.ndarray) -> None:
        view = channel_view(x, self.axis, self.channels)
        if view.shape[0] * view.shape[2] == 0:
            return
        if view.dtype != np.float32 and view.dtype != np.float64:
            view = view.astype(np.float64)
        # SIMD reductions on the data as it is (no float64 copy); NaN propagates into them
        lo = view.min(axis=(0, 2)).astype(np.float64)
        hi = view.max(axis=(0, 2)).astype(np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise QuantizationError("observed data contains NaN or infinity")
        self.channels = view.shape[1]
        if self.min is None:
            self.min, self.max = lo, hi
        else:
            self.min, self.max = np.minimum(self.min, lo), np.maximum(self.max, hi)

    def merge(self, other: "MinMaxObserver") -> "MinMaxObserver":
        self._check_mergeable(other)
        if other.min is None:
            return self
        if self.min is None:
            self.min, self.max, self.channels = other.min.copy(), other.max.copy(), other.channels
        else:
            self.min, self.max = np.minimum(self.min, other.min), np.maximum(self.max, other.max)
        return self

    def range(self, bits: int = 8, signed: bool = False, symmetric: bool = False) -> Range:
        """Observed (min, max); bits/signed/symmetric do not change it."""
        self._check_not_empty()
        return self._shape_result(self.min.copy(), self.max.copy())
