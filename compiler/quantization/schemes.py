"""Float ranges -> QuantParams for every scheme, and quantize/dequantize.

Every range is first widened to contain 0.0 and to be at least `MIN_RANGE_WIDTH`
wide; the schemes then guarantee 0.0 is exactly representable (asymmetric: the
zero point is nudged to an integer as TFLite does; symmetric and power-of-two:
zero point 0, or 2**(bits-1) for unsigned symmetric). float->int uses
round-half-to-even of ``x / scale`` computed in float64, then adds the zero
point and saturates (docs/numerics.md, "Quantize and dequantize").
"""
from __future__ import annotations

import enum

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.quant_params import QuantParams

#: Smallest allowed width of a quantization range (real units).
MIN_RANGE_WIDTH = 1e-5


class Scheme(str, enum.Enum):
    """How a float range becomes scale and zero point."""

    ASYMMETRIC = "asymmetric"
    SYMMETRIC = "symmetric"
    POWER_OF_TWO = "power_of_two"


def integer_range(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) of a `bits`-wide integer."""
    if bits < 2 or bits > 32:
        raise QuantizationError(f"unsupported bit width {bits} (2..32)")
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _ranges(rmin, rmax, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(rmin, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(rmax, dtype=np.float64))
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise QuantizationError(f"range min/max must be scalars or equal-length 1-D arrays, got {lo.shape} and {hi.shape}")
    if axis is None and lo.size != 1:
        raise QuantizationError(f"{lo.size} per-channel ranges given but no channel axis")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise QuantizationError(f"quantization range is not finite: min={lo[:4]} max={hi[:4]}")
    if np.any(lo > hi):
        raise QuantizationError(f"quantization range has min > max: min={lo[:4]} max={hi[:4]}")
    return lo, hi


def adjust_range(rmin, rmax, min_width: float = MIN_RANGE_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Widen ranges to contain 0.0 and to be at least `min_width` wide (arrays, float64).

    A too-narrow range grows on the side of its larger magnitude (upwards on ties).
    """
    lo = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    deficit = np.maximum(min_width - (hi - lo), 0.0)
    grow_up = hi >= -lo
    return np.where(grow_up, lo, lo - deficit), np.where(grow_up, hi + deficit, hi)


def _make(scales: np.ndarray, zps: np.ndarray, bits: int, signed: bool, axis: int | None) -> QuantParams:
    if axis is None:
        return QuantParams.per_tensor(float(scales[0]), int(zps[0]), bits, signed)
    return QuantParams.per_channel(scales.tolist(), zps.tolist(), axis, bits, signed)


def asymmetric_params(rmin, rmax, bits: int = 8, signed: bool = False, axis: int | None = None,
                      min_width: float = MIN_RANGE_WIDTH) -> QuantParams:
    """Affine params: ``scale = (max-min)/(qmax-qmin)``, ``zp = round_half_even(qmin - min/scale)``.

    The zero point is clamped to [qmin, qmax] (the nudge moves the covered range by
    less than half a step, as TFLite's nudging does).
    """
    lo, hi = adjust_range(*_ranges(rmin, rmax, axis), min_width)
    qmin, qmax = integer_range(bits, signed)
    scale = (hi - lo) / float(qmax - qmin)
    zp = np.clip(np.rint(qmin - lo / scale), qmin, qmax).astype(np.int64)
    return _make(scale, zp, bits, signed, axis)


def symmetric_params(rmin, rmax, bits: int = 8, signed: bool = True, axis: int | None = None,
                     min_width: float = MIN_RANGE_WIDTH) -> QuantParams:
    """Symmetric params: ``scale = max(|min|, |max|) / (2**(bits-1) - 1)``.

    Zero point 0 when signed (values then use the narrow range +-(2**(bits-1)-1),
    so -qmax is representable and weights never hit qmin); 2**(bits-1) when unsigned.
    """
    lo, hi = adjust_range(*_ranges(rmin, rmax, axis), min_width)
    absmax = np.maximum(np.maximum(-lo, hi), min_width / 2.0)
    half = (1 << (bits - 1)) - 1
    integer_range(bits, signed)
    scale = absmax / float(half)
    zp = np.full(scale.shape, 0 if signed else 1 << (bits - 1), dtype=np.int64)
    return _make(scale, zp, bits, signed, axis)


