"""Softmax in fixed point (docs/numerics.md, "Softmax").

With ``d = max_j(q_j) - q_i`` (an integer in [0, 2**bits_in)), a table gives
``T[d] = round_half_even(2**EXP_BITS * exp(-beta * s_in * d))`` (so ``T[0] = 2**20``),
``S = sum_j T[d_j]`` in int64 and the output is
``clamp(zp_out + rounding_divide(T[d_i] * 2**bits_out, S), qmin, qmax)``.
The output grid is fixed: scale ``2**-bits_out`` and zero point ``qmin`` (so real
0 is ``qmin`` and real 1 saturates to ``qmax``); the input zero point cancels.
"""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.quant_params import QuantParams
from npuc.quantization.fixed_point import rounding_divide, saturate
from npuc.quantization.lut import MAX_LUT_BITS

#: Fraction bits of the exp table.
EXP_BITS = 20


def softmax_output_params(bits: int = 8, signed: bool = False) -> QuantParams:
    """The fixed output QuantParams of a quantized softmax: scale 2**-bits, zero point qmin."""
    qmin = -(1 << (bits - 1)) if signed else 0
    return QuantParams.per_tensor(2.0 ** -bits, qmin, bits, signed)


def exp_table(qp_in: QuantParams, beta: float = 1.0) -> np.ndarray:
    """``T[d] = round_half_even(2**20 * exp(-beta * s_in * d))`` for d in [0, 2**bits_in) (int64)."""
    if qp_in.is_per_channel or qp_in.bits > MAX_LUT_BITS:
        raise QuantizationError(f"softmax needs per-tensor input of at most {MAX_LUT_BITS} bits")
    if not beta > 0:
        raise QuantizationError("softmax beta must be > 0")
    d = np.arange(1 << qp_in.bits, dtype=np.float64)
    return np.rint(np.ldexp(np.exp(-float(beta) * qp_in.scale[0] * d), EXP_BITS)).astype(np.int64)


def softmax(q: np.ndarray, qp_in: QuantParams, table: np.ndarray, qp_out: QuantParams,
            axis: int = -1) -> np.ndarray:
    """Integer softmax along `axis` (int64 result on qp_out's grid)."""
    if qp_out != softmax_output_params(qp_out.bits, qp_out.signed):
        raise QuantizationError(f"softmax output must use {softmax_output_params(qp_out.bits, qp_out.signed)}, got {qp_out}")
    if table.shape != (1 << qp_in.bits,):
        raise QuantizationError(f"softmax exp table has {table.shape} entries, expected {1 << qp_in.bits}")
    qa = np.asarray(q).astype(np.int64)
    d = np.max(qa, axis=axis, keepdims=True) - qa
    e = table[d]
    s = np.sum(e, axis=axis, keepdims=True)
    y = rounding_divide(e << qp_out.bits, s)
    return saturate(y + qp_out.zero_point[0], qp_out.qmin, qp_out.qmax)
