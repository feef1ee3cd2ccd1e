"""Percentile range: clip the (100 - p)% most extreme values."""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError
from npuc.quantization.observers.histogram import HALF, HistogramObserver


def _quantile(counts: np.ndarray, edges: np.ndarray, fraction: float) -> float:
    """Value below which `fraction` of the counts lie, interpolating linearly inside a bin."""
    cum = np.cumsum(counts)
    target = fraction * float(cum[-1])
    k = int(np.searchsorted(cum, target, side="left"))
    k = min(k, counts.size - 1)
    before = float(cum[k - 1]) if k > 0 else 0.0
    inside = float(counts[k])
    t = (target - before) / inside if inside > 0 else 1.0
    return float(edges[k] + np.clip(t, 0.0, 1.0) * (edges[k + 1] - edges[k]))


class PercentileObserver(HistogramObserver):
    """Range between the (100-p)th and p-th percentiles (of |x| when symmetric)."""

    def __init__(self, percentile: float = 99.99, axis: int | None = None) -> None:
        super().__init__(axis)
        if not 50.0 < percentile <= 100.0:
            raise QuantizationError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = float(percentile)

    def _config(self) -> tuple:
        return (self.percentile,)

    def _row_range(self, row: int, bits: int, signed: bool, symmetric: bool) -> tuple[float, float]:
        h = self.hist
        lo_obs, hi_obs = float(h.min[row]), float(h.max[row])
        p = self.percentile / 100.0
        edges = h.row_edges(row)  # one row: edges() of every row per row was O(rows**2)
        if symmetric:
            t = _quantile(h.folded(row), edges[HALF:], p)
            return max(lo_obs, -t), min(hi_obs, t)
        lo = _quantile(h.counts[row], edges, 1.0 - p)
        hi = _quantile(h.counts[row], edges, p)
        return max(lo_obs, lo), min(hi_obs, hi)