def power_of_two_params(rmin, rmax, bits: int = 8, signed: bool = True, axis: int | None = None,
                        min_width: float = MIN_RANGE_WIDTH) -> QuantParams:
    """Dynamic fixed point: zero point 0 and the smallest ``scale = 2**k`` covering the range.

    Covering means ``max <= qmax*scale`` and ``min >= qmin*scale`` (signed).

    Unsigned power-of-two params need a non-negative range.
    """
    lo, hi = adjust_range(*_ranges(rmin, rmax, axis), min_width)
    qmin, qmax = integer_range(bits, signed)
    if not signed and np.any(lo < 0):
        raise QuantizationError("unsigned power-of-two quantization needs a range with min >= 0; use signed")
    need = hi / float(qmax)
    if signed:
        need = np.maximum(need, lo / float(qmin))
    need = np.maximum(need, (min_width / 2.0) / float(qmax))
    frac, exp = np.frexp(need)
    k = np.where(frac == 0.5, exp - 1, exp)
    scale = np.ldexp(1.0, k)
    return _make(scale, np.zeros(scale.shape, dtype=np.int64), bits, signed, axis)


def params_from_range(rmin, rmax, scheme: Scheme | str, bits: int, signed: bool,
                      axis: int | None = None, min_width: float = MIN_RANGE_WIDTH) -> QuantParams:
    """Dispatch to the scheme's builder."""
    try:
        kind = Scheme(scheme)
    except ValueError:
        raise QuantizationError(f"unknown quantization scheme '{scheme}' (use one of {[s.value for s in Scheme]})") from None
    build = {Scheme.ASYMMETRIC: asymmetric_params, Scheme.SYMMETRIC: symmetric_params,
             Scheme.POWER_OF_TWO: power_of_two_params}[kind]
    return build(rmin, rmax, bits=bits, signed=signed, axis=axis, min_width=min_width)


def representable_range(qp: QuantParams) -> tuple[np.ndarray, np.ndarray]:
    """Real values of qmin and qmax per channel (float64 arrays)."""
    s = np.asarray(qp.scale, dtype=np.float64)
    z = np.asarray(qp.zero_point, dtype=np.float64)
    return s * (qp.qmin - z), s * (qp.qmax - z)


def _check_axis(shape: tuple[int, ...], qp: QuantParams) -> None:
    if qp.axis is None:
        return
    if len(shape) == 0 or not -len(shape) <= qp.axis < len(shape):
        raise QuantizationError(f"per-channel axis {qp.axis} out of range for a tensor of shape {shape}")
    if shape[qp.axis] != len(qp.scale):
        raise QuantizationError(
            f"tensor has {shape[qp.axis]} channels on axis {qp.axis} but QuantParams has {len(qp.scale)}")


def quantize(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """``clamp(round_half_even(x / scale) + zp, qmin, qmax)`` in float64, stored as qp.dtype's numpy type."""
    xf = np.asarray(x, dtype=np.float64)
    if np.isnan(xf).any():
        raise QuantizationError("cannot quantize NaN values")
    _check_axis(xf.shape, qp)
    q = np.rint(xf / qp.scale_array(xf.ndim)) + qp.zero_point_array(xf.ndim)
    return np.clip(q, qp.qmin, qp.qmax).astype(qp.dtype.numpy)


def dequantize(q: np.ndarray, qp: QuantParams, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """``scale * (q - zp)`` computed in float64, then rounded once to `dtype`."""
    qa = np.asarray(q)
    if qa.dtype.kind not in "iu":
        raise QuantizationError(f"dequantize needs integer input, got {qa.dtype}")
    _check_axis(qa.shape, qp)
    real = (qa.astype(np.int64) - qp.zero_point_array(qa.ndim)).astype(np.float64) * qp.scale_array(qa.ndim)
    return real.astype(dtype)
