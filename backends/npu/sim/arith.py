"""Scalar integer arithmetic of docs/numerics.md as numba functions (int64 only).

These mirror `npuc.quantization.fixed_point` line for line: the overflow-free
requantize split (section 6), round-half-up shifts and divisions (section 1).
Every kernel module of the simulator builds on them, so the rounding rules are
written once for the numba side too.

These helpers are inlined into the kernels of other modules; numba's on-disk
cache only tracks a kernel's own source file, so after editing this file delete
``backends/npu/sim/__pycache__/*.nbi`` / ``*.nbc`` to force recompilation.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_MASK31 = np.int64((1 << 31) - 1)
_C_CLAMP = np.int64((1 << 32) + 1)
_R_LIMIT = np.int64(1 << 32)


@njit(cache=True, inline="always")
def rounding_right_shift(x: np.int64, t: np.int64) -> np.int64:
    """floor(x / 2**t + 1/2) for t in [0, 63], never forming x + 2**(t-1)."""
    if t <= 0:
        return x
    return (x >> t) + ((x >> (t - 1)) & 1)


@njit(cache=True, inline="always")
def scaled(acc: np.int64, M: np.int64, n: np.int64) -> np.int64:
    """R(acc, M, n) = clamp(floor(acc * M / 2**(31 + n) + 1/2), -2**32, 2**32), int64 only."""
    hi = acc >> 31
    lo = acc & _MASK31
    p = lo * M
    c = hi * M + (p >> 31)
    p_lo = p & _MASK31
    if n >= 1:
        r = (c >> n) + ((c >> (n - 1)) & 1)
    else:
        t = 31 + n
        if c > _C_CLAMP:
            c = _C_CLAMP
        elif c < -_C_CLAMP:
            c = -_C_CLAMP
        r = c * (np.int64(1) << (-n)) + (p_lo >> t) + ((p_lo >> (t - 1)) & 1)
    if r > _R_LIMIT:
        return _R_LIMIT
    if r < -_R_LIMIT:
        return -_R_LIMIT
    return r


@njit(cache=True, inline="always")
def requant(acc: np.int64, M: np.int64, n: np.int64, zp: np.int64, lo: np.int64, hi: np.int64) -> np.int64:
    """clamp(zp + R(acc, M, n), lo, hi)."""
    v = zp + scaled(acc, M, n)
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@njit(cache=True, inline="always")
def requant_float32(acc: np.int64, m32: np.float32, zp: np.int64, lo: np.int64, hi: np.int64) -> np.int64:
    """clamp(zp + rint(float32(float32(acc) * m32)), lo, hi), rint half to even (docs/numerics.md 6a).

    float32(acc) and the float32 product are single IEEE roundings to nearest even (numba: sitofp and
    fmul on float32); the float32 value is exact in float64, where the clamp and the rounding happen."""
    v = np.float64(np.float32(acc) * m32)
    lo_f = np.float64(lo - zp)
    hi_f = np.float64(hi - zp)
    if v <= lo_f:
        return lo
    if v >= hi_f:
        return hi
    r = np.floor(v)
    d = v - r
    q = np.int64(r)
    if d > 0.5 or (d == 0.5 and (q & 1) == 1):
        q += 1
    return zp + q


@njit(cache=True, inline="always")
def rounding_divide(a: np.int64, b: np.int64) -> np.int64:
    """floor(a / b + 1/2) for b > 0 (Python floor division semantics under numba)."""
    return (2 * a + b) // (2 * b)
