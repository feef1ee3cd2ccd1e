"""Exactly mergeable histogram on a power-of-two range, and the observer built on it.

Each row (the tensor, or one channel) has ``BINS = 2048`` bins over
``[-2**e, 2**e)``; bin ``k`` holds ``x`` with ``floor(x / w) == k - 1024`` where
``w = 2**(e - 10)``. ``e`` is the smallest exponent (>= MIN_EXPONENT) with
``max|x| < 2**e``; when data outgrows the range, ``e`` grows and bins merge:
old bin ``k`` goes to ``((k - 1024) >> d) + 1024``. Because power-of-two bins nest,
that equals binning the raw data at the new width, so observation order and
merging never change the counts: ``observe(A); observe(B) == merge(A, B) == observe(A ∪ B)``.

Speed: a batch costs numpy's SIMD min/max on the data as it is (float32
activations are never copied to float64) plus one numba binning pass
(`kernels.bin_rows`, the same float64 arithmetic as the numpy formulation);
re-binning of old counts happens only when a row's range grows.
"""
from __future__ import annotations

import abc

import numpy as np

from npuc.errors import QuantizationError
from npuc.quantization.observers import kernels
from npuc.quantization.observers.base import Observer, Range, channel_view

BINS = 2048
HALF = BINS // 2
#: log2 of the bin count's half: bin width is 2**(e - LOG_HALF).
LOG_HALF = 10
#: Smallest range exponent: an all-zero tensor gets [-2**-40, 2**-40).
MIN_EXPONENT = -40

_OFFSETS = np.arange(BINS, dtype=np.int64) - HALF
assert (kernels._BINS, kernels._HALF, kernels._LOG_HALF) == (BINS, HALF, LOG_HALF)


def _kernel_input(x: np.ndarray) -> np.ndarray:
    """float32/float64 data as the kernels read it (a converted copy only for other dtypes)."""
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float64)
    return x


