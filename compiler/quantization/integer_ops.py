"""Integer arithmetic of the non-MAC ops: rescale (conversion, concat), add, mul,
average, fused activation clamps, float16 conversion and accumulator sizing.

Parameters (multipliers, shifts) are computed at compile time from QuantParams in
float64; the per-element arithmetic is int64 only and follows docs/numerics.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.quant_params import QuantParams
from npuc.quantization.fixed_point import (multiply_by_quantized_multiplier, quantize_multiplier,
                                          requantize)
from npuc.quantization.schemes import dequantize, quantize

#: Left shift applied to both inputs of add/sub before rescaling (TFLite's value for 8-bit).
ADD_LEFT_SHIFT_8 = 20
#: Same for 16-bit inputs (TFLite int16 add uses 15; products stay far inside int64).
ADD_LEFT_SHIFT_16 = 15


def accumulator_dtype(activation_bits: int, weight_bits: int) -> np.dtype:
    """int32 when both operands have at most 8 bits, else int64."""
    return np.dtype(np.int32 if max(activation_bits, weight_bits) <= 8 else np.int64)


def check_accumulator(reduction_size: int, activation_bits: int, weight_bits: int,
                      bias_bound: int = 0) -> None:
    """Fail if ``K * max|x - zp| * max|w| + bias_bound`` can overflow the accumulator (bias_bound = max |bias_acc|).

    ``max|x - zp| = 2**a_bits - 1`` (worst zero point), ``max|w| = 2**(w_bits-1)``.
    """
    acc = accumulator_dtype(activation_bits, weight_bits)
    limit = int(np.iinfo(acc).max)
    worst = int(reduction_size) * ((1 << activation_bits) - 1) * (1 << (weight_bits - 1)) + abs(int(bias_bound))
    if worst > limit:
        raise QuantizationError(
            f"a reduction over {reduction_size} terms of {activation_bits}-bit activations and "
            f"{weight_bits}-bit weights can overflow the {acc} accumulator (worst case {worst} > {limit}); "
            "use 16-bit precision for this layer or split it (a very large bias or input range, e.g. raw 0..255 "
            "pixels fed to a model that expects normalized input, also causes this)")


def activation_clamp(qp: QuantParams, kind: str = "none", low: float | None = None,
                     high: float | None = None) -> tuple[int, int]:
    """Output clamp [lo, hi] for a fused activation: 'none', 'relu', 'relu6' or 'clip' (low/high).

    Bounds are the quantized float bounds (round-half-to-even), intersected with [qmin, qmax].
    """
    if qp.is_per_channel:
        raise QuantizationError("fused activation clamps need a per-tensor output QuantParams")
    bounds = {"none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0), "clip": (low, high)}
    if kind not in bounds:
        raise QuantizationError(f"activation '{kind}' cannot be fused as a clamp (use none, relu, relu6, clip)")
    a, b = bounds[kind]
    lo = qp.qmin if a is None else int(quantize(np.float64(a), qp))
    hi = qp.qmax if b is None else int(quantize(np.float64(b), qp))
    if lo > hi:
        raise QuantizationError(f"fused clip [{a}, {b}] is empty on the output grid {qp}")
    return lo, hi


def rescale_multiplier(qp_in: QuantParams, qp_out: QuantParams) -> tuple[np.ndarray, np.ndarray]:
    """(M, n) arrays for ``s_in / s_out`` (per channel if either side is)."""
    s_in = np.asarray(qp_in.scale, dtype=np.float64)
    s_out = np.asarray(qp_out.scale, dtype=np.float64)
    if s_in.size != 1 and s_out.size != 1 and s_in.size != s_out.size:
        raise QuantizationError(f"cannot rescale {qp_in} to {qp_out}: channel counts differ")
    return quantize_multiplier(s_in / s_out)


def rescale(q: np.ndarray, qp_in: QuantParams, qp_out: QuantParams,
            clamp: tuple[int, int] | None = None) -> np.ndarray:
    """Convert integers from qp_in to qp_out: ``clamp(zp_out + R((q - zp_in), s_in/s_out))``.

    Used by dtype-conversion ops and by concat (each input rescaled to the output).
    Returns int64.
    """
    qa = np.asarray(q).astype(np.int64)
    nd = qa.ndim
    if qp_in.axis is not None and qp_out.axis is not None and qp_in.axis % nd != qp_out.axis % nd:
        raise QuantizationError("per-channel rescale needs the same channel axis on both sides")
    shape = (qp_in if qp_in.axis is not None else qp_out).broadcast_shape(nd)
    M, n = rescale_multiplier(qp_in, qp_out)
    lo, hi = clamp if clamp is not None else (qp_out.qmin, qp_out.qmax)
    return requantize(qa - qp_in.zero_point_array(nd), M.reshape(shape) if M.size > 1 else M,
                      n.reshape(shape) if n.size > 1 else n, qp_out.zero_point_array(nd), lo, hi)


@dataclass(frozen=True)
class AddParams:
    """Integer parameters of ``out = a (+/-) b`` with three different scales."""

    left_shift: int
    M_a: int
    n_a: int
    M_b: int
    n_b: int
    M_out: int
    n_out: int


def add_params(scale_a: float, scale_b: float, scale_out: float, bits: int = 8) -> AddParams:
    """TFLite's scheme: inputs shifted left by L, each rescaled by ``s_i / (2 max(s_a, s_b))``,
    summed, then rescaled by ``2 max(s_a, s_b) / (2**L s_out)``."""
    L = ADD_LEFT_SHIFT_8 if bits <= 8 else ADD_LEFT_SHIFT_16
    twice_max = 2.0 * max(float(scale_a), float(scale_b))
    Ma, na = quantize_multiplier(float(scale_a) / twice_max)
    Mb, nb = quantize_multiplier(float(scale_b) / twice_max)
    Mo, no = quantize_multiplier(twice_max / (float(1 << L) * float(scale_out)))
    return AddParams(L, int(Ma), int(na), int(Mb), int(nb), int(Mo), int(no))


def quantized_add(qa: np.ndarray, zp_a: int, qb: np.ndarray, zp_b: int, params: AddParams,
                  zp_out: int, qmin: int, qmax: int, subtract: bool = False) -> np.ndarray:
    """``clamp(zp_out + R(R((qa-zp_a) << L, Ma) +/- R((qb-zp_b) << L, Mb), Mo))`` (int64, broadcasting)."""
    xa = np.left_shift(np.asarray(qa).astype(np.int64) - zp_a, params.left_shift)
    xb = np.left_shift(np.asarray(qb).astype(np.int64) - zp_b, params.left_shift)
    ra = multiply_by_quantized_multiplier(xa, params.M_a, params.n_a)
    rb = multiply_by_quantized_multiplier(xb, params.M_b, params.n_b)
    total = ra - rb if subtract else ra + rb
    return requantize(total, params.M_out, params.n_out, zp_out, qmin, qmax)


def mul_multiplier(scale_a: float, scale_b: float, scale_out: float) -> tuple[int, int]:
    """(M, n) for ``s_a * s_b / s_out``."""
    M, n = quantize_multiplier(float(scale_a) * float(scale_b) / float(scale_out))
    return int(M), int(n)


def quantized_mul(qa: np.ndarray, zp_a: int, qb: np.ndarray, zp_b: int, M: int, n: int,
                  zp_out: int, qmin: int, qmax: int) -> np.ndarray:
    """``clamp(zp_out + R((qa-zp_a)*(qb-zp_b), M, n))`` (int64, broadcasting)."""
    acc = (np.asarray(qa).astype(np.int64) - zp_a) * (np.asarray(qb).astype(np.int64) - zp_b)
    return requantize(acc, M, n, zp_out, qmin, qmax)


def average_multiplier(count, scale_in: float, scale_out: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, n) for ``s_in / (s_out * count)``; `count` may be an array (border windows)."""
    c = np.asarray(count, dtype=np.float64)
    if np.any(c <= 0):
        raise QuantizationError("average pooling window count must be positive")
    return quantize_multiplier(float(scale_in) / (float(scale_out) * c))


