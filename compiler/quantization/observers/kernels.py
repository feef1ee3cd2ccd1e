"""numba kernels of the observers: one pass over an activation, no float64 copies.

The data is viewed as ``(pre, rows, post)`` (`channel_view`): row ``r`` is
``x[:, r, :]``; per tensor it is ``(1, 1, size)``. float32 and float64 are read
as they are (each value is widened to float64 in a register, exactly as
``astype(float64)`` would), so a kernel never materialises a converted copy.

`bin_rows` computes exactly what the numpy formulation of docs/numerics.md
section 12 computes: bin ``floor(x * 2**(10 - e)) + 1024`` in float64 (the
product by a power of two is exact for every float32/float64 value in range).
It bins each row in place at the row's current exponent while it tracks the
row's min and max; a value outside ``[-2**e, 2**e)`` (or a NaN) is not binned
and only flags the row. A flagged row's partial counts are taken back by
re-running the same binning with -1 (so the counts are bit-for-bit those
before the call) and the row is reported for growth; the caller grows the
histogram and bins those rows again. Only the first batches of a tensor grow
its range, so later batches cost one pass.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Must equal histogram.BINS / HALF / LOG_HALF (asserted there).
_BINS = 2048
_HALF = 1024
_LOG_HALF = 10


@njit(cache=True, nogil=True)
def minmax_rows(x, lo, hi):
    """Per-row min and max of a (pre, rows, post) array into lo/hi; False if a value is NaN or infinite."""
    pre, rows, post = x.shape
    finite = True
    for r in range(rows):
        mn = np.inf
        mx = -np.inf
        nan = False
        for p in range(pre):
            for i in range(post):
                v = x[p, r, i]
                if v < mn:
                    mn = v
                if v > mx:
                    mx = v
                if v != v:
                    nan = True
        lo[r] = mn
        hi[r] = mx
        if nan or mn == -np.inf or mx == np.inf:
            finite = False
    return finite


@njit(cache=True, nogil=True)
def _bin_row(x, r, scale, counts, sign):
    """Add `sign` to the bin of every in-range value of row r; returns True if a value was out of range or NaN."""
    pre, rows, post = x.shape
    out = False
    for p in range(pre):
        for i in range(post):
            s = math.floor(np.float64(x[p, r, i]) * scale)
            if s >= -_HALF and s < _HALF:  # False for NaN as well
                counts[r, int(s) + _HALF] += sign
            else:
                out = True
    return out


@njit(cache=True, nogil=True)
def bin_rows(x, exponent, counts, lo, hi, grow):
    """Bin every row of a (pre, rows, post) array into counts (rows, BINS) at its current exponent.

    Fills lo/hi with each row's min/max. A row whose data does not fit gets
    grow[r] = the smallest exponent >= exponent[r] that fits it, and its counts are
    left as they were; other rows get grow[r] = exponent[r]. Returns -1, or the
    index of the first row holding a NaN or an infinity, after restoring every
    row's counts (the call then changed nothing).
    """
    pre, rows, post = x.shape
    for r in range(rows):
        e = exponent[r]
        scale = math.ldexp(1.0, _LOG_HALF - e)
        mn = np.inf
        mx = -np.inf
        nan = False
        for p in range(pre):
            for i in range(post):
                v = x[p, r, i]
                if v < mn:
                    mn = v
                if v > mx:
                    mx = v
                s = math.floor(np.float64(v) * scale)
                if s >= -_HALF and s < _HALF:
                    counts[r, int(s) + _HALF] += 1
                elif v != v:
                    nan = True
        lo[r] = mn
        hi[r] = mx
        bad = nan or mn == -np.inf or mx == np.inf
        amax = max(-np.float64(mn), np.float64(mx))
        fits = amax < math.ldexp(1.0, e)
        if bad or not fits:
            _bin_row(x, r, scale, counts, -1)  # take this row's partial counts back
        if bad:
            for q in range(r):
                if grow[q] == exponent[q]:
                    _bin_row(x, q, math.ldexp(1.0, _LOG_HALF - exponent[q]), counts, -1)
            return r
        while not amax < math.ldexp(1.0, e):
            e += 1
        grow[r] = e
    return -1


@njit(cache=True, nogil=True)
def bin_selected_rows(x, exponent, counts, selected):
    """Bin the rows listed in `selected` (their data fits their exponent: checked by bin_rows)."""
    for j in range(selected.size):
        r = selected[j]
        _bin_row(x, r, math.ldexp(1.0, _LOG_HALF - exponent[r]), counts, 1)
