"""The activations Conv/ConvTranspose/Gemm/MatMul may carry fused (attrs activation, clip_min, clip_max).

Also the one-pass clamp the Relu/Clip kernels share: numpy's maximum/minimum
on float32 run about 6x slower than an add on this numpy (no SIMD loop), a
compiled compare-and-select loop runs at add speed. Both keep NaN (a NaN
compares false); they differ only in the sign of a zero result for a -0.0
input (the loop keeps -0.0, np.maximum(-0.0, 0) gives +0.0), which compares
equal.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numba
import numpy as np

#: Applies an activation to an array in place.
InplaceActivation = Callable[[np.ndarray], None]


@numba.njit(cache=True, nogil=True, inline="always")
def _clamp_value(v, lo, hi, use_lo, use_hi):  # pragma: no cover - compiled
    if use_lo and v < lo:
        v = lo
    if use_hi and v > hi:
        v = hi
    return v


@numba.njit(cache=True, nogil=True)
def _clamp_nb(x, y, same, lo, hi, use_lo, use_hi):  # pragma: no cover - compiled
    # a separate loop in place: with two arrays LLVM's overlap check fails on an exact alias
    # and falls back to a scalar loop ~6x slower
    if same:
        for i in range(y.size):
            y[i] = _clamp_value(y[i], lo, hi, use_lo, use_hi)
    else:
        for i in range(x.size):
            y[i] = _clamp_value(x[i], lo, hi, use_lo, use_hi)


def clamp(x: np.ndarray, lo, hi, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, lo) then min(., hi) (None = no bound) into `out` (may be x) or a new array, in x's dtype."""
    y = np.empty_like(x) if out is None else out
    if (x.dtype in (np.float32, np.float64) and x.flags.c_contiguous and y.flags.c_contiguous
            and y.dtype == x.dtype and y.shape == x.shape and x.size):
        from npuc.backends.reference.elementwise_kernels import split_flat

        t = x.dtype.type
        xf, yf = x.reshape(-1), y.reshape(-1)
        args = (y is x, t(0 if lo is None else lo), t(0 if hi is None else hi), lo is not None, hi is not None)
        split_flat(xf.size, lambda i0, i1: _clamp_nb(xf[i0:i1], yf[i0:i1], *args))
        return y
    src = x
    if lo is not None:
        src = np.maximum(src, x.dtype.type(lo), out=y)
    if hi is not None:
        src = np.minimum(src, x.dtype.type(hi), out=y)
    if src is x:  # no bounds
        y[...] = x
    return y


def _relu(y: np.ndarray) -> None:
    clamp(y, 0, None, out=y)


def _bound(v, dtype: np.dtype, ndim: int, axis: int):
    """A clip bound as a scalar of `dtype`, or (per channel) an array broadcasting along `axis`."""
    if v is None:
        return None
    if not isinstance(v, (tuple, list, np.ndarray)):
        return dtype.type(v)
    arr = np.asarray(v, dtype=dtype)
    shape = [1] * ndim
    shape[axis % ndim] = arr.size
    return arr.reshape(shape)


def fused_activation(attrs: Mapping[str, Any], dtype: np.dtype, axis: int | None = None) -> InplaceActivation | None:
    """The in-place activation described by an op's fused-activation attrs (None when there is none).

    Per-channel clip bounds (tuples, see npuc.ir.ops.conv) need the output's channel `axis`
    (1 for convs, -1 for Gemm/MatMul); the returned function must then see the whole output."""
    act = attrs.get("activation")
    if act is None:
        return None
    if act == "relu":
        return _relu
    if act == "clip" and any(isinstance(attrs.get(k), (tuple, list, np.ndarray)) for k in ("clip_min", "clip_max")):
        if axis is None:
            raise ValueError("per-channel fused clip bounds need the output's channel axis")

        def _clip_channels(y: np.ndarray) -> None:
            lo = _bound(attrs.get("clip_min"), y.dtype, y.ndim, axis)
            hi = _bound(attrs.get("clip_max"), y.dtype, y.ndim, axis)
            if lo is not None:
                np.maximum(y, lo, out=y)
            if hi is not None:
                np.minimum(y, hi, out=y)

        return _clip_channels
    if act == "clip":
        lo, hi = attrs.get("clip_min"), attrs.get("clip_max")
        lo = None if lo is None else dtype.type(lo)
        hi = None if hi is None else dtype.type(hi)

        def _clip(y: np.ndarray) -> None:
            clamp(y, lo, hi, out=y)

        return _clip
    raise ValueError(f"unknown fused activation {act!r} (expected None, 'relu' or 'clip')")


def apply_fused_activation(attrs: Mapping[str, Any], y: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Apply the op's fused activation to `y` (the whole output; channels along `axis`) in place and return it."""
    fn = fused_activation(attrs, y.dtype, axis)
    if fn is not None:
        fn(y)
    return y