def quantized_mean(q: np.ndarray, qp_in: QuantParams, qp_out: QuantParams, axes: tuple[int, ...],
                   clamp: tuple[int, int] | None = None) -> np.ndarray:
    """Global average: ``clamp(zp_out + R(sum(q - zp_in), s_in / (s_out*count)))`` keeping dims."""
    if qp_in.is_per_channel or qp_out.is_per_channel:
        raise QuantizationError("quantized_mean needs per-tensor QuantParams")
    qa = np.asarray(q).astype(np.int64)
    count = int(np.prod([qa.shape[a] for a in axes]))
    acc = np.sum(qa - qp_in.zero_point[0], axis=axes, keepdims=True)
    M, n = average_multiplier(count, qp_in.scale[0], qp_out.scale[0])
    lo, hi = clamp if clamp is not None else (qp_out.qmin, qp_out.qmax)
    return requantize(acc, M, n, qp_out.zero_point[0], lo, hi)


def to_float16(q: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Integer -> float16: ``scale * (q - zp)`` in float64, one rounding to float16 (half-even)."""
    return dequantize(q, qp, np.float64).astype(np.float16)


def from_float16(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """float16 -> integer: exact widening to float64, then `quantize`."""
    return quantize(np.asarray(x, dtype=np.float16).astype(np.float64), qp)


def round_to_float16(x: np.ndarray) -> np.ndarray:
    """Output rounding of a float16 layer that computed in float32: float32 -> float16, half-even."""
    return np.asarray(x, dtype=np.float32).astype(np.float16)


# ------------------------------------------------------------------ PRelu
def prelu_multipliers(slope: np.ndarray, scale_in: float, scale_out: float
                      ) -> tuple[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """((M_pos, n_pos), (M_neg, n_neg, sign)) of an integer PRelu (docs/numerics.md section 8):
    ``s_in/s_out`` for the positive branch, ``|a| s_in/s_out`` and ``sign(a)`` (+1 for a >= 0) per
    slope value ``a`` (float64 real slopes, any shape) for the negative branch."""
    a = np.asarray(slope, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise QuantizationError("PRelu slope is not finite")
    Mp, np_ = quantize_multiplier(float(scale_in) / float(scale_out))
    Mn, nn = quantize_multiplier(np.abs(a) * (float(scale_in) / float(scale_out)))
    sign = np.where(a < 0, -1, 1).astype(np.int64)
    return (int(Mp), int(np_)), (np.asarray(Mn, np.int64).reshape(a.shape), np.asarray(nn, np.int64).reshape(a.shape),
                                 sign)


def quantized_prelu(q: np.ndarray, zp_in: int, M_pos: int, n_pos: int, M_neg: np.ndarray, n_neg: np.ndarray,
                    sign: np.ndarray, zp_out: int, qmin: int, qmax: int) -> np.ndarray:
    """``x = q - zp_in``; ``clamp(zp_out + R(x, M_pos, n_pos))`` where ``x >= 0``, else
    ``clamp(zp_out + R(sign * x, M_neg, n_neg))`` (the negative-branch arrays broadcast against q)."""
    x = np.asarray(q).astype(np.int64) - zp_in
    pos = requantize(x, M_pos, n_pos, zp_out, qmin, qmax)
    neg = requantize(x * np.asarray(sign, np.int64), np.asarray(M_neg, np.int64), np.asarray(n_neg, np.int64),
                     zp_out, qmin, qmax)
    return np.where(x >= 0, pos, neg)


# ------------------------------------------------------- bilinear resize
def resize_frac_bits(bits: int) -> int:
    """Fractional bits F of the interpolation weights: 22 for every input width (docs/numerics.md section 8:
    the weights' error then stays below float32 noise for 8-bit inputs; TFLite's own mode uses 10)."""
    return 22


def linear_weights(frac: np.ndarray, frac_bits: int) -> np.ndarray:
    """Fixed-point weight of the high tap: ``rint(frac * 2**F)`` (round half to even, float64)."""
    return np.rint(np.asarray(frac, dtype=np.float64) * float(1 << frac_bits)).astype(np.int64)


def tflite_bilinear_taps(out_len: int, in_len: int, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, weight of high) along one axis as TFLite's int8 RESIZE_BILINEAR computes them
    (10 fractional bits): ``scale = (2**10 in + out // 2) // out`` (align_corners, out > 1:
    ``(2**10 (in-1) + (out-1) // 2) // (out-1)``), ``v = y scale`` (+ ``scale // 2 - 2**9`` for half_pixel),
    ``low = max(trunc(v / 2**10), 0)``, ``high = min(trunc((v + 2**10 - 1) / 2**10), in - 1)``,
    ``w = v - 2**10 low``; where ``low == high`` both taps read one value and ``w`` is stored as 0."""
    one = 1 << 10
    if mode == "align_corners" and out_len > 1:
        scale = (one * (in_len - 1) + (out_len - 1) // 2) // (out_len - 1)
    else:
        scale = (one * in_len + out_len // 2) // out_len
    v = np.arange(out_len, dtype=np.int64) * scale
    if mode == "half_pixel":
        v = v + scale // 2 - (1 << 9)
    elif mode not in ("align_corners", "asymmetric"):
        raise QuantizationError(f"TFLite's bilinear resize has no coordinate mode {mode!r}")

    def trunc_div(a: np.ndarray) -> np.ndarray:
        return np.where(a >= 0, a // one, -((-a) // one))

    low = np.minimum(np.maximum(trunc_div(v), 0), in_len - 1)
    high = np.minimum(trunc_div(v + one - 1), in_len - 1)
    high = np.maximum(high, low)
    w = np.where(high > low, v - one * low, 0)
    return low, high, w


def interpolate_linear(q: np.ndarray, zp_in: int, row_index: np.ndarray, row_weight: np.ndarray,
                       col_index: np.ndarray, col_weight: np.ndarray, frac_bits: int, M: int, n: int,
                       zp_out: int, qmin: int, qmax: int, rounding: int = 0) -> np.ndarray:
    """Bilinear resize of the last two axes (docs/numerics.md section 8):
    ``acc = sum_{a,b} wy_a * wx_b * (q[y_a, x_b] - zp_in)`` with ``wy_1 = row_weight``,
    ``wy_0 = 2**F - row_weight`` (same along columns); ``clamp(zp_out + R(acc, M, n))``, or with
    ``rounding = 1`` (TFLite's int8 kernel, equal encodings) the raw-code sum rounded half away from zero:
    ``clamp(rounding_divide_away(acc + zp_in * 2**(2F), 2**(2F)))``."""
    x = np.asarray(q).astype(np.int64) - zp_in
    one = np.int64(1) << np.int64(frac_bits)
    ry, rx = np.asarray(row_weight, np.int64), np.asarray(col_weight, np.int64)
    rows = (np.take(x, row_index[0], axis=-2) * (one - ry)[:, None]
            + np.take(x, row_index[1], axis=-2) * ry[:, None])
    acc = np.take(rows, col_index[0], axis=-1) * (one - rx) + np.take(rows, col_index[1], axis=-1) * rx
    if rounding == 1:
        total = one * one
        raw = acc + np.int64(zp_in) * total
        q_out = np.sign(raw) * ((np.abs(raw) + total // 2) // total)
        return np.clip(q_out, qmin, qmax)
    return requantize(acc, M, n, zp_out, qmin, qmax)
