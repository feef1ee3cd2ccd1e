"""Weight range modes: 'minmax', 'mse' (search the clip minimising the weights' own
quantization error) and 'adjusted' (widen min/max so 0.0 falls on the grid without nudging)."""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError
from npuc.quantization.observers.base import as_rows
from npuc.quantization.schemes import adjust_range, integer_range

#: Weight range modes accepted by `weight_range`.
WEIGHT_MODES = ("minmax", "mse", "adjusted")
#: Candidate clipping fractions of the mse search (1/K .. 1).
MSE_CANDIDATES = 100


def _mse_fraction(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int, signed: bool,
                  symmetric: bool) -> np.ndarray:
    """Per row, the fraction f (of the min/max range) with the lowest quantize-dequantize MSE."""
    qmin, qmax = integer_range(bits, signed)
    best_err = np.full(rows.shape[0], np.inf)
    best_f = np.ones(rows.shape[0])
    for f in np.arange(MSE_CANDIDATES, 0, -1) / MSE_CANDIDATES:  # candidates, each vectorised over all weights
        if symmetric:
            half = (1 << (bits - 1)) - 1
            scale = np.maximum(np.maximum(-lo, hi) * f / half, 1e-30)
            zp = np.zeros_like(scale) if signed else np.full_like(scale, 1 << (bits - 1))
            qlo, qhi = zp - half, zp + half
        else:
            scale = np.maximum((hi - lo) * f / (qmax - qmin), 1e-30)
            zp = np.clip(np.rint(qmin - lo * f / scale), qmin, qmax)
            qlo, qhi = np.full_like(scale, qmin), np.full_like(scale, qmax)
        q = np.clip(np.rint(rows / scale[:, None]) + zp[:, None], qlo[:, None], qhi[:, None])
        err = np.mean(((q - zp[:, None]) * scale[:, None] - rows) ** 2, axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_f = np.where(better, f, best_f)
    return best_f


def _adjusted(lo: np.ndarray, hi: np.ndarray, bits: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Smallest range containing [lo, hi] (lo <= 0 <= hi) whose zero point is an integer."""
    qmin, qmax = integer_range(bits, signed)
    n = float(qmax - qmin)
    width = hi - lo
    zf = np.where(width > 0, -lo / np.where(width > 0, width, 1.0) * n, 0.0)
    cands = np.stack([np.floor(zf), np.ceil(zf)]).clip(0, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        need_lo = np.where(cands > 0, -lo / cands, np.where(lo < 0, np.inf, 0.0))
        need_hi = np.where(cands < n, hi / (n - cands), np.where(hi > 0, np.inf, 0.0))
    scale = np.maximum(need_lo, need_hi)
    pick = np.argmin(scale, axis=0)
    z = np.take_along_axis(cands, pick[None], 0)[0]
    s = np.take_along_axis(scale, pick[None], 0)[0]
    return -z * s, (n - z) * s


def weight_range(w: np.ndarray, mode: str = "minmax", bits: int = 8, signed: bool = True,
                 symmetric: bool = True, axis: int | None = None):
    """(min, max) for a weight tensor: floats per tensor, arrays per channel along `axis`."""
    if mode not in WEIGHT_MODES:
        raise QuantizationError(f"unknown weight range mode '{mode}' (use one of {', '.join(WEIGHT_MODES)})")
    rows = as_rows(w, axis, None)
    if rows.shape[1] == 0:
        raise QuantizationError("cannot choose a range for an empty weight tensor")
    lo, hi = rows.min(axis=1), rows.max(axis=1)
    if mode == "mse":
        f = _mse_fraction(rows, np.minimum(lo, 0.0), np.maximum(hi, 0.0), bits, signed, symmetric)
        if symmetric:
            t = np.maximum(-lo, hi) * f
            lo, hi = np.maximum(lo, -t), np.minimum(hi, t)
        else:
            lo, hi = np.minimum(lo, 0.0) * f, np.maximum(hi, 0.0) * f
    elif mode == "adjusted" and not symmetric:
        lo, hi = _adjusted(*adjust_range(lo, hi), bits, signed)
    if axis is None:
        return float(lo[0]), float(hi[0])
    return lo, hi
