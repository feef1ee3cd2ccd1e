"""numba kernel of the histogram observers: bin an activation in one pass, without float64 copies.

The data is viewed as ``(pre, rows, post)`` (`channel_view`): row ``r`` is
``x[:, r, :]``; per tensor it is ``(1, 1, size)``. float32 and float64 are read
as they are: each value is widened to float64 in a register, exactly as
``astype(float64)`` would, and the bin is ``floor(x * 2**(10 - e)) + 1024``
computed in float64 (the product by a power of two is exact), i.e. exactly the
numpy formulation of docs/numerics.md section 12 (``floor(ldexp(x, 10 - e))``),
clipped to the bins like it. The caller has already grown the exponents so
that every value fits (min/max come from numpy's SIMD reductions, which also
propagate NaN, so the finiteness check costs no extra pass).
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
def bin_rows(x, exponent, counts):
    """counts[r, floor(x * 2**(10 - exponent[r])) + 1024] += 1 for every value of row r of a (pre, rows, post) array."""
    pre, rows, post = x.shape
    for r in range(rows):
        scale = math.ldexp(1.0, _LOG_HALF - exponent[r])
        for p in range(pre):
            for i in range(post):
                s = math.floor(np.float64(x[p, r, i]) * scale)
                if s < -_HALF:
                    s = -_HALF
                elif s > _HALF - 1:
                    s = _HALF - 1
                counts[r, int(s) + _HALF] += 1
