"""Float kernel for Resize (ONNX semantics, nearest and linear, every coordinate transformation mode).

Resizing is separable: each axis whose size changes is resampled on its own
with a precomputed index (nearest) or index-pair + weight (linear) vector.
Coordinates are computed in float32 exactly as onnxruntime does, so the
nearest-neighbour choices agree at rounding ties.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.kernels import kernel
from npuc.ir.op import Op

F32 = np.float32


def source_coordinates(mode: str, out_len: int, in_len: int) -> np.ndarray:
    """Float32 source coordinate of every output index along one axis (scale = out_len / in_len)."""
    x = np.arange(out_len, dtype=F32)
    scale = F32(out_len) / F32(in_len)
    half = F32(0.5)
    if mode == "half_pixel":
        return (x + half) / scale - half
    if mode == "pytorch_half_pixel":
        return (x + half) / scale - half if out_len > 1 else np.zeros(out_len, F32)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nearest":
        return (x + half) / scale
    if mode == "align_corners":
        if out_len == 1:
            return np.zeros(1, F32)
        return x * F32(in_len - 1) / F32(out_len - 1)
    if mode == "half_pixel_symmetric":
        adjustment = F32(out_len) / (scale * F32(in_len))
        offset = F32(in_len) / F32(2) * (F32(1) - adjustment)
        return offset + (x + half) / scale - half
    raise ValueError(
        f"coordinate_transformation_mode {mode!r} is not supported (half_pixel, pytorch_half_pixel, "
        "align_corners, asymmetric, tf_half_pixel_for_nearest, half_pixel_symmetric)"
    )


def nearest_indices(coords: np.ndarray, nearest_mode: str, in_len: int) -> np.ndarray:
    """Source index per output index for mode='nearest' (ties resolved as onnxruntime does)."""
    if nearest_mode == "round_prefer_floor":
        away = np.sign(coords) * np.floor(np.abs(coords) + F32(0.5))
        idx = np.where(coords == np.trunc(coords) + F32(0.5), np.floor(coords), away)
    elif nearest_mode == "round_prefer_ceil":
        idx = np.sign(coords) * np.floor(np.abs(coords) + F32(0.5))  # half away from zero (std::round)
    elif nearest_mode == "floor":
        idx = np.floor(coords)
    elif nearest_mode == "ceil":
        idx = np.ceil(coords)
    else:
        raise ValueError(f"nearest_mode {nearest_mode!r} is not supported (round_prefer_floor, "
                         "round_prefer_ceil, floor, ceil)")
    return np.clip(idx, 0, in_len - 1).astype(np.intp)


def linear_taps(coords: np.ndarray, in_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low index, high index, weight of high) per output index for mode='linear' (clamped at the edges)."""
    c = np.clip(coords, F32(0), F32(in_len - 1))
    lo = np.minimum(c.astype(np.intp), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    frac = (c - lo.astype(F32)).astype(F32)
    frac[lo == hi] = 0
    return lo, hi, frac


def _resample_axis(x: np.ndarray, axis: int, out_len: int, op: Op) -> np.ndarray:
    a = op.attrs
    in_len = x.shape[axis]
    coords = source_coordinates(a["coordinate_transformation_mode"], out_len, in_len)
    if a["mode"] == "nearest":
        idx = nearest_indices(coords, a["nearest_mode"], in_len)
        if out_len == in_len and np.array_equal(idx, np.arange(in_len)):
            return x
        return np.take(x, idx, axis=axis)
    if a["mode"] != "linear":
        raise ValueError(f"Resize mode {a['mode']!r} is not supported (nearest, linear)")
    lo, hi, frac = linear_taps(coords, in_len)
    if out_len == in_len and np.array_equal(lo, np.arange(in_len)) and not frac.any():
        return x
    shape = [1] * x.ndim
    shape[axis] = out_len
    w_hi = frac.astype(x.dtype).reshape(shape)
    low = np.take(x, lo, axis=axis)
    high = np.take(x, hi, axis=axis)
    high -= low
    high *= w_hi
    low += high  # low + frac * (high - low)
    return low


@kernel("Resize")
def resize_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x = inputs[0]
    size = tuple(int(s) for s in op.attrs["size"])
    if len(size) != x.ndim:
        raise ValueError(f"Resize size {size} does not give every dim of input {x.shape}")
    y = x
    for axis in range(x.ndim):
        y = _resample_axis(y, axis, size[axis], op)
    if y is x:
        y = x.copy()
    return [y]
