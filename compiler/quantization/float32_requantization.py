"""Float32 requantization of MAC layers: the arithmetic of onnxruntime's QLinearConv / QGemm.

npuc's default requantization multiplies the accumulator by a 31-bit fixed-point multiplier
and rounds half up (docs/numerics.md section 6). A layer quantized with
``requantization=float32`` instead computes (docs/numerics.md section 6a)

    m32 = float32(float32(s_x32 * s_w32[c]) / s_y32)            # compile time, float32 arithmetic
    v   = float32(float32(acc) * m32)                           # run time, IEEE float32, nearest even
    q_y = clamp(z_y + rint(v), lo[c], hi[c])                    # rint: round half to even

where ``s32`` are the scales rounded down to float32 (`float32_scale_below`, the values the QDQ
exporter writes). This is, operation for operation, what onnxruntime computes when it fuses
DequantizeLinear -> Conv/Gemm -> QuantizeLinear into QLinearConv/QGemm (MLAS's
``MlasRequantizeOutput``: int32 accumulator to float32, times the float32 scale, clamp, convert with
round-to-nearest-even, add the zero point), so an exported QDQ model reproduces such a layer bit for
bit. ``m32`` is stored in the binary as the usual (M, n) pair, exactly (a float32 has a 24-bit
significand; M keeps 31).
"""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError
from npuc.quantization.fixed_point import MAX_SHIFT, MIN_SHIFT, MULTIPLIER_BITS, requantize

_R_LIMIT = float(1 << 32)  # the clamp of the scaled value (docs/numerics.md section 6)


def float32_scale_below(scales) -> np.ndarray:
    """The largest float32 values not above npuc's float64 scales.

    A runtime computes `x / scale` in float32; with the scale rounded down, a value
    npuc sees exactly on a rounding tie lands just above it and rounds up, as npuc's
    tables and requantization do for the common ties (e.g. hard-sigmoid(0) = 0.5 on a
    1/255 grid), instead of flipping one LSB on the float32 rounding of 1/255.
    """
    s64 = np.asarray(scales, dtype=np.float64)
    s32 = s64.astype(np.float32)
    return np.where(s32.astype(np.float64) > s64, np.nextafter(s32, np.float32(0)), s32)


def float32_multiplier(s_in: float, s_w, s_out: float) -> np.ndarray:
    """``float32(float32(s_in32 * s_w32) / s_out32)`` per weight scale, in float32 arithmetic."""
    sx = float32_scale_below([s_in])[0]
    sw = float32_scale_below(np.atleast_1d(np.asarray(s_w, np.float64)))
    sy = float32_scale_below([s_out])[0]
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        m32 = (sx * sw) / sy
    bad = ~np.isfinite(m32) | (m32 < 0)
    if np.any(bad):
        raise QuantizationError(f"float32 requantization multiplier is not finite and >= 0: {m32[bad][:4]}")
    return m32.astype(np.float32)


def encode_float32_multiplier(m32) -> tuple[np.ndarray, np.ndarray]:
    """(M, n) with ``M * 2**-(31 + n) == m32`` exactly (float32 values); an error when not representable."""
    m = np.asarray(m32, np.float32).astype(np.float64)
    f, e = np.frexp(m)
    M = np.ldexp(f, MULTIPLIER_BITS).astype(np.int64)  # exact: 24 significant bits
    n = (-e).astype(np.int64)
    zero = m == 0
    M = np.where(zero, 0, M)
    n = np.where(zero, 0, n)
    if np.any((n < MIN_SHIFT) | (n > MAX_SHIFT)):
        raise QuantizationError(f"float32 requantization multiplier {m[(n < MIN_SHIFT) | (n > MAX_SHIFT)][:4]} "
                                f"is outside [2**-{MULTIPLIER_BITS + MAX_SHIFT}, 2**{-MIN_SHIFT - 1}]")
    return M, n


def multiplier_float32(M, n) -> np.ndarray:
    """The float32 multiplier an (M, n) pair stores; an error unless it is exactly a float32."""
    M = np.asarray(M, np.int64)
    m = np.ldexp(M.astype(np.float64), -(MULTIPLIER_BITS + np.asarray(n, np.int64)).astype(np.int32))
    m32 = m.astype(np.float32)
    if np.any(m32.astype(np.float64) != m):
        raise QuantizationError("float32 requantization: a multiplier (M, n) is not exactly a float32 value")
    return m32


def float32_scaled(acc, M, n) -> np.ndarray:
    """``rint(float32(float32(acc) * m32))`` (half to even) as int64, clamped to ``+-2**32`` like
    `fixed_point.multiply_by_quantized_multiplier`; m32 from (M, n), which must be float32 values."""
    v = np.asarray(acc).astype(np.float32) * multiplier_float32(M, n)  # float32 x float32, nearest even
    return np.rint(np.clip(v.astype(np.float64), -_R_LIMIT, _R_LIMIT)).astype(np.int64)


def requantize_float32(acc, M, n, zero_point, qmin, qmax, axis: int | None = None) -> np.ndarray:
    """``clamp(z_y + rint(float32(float32(acc) * m32)), qmin, qmax)`` as int64: `fixed_point.requantize`
    (same broadcasting and checks) with the float32 scaling step."""
    return requantize(acc, M, n, zero_point, qmin, qmax, axis=axis, scaled=float32_scaled)
