"""Quantization parameters of a tensor: real = scale * (q - zero_point)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npuc.ir.dtypes import DType


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one tensor, per tensor (axis None) or per channel.

    Frozen and made of tuples so it is hashable, comparable and prints the same
    way every run. `real = scale[c] * (q - zero_point[c])`.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    bits: int = 8
    signed: bool = True
    axis: int | None = None

    def __post_init__(self) -> None:
        if len(self.scale) == 0 or len(self.scale) != len(self.zero_point):
            raise ValueError("QuantParams needs as many zero points as scales (at least one)")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor QuantParams has exactly one scale")
        if any(not (s > 0.0) or not np.isfinite(s) for s in self.scale):
            raise ValueError(f"quantization scales must be finite and > 0, got {self.scale}")
        if self.bits not in (4, 8, 16, 32):
            raise ValueError(f"quantization to {self.bits} bits is not supported (4, 8, 16 or 32)")
        lo, hi = self.qmin, self.qmax
        if any(z < lo or z > hi for z in self.zero_point):
            raise ValueError(f"zero points {self.zero_point} outside [{lo}, {hi}]")

    @classmethod
    def per_tensor(cls, scale: float, zero_point: int = 0, bits: int = 8, signed: bool = True) -> "QuantParams":
        return cls((float(scale),), (int(zero_point),), bits, signed, None)

    @classmethod
    def per_channel(cls, scales, zero_points, axis: int, bits: int = 8, signed: bool = True) -> "QuantParams":
        return cls(tuple(float(s) for s in scales), tuple(int(z) for z in zero_points), bits, signed, int(axis))

    @property
    def dtype(self) -> DType:
        return DType.integer(self.bits, self.signed)

    @property
    def qmin(self) -> int:
        return self.dtype.qmin

    @property
    def qmax(self) -> int:
        return self.dtype.qmax

    @property
    def is_per_channel(self) -> bool:
        return self.axis is not None

    @property
    def is_symmetric(self) -> bool:
        return all(z == 0 for z in self.zero_point)

    def broadcast_shape(self, ndim: int) -> tuple[int, ...]:
        """Shape to reshape scale/zero_point arrays to for broadcasting over a tensor of rank ndim."""
        if self.axis is None:
            return (1,) * ndim
        shape = [1] * ndim
        shape[self.axis % ndim] = len(self.scale)
        return tuple(shape)

    def scale_array(self, ndim: int) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64).reshape(self.broadcast_shape(ndim))

    def zero_point_array(self, ndim: int) -> np.ndarray:
        return np.asarray(self.zero_point, dtype=np.int64).reshape(self.broadcast_shape(ndim))

    def __str__(self) -> str:
        kind = f"{'i' if self.signed else 'u'}{self.bits}"
        if self.axis is None:
            return f"q({kind} s={self.scale[0]:.6g} zp={self.zero_point[0]})"
        return f"q({kind} axis={self.axis} n={len(self.scale)} s=[{min(self.scale):.4g}..{max(self.scale):.4g}])"
