"""Bias quantization: 32-bit, single-word 8/16-bit with a shift, and 16-bit double-scale.

The bias always lives on the accumulator's scale ``s_acc[c] = s_in * s_w[c]`` with
zero point 0; what differs is how the integer is stored (docs/numerics.md, "Bias"):

- ``bits=32``: one int32 word ``b = clamp(round_half_even(bias / s_acc))``.
- ``bits=8|16, mode="single"``: one word ``w`` and one per-tensor shift ``k``;
  the accumulator adds ``w * 2**k``. ``k`` is the smallest shift that fits every word.
- ``bits=16, mode="double_scale"`` (Hailo's double_scale_initialization): two int16
  words with scales ``s_acc * 2**15`` and ``s_acc``: the accumulator adds
  ``hi * 2**15 + lo``, ``hi = b >> 15``, ``lo = b & 0x7FFF``, which is exact for any
  ``b`` in ``[-2**30, 2**30)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npuc.errors import QuantizationError

#: Weight of the high word of a double-scale bias.
DOUBLE_SCALE_SHIFT = 15


@dataclass(frozen=True, eq=False)
class QuantizedBias:
    """A bias ready for the accumulator.

    `words` are the stored integers: ``(b,)`` for single-word modes or ``(hi, lo)``
    for double scale; `shift` is the left shift of the (high) word; `values` is what
    the accumulator adds (int64); `scale` the accumulator scale per channel.
    """

    values: np.ndarray
    words: tuple[np.ndarray, ...]
    shift: int
    scale: np.ndarray
    bits: int
    mode: str

    def dequantize(self) -> np.ndarray:
        """The real bias these integers stand for (float64)."""
        return self.values.astype(np.float64) * self.scale


def bias_scale(input_scale: float, weight_scales) -> np.ndarray:
    """Accumulator scale per output channel: ``s_in * s_w[c]`` (float64)."""
    return float(input_scale) * np.atleast_1d(np.asarray(weight_scales, dtype=np.float64))


def quantize_bias(bias, input_scale: float, weight_scales, bits: int = 32,
                  mode: str = "single") -> QuantizedBias:
    """Quantize a 1-D bias (one value per output channel) onto the accumulator scale."""
    b = np.atleast_1d(np.asarray(bias, dtype=np.float64))
    if b.ndim != 1 or not np.all(np.isfinite(b)):
        raise QuantizationError("bias must be a finite 1-D array (one value per output channel)")
    scale = bias_scale(input_scale, weight_scales)
    if scale.size not in (1, b.size):
        raise QuantizationError(f"bias has {b.size} channels but {scale.size} weight scales were given")
    scale = np.broadcast_to(scale, b.shape).copy()
    if not np.all(scale > 0):
        raise QuantizationError("bias scale must be > 0")
    real = b / scale
    if mode == "double_scale":
        if bits != 16:
            raise QuantizationError("double_scale bias mode stores two 16-bit words; use bits=16")
        lim = 1 << (2 * DOUBLE_SCALE_SHIFT)
        v = np.clip(np.rint(real), -lim, lim - 1).astype(np.int64)
        hi = np.right_shift(v, DOUBLE_SCALE_SHIFT)
        lo = v & ((1 << DOUBLE_SCALE_SHIFT) - 1)
        return QuantizedBias(v, (hi.astype(np.int16), lo.astype(np.int16)), DOUBLE_SCALE_SHIFT, scale, bits, mode)
    if mode != "single":
        raise QuantizationError(f"unknown bias mode '{mode}' (use 'single' or 'double_scale')")
    if bits not in (8, 16, 32):
        raise QuantizationError(f"bias bit width must be 8, 16 or 32, got {bits}")
    qmax = (1 << (bits - 1)) - 1
    qmin = -qmax - 1
    shift = 0
    if bits < 32:
        peak = float(np.max(np.abs(real))) if real.size else 0.0
        if peak > qmax:
            frac, e = np.frexp(peak / qmax)
            shift = int(e) - 1 if frac == 0.5 else int(e)
            if np.max(np.abs(np.rint(np.ldexp(real, -shift)))) > qmax:
                shift += 1
        shift = min(shift, 31 - (bits - 1))
    word = np.clip(np.rint(np.ldexp(real, -shift)), qmin, qmax).astype(np.int64)
    storage = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    return QuantizedBias(np.left_shift(word, shift), (word.astype(storage),), shift, scale, bits, mode)
