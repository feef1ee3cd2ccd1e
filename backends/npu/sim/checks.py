"""Validation used by the kernel wrappers before any numba kernel sees an array.

numba does no bounds checks, so every parameter a kernel indexes with or relies
on (shapes, lengths, shift ranges, clamp bounds, table sizes) is checked once
when the simulator prepares a layer. Failures are BinaryFormatErrors naming the
layer: a binary that decodes but cannot run safely is a bad binary.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from npuc.errors import BinaryFormatError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


class LayerChecker:
    """Checks of one layer's parameters; every message names the layer."""

    def __init__(self, source: str, layer_name: str, kind: str, params: Mapping[str, np.ndarray]) -> None:
        self.where = f"{source}: layer '{layer_name}' ({kind})"
        self.params = params

    def fail(self, message: str) -> BinaryFormatError:
        return BinaryFormatError(f"{self.where}: {message}")

    def need(self, cond: bool, message: str) -> None:
        if not cond:
            raise self.fail(message)

    def array(self, name: str, size: int | tuple[int, ...] | None = None, kind: str = "iu") -> np.ndarray:
        """Parameter `name` as a contiguous int64 (or float64) array with the given size/shape."""
        if name not in self.params:
            raise self.fail(f"parameter '{name}' is missing")
        arr = np.asarray(self.params[name])
        self.need(arr.dtype.kind in kind, f"parameter '{name}' has dtype {arr.dtype}")
        if isinstance(size, tuple):
            self.need(arr.shape == size, f"parameter '{name}' has shape {arr.shape}, expected {size}")
        elif size is not None:
            self.need(arr.ndim == 1 and arr.size == size, f"parameter '{name}' has shape {arr.shape}, expected ({size},)")
        if arr.dtype.kind == "f":
            self.need(bool(np.all(np.isfinite(arr))), f"parameter '{name}' is not finite")
            return np.ascontiguousarray(arr, dtype=np.float64)
        if arr.dtype == np.uint64 and arr.size:
            self.need(int(arr.max()) < (1 << 63), f"parameter '{name}' does not fit int64")
        return np.ascontiguousarray(arr, dtype=np.int64)

    def in_range(self, name: str, arr: np.ndarray, lo: int, hi: int) -> np.ndarray:
        if arr.size:
            self.need(int(arr.min()) >= lo and int(arr.max()) <= hi,
                      f"parameter '{name}' has values in [{int(arr.min())}, {int(arr.max())}], allowed [{lo}, {hi}]")
        return arr

    def multiplier(self, m_name: str = "multiplier", n_name: str = "shift",
                   size: int | tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(M, n) with M in [0, 2**31) and n in [-30, 62] (docs/numerics.md section 6)."""
        M = self.in_range(m_name, self.array(m_name, size), 0, (1 << 31) - 1)
        n = self.in_range(n_name, self.array(n_name, size), -30, 62)
        self.need(M.shape == n.shape, f"'{m_name}' and '{n_name}' differ in shape")
        return M, n

    def output_clamp(self, out_dtype: np.dtype, zp_name: str = "output_zero_point") -> tuple[int, int, int]:
        """(zero point, clamp_min, clamp_max), the clamp inside the output dtype's range."""
        zp = int(self.in_range(zp_name, self.array(zp_name, 1), INT32_MIN, INT32_MAX)[0])
        lo = int(self.array("clamp_min", 1)[0])
        hi = int(self.array("clamp_max", 1)[0])
        self.need(out_dtype.kind in "iu", f"output dtype {out_dtype} is not an integer type")
        info = np.iinfo(out_dtype)
        self.need(int(info.min) <= lo <= hi <= int(info.max),
                  f"output clamp [{lo}, {hi}] is not inside the {out_dtype} range [{info.min}, {info.max}]")
        return zp, lo, hi

    def channel_clamps(self, out_dtype: np.dtype, channels: int,
                       zp_name: str = "output_zero_point") -> tuple[int, np.ndarray, np.ndarray]:
        """(zero point, clamp_min[channels], clamp_max[channels]) of a MAC layer: each clamp is stored
        per tensor ([1]) or per output channel ([channels]); every channel's clamp lies inside the
        output dtype's range and is not empty."""
        zp = int(self.in_range(zp_name, self.array(zp_name, 1), INT32_MIN, INT32_MAX)[0])
        self.need(out_dtype.kind in "iu", f"output dtype {out_dtype} is not an integer type")
        info = np.iinfo(out_dtype)
        bounds = []
        for name in ("clamp_min", "clamp_max"):
            arr = self.array(name)
            self.need(arr.ndim == 1 and arr.size in (1, channels),
                      f"parameter '{name}' has shape {arr.shape}, expected (1,) or ({channels},)")
            self.in_range(name, arr, int(info.min), int(info.max))
            bounds.append(np.ascontiguousarray(np.broadcast_to(arr, (channels,)), dtype=np.int64))
        lo, hi = bounds
        if channels and np.any(lo > hi):
            c = int(np.argmax(lo > hi))
            raise self.fail(f"output clamp [{int(lo[c])}, {int(hi[c])}] of channel {c} is empty")
        return zp, lo, hi

    def zero_points(self, name: str, count: int) -> np.ndarray:
        return self.in_range(name, self.array(name, count), INT32_MIN, INT32_MAX)

    def flags(self, name: str, count: int) -> np.ndarray:
        return self.in_range(name, self.array(name, count), 0, 1)
