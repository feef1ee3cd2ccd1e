"""The activations Conv/ConvTranspose/Gemm/MatMul may carry fused (attrs activation, clip_min, clip_max)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

#: Applies an activation to an array in place.
InplaceActivation = Callable[[np.ndarray], None]


def _relu(y: np.ndarray) -> None:
    np.maximum(y, 0, out=y)


def fused_activation(attrs: Mapping[str, Any], dtype: np.dtype) -> InplaceActivation | None:
    """The in-place activation described by an op's fused-activation attrs (None when there is none)."""
    act = attrs.get("activation")
    if act is None:
        return None
    if act == "relu":
        return _relu
    if act == "clip":
        lo, hi = attrs.get("clip_min"), attrs.get("clip_max")
        lo = None if lo is None else dtype.type(lo)
        hi = None if hi is None else dtype.type(hi)

        def _clip(y: np.ndarray) -> None:
            if lo is not None:
                np.maximum(y, lo, out=y)
            if hi is not None:
                np.minimum(y, hi, out=y)

        return _clip
    raise ValueError(f"unknown fused activation {act!r} (expected None, 'relu' or 'clip')")


def apply_fused_activation(attrs: Mapping[str, Any], y: np.ndarray) -> np.ndarray:
    """Apply the op's fused activation to `y` in place and return it."""
    fn = fused_activation(attrs, y.dtype)
    if fn is not None:
        fn(y)
    return y
