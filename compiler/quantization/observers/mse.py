"""MSE range search (SNPE's "enhanced" quantizer): the clipping range with the lowest
expected quantization error, rounding noise plus clipping error, over the histogram."""
from __future__ import annotations

import numpy as np

from npuc.quantization.observers.histogram import HistogramObserver

#: Candidate clipping fractions per side (1/K, 2/K, ..., 1).
CANDIDATES = 128


def _clip_terms(centers: np.ndarray, counts: np.ndarray, bounds: np.ndarray,
                below: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per bound: summed squared clipping error and count of values clipped on one side."""
    dist = (bounds[:, None] - centers[None, :]) if below else (centers[None, :] - bounds[:, None])
    outside = dist > 0.0
    w = counts.astype(np.float64)
    return np.where(outside, dist * dist, 0.0) @ w, outside @ w


def expected_error(centers: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   levels: int) -> np.ndarray:
    """Expected squared error for every pair (lo[i], hi[j]): a (len(lo), len(hi)) array.

    A value inside the range costs ``step**2 / 12`` (uniform rounding noise,
    ``step = (hi - lo) / (levels - 1)``); a value outside costs its squared distance
    to the range. Values are the histogram bin centres weighted by their counts.
    """
    total = float(counts.sum())
    err_lo, n_lo = _clip_terms(centers, counts, lo, below=True)
    err_hi, n_hi = _clip_terms(centers, counts, hi, below=False)
    inside = total - n_lo[:, None] - n_hi[None, :]
    step = (hi[None, :] - lo[:, None]) / float(levels - 1)
    return (err_lo[:, None] + err_hi[None, :] + inside * step * step / 12.0) / total


class MSEObserver(HistogramObserver):
    """Searches clipping ranges ``[f_lo * min, f_hi * max]`` on a grid of fractions.

    Symmetric: one threshold ``t = f * max|x|`` over ``2 * (2**(bits-1) - 1)`` steps.
    Asymmetric: every pair (f_lo, f_hi) over ``2**bits - 1`` steps. Ties keep the wider range.
    """

    def _row_range(self, row: int, bits: int, signed: bool, symmetric: bool) -> tuple[float, float]:
        h = self.hist
        counts = h.counts[row]
        nz = np.flatnonzero(counts)
        edges = h.row_edges(row)  # one row: edges() of every row per row was O(rows**2)
        centers = 0.5 * (edges[nz] + edges[nz + 1])
        weights = counts[nz]
        lo_obs, hi_obs = float(h.min[row]), float(h.max[row])
        fr = np.arange(CANDIDATES, 0, -1, dtype=np.float64) / CANDIDATES  # 1.0 first: ties keep the full range
        if symmetric:
            t = fr * max(-lo_obs, hi_obs)
            half_levels = (1 << (bits - 1)) - 1
            err = np.diagonal(expected_error(centers, weights, -t, t, 2 * half_levels + 1))
            best = float(t[int(np.argmin(err))])
            return max(lo_obs, -best), min(hi_obs, best)
        lo = min(lo_obs, 0.0) * fr
        hi = max(hi_obs, 0.0) * fr
        err = expected_error(centers, weights, lo, hi, 1 << bits)
        i, j = np.unravel_index(int(np.argmin(err)), err.shape)
        return max(lo_obs, float(lo[i])), min(hi_obs, float(hi[j]))
