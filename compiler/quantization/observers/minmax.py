"""True min/max observer (the default range algorithm)."""
from __future__ import annotations

import numpy as np

from npuc.quantization.observers.base import Observer, Range, as_rows


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
        rows = as_rows(x, self.axis, self.channels)
        if rows.shape[1] == 0:
            return
        lo, hi = rows.min(axis=1), rows.max(axis=1)
        self.channels = rows.shape[0]
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
