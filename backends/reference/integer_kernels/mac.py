"""Integer Conv / ConvTranspose / Gemm / MatMul: exact integer accumulation, then requantization.

``acc[c] = sum (q_x - zp_x) * q_w[c] + sum_w bias_words[w, c] << bias_shift[w]`` and
``q_y = clamp(zp_y + R(acc, M[c], n[c]), clamp_min[c], clamp_max[c])`` (fixed_point.requantize; the
clamps are per tensor, or per output channel for a fused clip with per-channel bounds), or with
``requantization[1] = 1`` ``rint(float32(float32(acc) * m32[c]))`` (float32_requantization).

Fast and exact: the sums are computed with float64 BLAS when that is exact. Proof:
every product ``(q_x - zp_x) * q_w`` is an integer with ``|p| <= X * W`` where X is the
largest centered input magnitude and W the largest ``|q_w|``; every partial sum that
any summation order (BLAS blocking, FMA, pairwise) forms is a sum of at most K such
products, an integer with magnitude ``<= K * X * W``. Integers up to 2**53 are exact in
float64 and the sum or product of two exact integers below 2**53 is computed exactly,
so if ``K * X * W < 2**53`` every float64 operation is exact and the float64 result is the
exact integer sum (the 8-bit case allows K up to 2.7e11, 16x16 up to 4.2e6). Otherwise
the same loops run in int64 (exact: |acc| < 2**63 is checked at derive time).
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.conv_kernels import conv2d, conv_transpose2d
from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.fixed_point import requantize
from npuc.quantization.float32_requantization import float32_scaled

#: float64 represents every integer of magnitude below this exactly
FLOAT64_EXACT_LIMIT = 1 << 53


def accumulation_dtype(reduction: int, x_bound: int, w_bound: int) -> np.dtype:
    """float64 when the exactness bound K * X * W < 2**53 holds (see module docstring), else int64."""
    return np.dtype(np.float64 if int(reduction) * int(x_bound) * int(w_bound) < FLOAT64_EXACT_LIMIT else np.int64)


def centered_bound(dtype: np.dtype, zero_point: int) -> int:
    """Largest |q - zp| over the integer type's range."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min) - int(zero_point)), abs(int(info.max) - int(zero_point)))


def _centered(q: np.ndarray, zp: int, dtype: np.dtype) -> np.ndarray:
    out = q.astype(dtype)
    if zp:
        out -= zp
    return out


def _finish(acc: np.ndarray, params: dict, axis: int, out_dtype: np.dtype) -> np.ndarray:
    """Exact accumulator (int64) + bias words, requantized and stored as out_dtype."""
    acc = acc.astype(np.int64) if acc.dtype != np.int64 else acc
    words, shifts = params["bias_words"], params["bias_shift"]
    if words.shape[0]:
        bias = np.left_shift(words, shifts[:, None]).sum(axis=0)
        shape = [1] * acc.ndim
        shape[axis] = bias.size
        acc += bias.reshape(shape)
    M, n = params["multiplier"], params["shift"]
    lo, hi = params["clamp_min"], params["clamp_max"]  # [1], or [C] for a per-channel fused clip
    per_channel = max(M.size, lo.size, hi.size) > 1
    float32 = "requantization" in params and int(params["requantization"][0]) == 1
    y = requantize(acc, M, n, params["output_zero_point"][0], lo if lo.size > 1 else lo[0],
                   hi if hi.size > 1 else hi[0], axis=axis if per_channel else None,
                   scaled=float32_scaled if float32 else None)
    return y.astype(out_dtype)


def _operands(inputs: list, params: dict, reduction: int):
    x, w = inputs[0], inputs[1]
    zps = params["input_zero_point"]
    zx = int(zps[0])
    zw = int(zps[1]) if zps.size > 1 else 0
    w_bound = centered_bound(w.dtype, zw) if zps.size > 1 else int(np.max(np.abs(w.astype(np.int64)), initial=0))
    dt = accumulation_dtype(reduction, centered_bound(x.dtype, zx), w_bound)
    return _centered(x, zx, dt), _centered(w, zw, dt)


@integer_kernel("Conv")
def conv(op, inputs, params, outs):
    w = inputs[1]
    a = op.attrs
    xc, wc = _operands(inputs, params, w.shape[1] * w.shape[2] * w.shape[3])
    # zero padding of the centered input == padding the integer input with its zero point
    acc = conv2d(xc, wc, None, a["strides"], a["pads"], a["dilations"], int(a["group"]))
    return [_finish(acc, params, 1, outs[0][1])]


@integer_kernel("ConvTranspose")
def conv_transpose(op, inputs, params, outs):
    w = inputs[1]
    a = op.attrs
    xc, wc = _operands(inputs, params, (w.shape[0] // int(a["group"])) * w.shape[2] * w.shape[3])
    acc = conv_transpose2d(xc, wc, None, a["strides"], a["pads"], a["dilations"], int(a["group"]),
                           a["output_padding"])
    return [_finish(acc, params, 1, outs[0][1])]


@integer_kernel("Gemm")
def gemm(op, inputs, params, outs):
    xc, wc = _operands(inputs, params, inputs[1].shape[1])
    return [_finish(np.matmul(xc, wc.T), params, -1, outs[0][1])]


@integer_kernel("MatMul")
def matmul(op, inputs, params, outs):
    b = inputs[1]
    xc, bc = _operands(inputs, params, b.shape[-2] if b.ndim > 1 else b.shape[0])
    acc = np.asarray(np.matmul(xc, bc))
    return [_finish(acc, params, -1, outs[0][1])]