class Histogram:
    """Per-row power-of-two histograms with exact counts, min, max and totals."""

    def __init__(self, rows: int) -> None:
        self.counts = np.zeros((rows, BINS), dtype=np.int64)
        self.exponent = np.full(rows, MIN_EXPONENT, dtype=np.int64)
        self.min = np.full(rows, np.inf)
        self.max = np.full(rows, -np.inf)
        self.total = np.zeros(rows, dtype=np.int64)

    @property
    def rows(self) -> int:
        return self.counts.shape[0]

    def bin_width(self) -> np.ndarray:
        """Bin width per row (float64)."""
        return np.ldexp(1.0, self.exponent - LOG_HALF)

    def edges(self) -> np.ndarray:
        """(rows, BINS + 1) bin edges."""
        k = np.arange(BINS + 1, dtype=np.float64) - HALF
        return k[None, :] * self.bin_width()[:, None]

    def row_edges(self, row: int) -> np.ndarray:
        """(BINS + 1,) bin edges of one row: ``edges()[row]`` without computing every row's."""
        k = np.arange(BINS + 1, dtype=np.float64) - HALF
        return k * np.ldexp(1.0, int(self.exponent[row]) - LOG_HALF)

    def _grow(self, exponent: np.ndarray) -> None:
        d = exponent - self.exponent
        if not np.any(d > 0):
            return
        d = np.minimum(d, 62)
        dest = (np.right_shift(_OFFSETS[None, :], d[:, None]) + HALF
                + (np.arange(self.rows, dtype=np.int64) * BINS)[:, None])
        # Counts are below 2**53, so the float64 weighted bincount is exact.
        merged = np.bincount(dest.ravel(), weights=self.counts.ravel().astype(np.float64),
                             minlength=self.rows * BINS)
        self.counts = np.rint(merged).astype(np.int64).reshape(self.rows, BINS)
        self.exponent = np.maximum(self.exponent, exponent)

    def add(self, rows: np.ndarray) -> None:
        """Bin a (rows, n) array (float32 or float64; other dtypes are converted to float64)."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[0] != self.rows:
            raise QuantizationError(f"histogram has {self.rows} rows, data has shape {rows.shape}")
        self.add_view(rows[None])

    def add_view(self, x: np.ndarray) -> None:
        """Bin a (pre, rows, post) array: row ``r`` is ``x[:, r, :]`` (see `channel_view`).

        min/max by numpy reductions on the data as it is (NaN propagates, so they
        are the finiteness check), then one numba binning pass; no converted copy.
        Raises on NaN or infinity before changing anything.
        """
        if x.shape[1] != self.rows:
            raise QuantizationError(f"histogram has {self.rows} rows, data has {x.shape[1]}")
        if x.shape[0] * x.shape[2] == 0:
            return
        x = _kernel_input(x)
        lo = x.min(axis=(0, 2)).astype(np.float64)
        hi = x.max(axis=(0, 2)).astype(np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise QuantizationError("observed data contains NaN or infinity")
        _, needed = np.frexp(np.maximum(-lo, hi))  # max|x| < 2**needed, the smallest such exponent
        self._grow(np.maximum(self.exponent, np.maximum(needed.astype(np.int64), MIN_EXPONENT)))
        kernels.bin_rows(x, self.exponent, self.counts)
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        self.total += x.shape[0] * x.shape[2]

    def merge(self, other: "Histogram") -> None:
        """Add another histogram's counts (both grown to the larger range first)."""
        if other.rows != self.rows:
            raise QuantizationError(f"cannot merge histograms of {self.rows} and {other.rows} rows")
        target = np.maximum(self.exponent, other.exponent)
        theirs = other.copy()
        theirs._grow(target)
        self._grow(target)
        self.counts += theirs.counts
        self.min = np.minimum(self.min, other.min)
        self.max = np.maximum(self.max, other.max)
        self.total += other.total

    def copy(self) -> "Histogram":
        new = Histogram.__new__(Histogram)
        new.counts, new.exponent = self.counts.copy(), self.exponent.copy()
        new.min, new.max, new.total = self.min.copy(), self.max.copy(), self.total.copy()
        return new

    def equals(self, other: "Histogram") -> bool:
        """Exact equality of every count, exponent, min, max and total."""
        return (np.array_equal(self.counts, other.counts) and np.array_equal(self.exponent, other.exponent)
                and np.array_equal(self.min, other.min) and np.array_equal(self.max, other.max)
                and np.array_equal(self.total, other.total))

    def folded(self, row: int) -> np.ndarray:
        """Counts of |x| for one row: bin k covers |x| in [k w, (k+1) w), k in [0, 1024)."""
        c = self.counts[row]
        return c[HALF:] + c[HALF - 1::-1]


class HistogramObserver(Observer):
    """Base of the observers whose range comes from the histogram (percentile, mse, kl)."""

    def __init__(self, axis: int | None = None) -> None:
        super().__init__(axis)
        self.hist: Histogram | None = None

    @property
    def empty(self) -> bool:
        return self.hist is None or not np.all(self.hist.total > 0)

    def observe(self, x: np.ndarray) -> None:
        view = channel_view(x, self.axis, self.channels)
        if self.hist is None:
            self.hist = Histogram(view.shape[1])
        self.hist.add_view(view)
        self.channels = view.shape[1]

    def merge(self, other: "HistogramObserver") -> "HistogramObserver":
        self._check_mergeable(other)
        if self._config() != other._config():
            raise QuantizationError(f"cannot merge {type(self).__name__} observers with different settings")
        if other.hist is None:
            return self
        if self.hist is None:
            self.hist, self.channels = other.hist.copy(), other.channels
        else:
            self.hist.merge(other.hist)
        return self

    def _config(self) -> tuple:
        return ()

    def range(self, bits: int = 8, signed: bool = False, symmetric: bool = False) -> Range:
        self._check_not_empty()
        lo = np.empty(self.hist.rows)
        hi = np.empty(self.hist.rows)
        for r in range(self.hist.rows):  # per channel; each row's search is vectorised
            lo[r], hi[r] = self._row_range(r, bits, signed, symmetric)
        return self._shape_result(lo, hi)

    @abc.abstractmethod
    def _row_range(self, row: int, bits: int, signed: bool, symmetric: bool) -> tuple[float, float]:
        """The chosen clipping range of one row."""
