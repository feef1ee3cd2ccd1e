"""Float kernels for BatchNormalization (inference), Softmax and LogSoftmax."""
from __future__ import annotations

import numba
import numpy as np

from npuc.backends.reference.kernels import kernel, preparer
from npuc.backends.reference.op_cache import derived
from npuc.ir.op import Op


@kernel("BatchNormalization")
def batchnorm_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """(x - mean) / sqrt(var + eps) * scale + bias over axis 1, as one multiply-add per element."""
    x, scale, bias, mean, var = inputs
    dt = x.dtype
    eps = float(op.attrs["epsilon"])
    shape = (1, -1) + (1,) * (x.ndim - 2)

    mul, add = derived(op, f"bn{eps}{dt}{x.ndim}", inputs[1:], lambda: _bn_factors(dt, eps, shape, *inputs[1:]))
    if dt in (np.float32, np.float64) and x.flags.c_contiguous and x.ndim >= 2 and x.size:
        # one compiled pass instead of two broadcast passes (same two roundings per element)
        y = np.empty_like(x)
        n, c = x.shape[0], x.shape[1]
        _scale_shift_nb(x.reshape(n, c, -1), mul.reshape(-1), add.reshape(-1), y.reshape(n, c, -1))
        return [y]
    y = np.multiply(x, mul)
    y += add
    return [y]


def _bn_factors(dt: np.dtype, eps: float, shape, scale, bias, mean, var) -> tuple[np.ndarray, np.ndarray]:
    mul = scale.astype(dt) / np.sqrt(var.astype(dt) + dt.type(eps))
    add = bias.astype(dt) - mean.astype(dt) * mul
    return mul.reshape(shape), add.reshape(shape)


@preparer("BatchNormalization")
def prepare_batchnorm(op: Op, inputs):
    """Factors folded once at plan time when the statistics are constants."""
    x_t = inputs[0]
    if x_t is None or any(t is None or not t.is_const for t in inputs[1:5]) or len(x_t.shape) < 2:
        return None
    dt = np.dtype(x_t.dtype.numpy)
    if dt not in (np.float32, np.float64):
        return None
    srcs = [t.data for t in inputs[1:5]]
    shape = (1, -1) + (1,) * (len(x_t.shape) - 2)
    mul, add = _bn_factors(dt, float(op.attrs["epsilon"]), shape, *srcs)
    mul, add = np.ascontiguousarray(mul.reshape(-1)), np.ascontiguousarray(add.reshape(-1))
    xshape = tuple(x_t.shape)
    n, c = xshape[0], xshape[1]

    def batchnorm(op_: Op, ins: list) -> list[np.ndarray]:
        x = ins[0]
        if (x.shape != xshape or x.dtype != dt or not x.flags.c_contiguous or x.size == 0
                or any(a is not b for a, b in zip(ins[1:5], srcs))):
            return batchnorm_kernel(op_, ins)
        y = np.empty_like(x)
        _scale_shift_nb(x.reshape(n, c, -1), mul, add, y.reshape(n, c, -1))
        return [y]

    return batchnorm


@numba.njit(cache=True, nogil=True)
def _scale_shift_nb(x, mul, add, y):  # pragma: no cover - compiled
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            m, a = mul[c], add[c]
            xr, yr = x[b, c], y[b, c]
            for i in range(xr.shape[0]):
                yr[i] = xr[i] * m + a


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    y = np.subtract(x, np.max(x, axis=axis, keepdims=True))
    return y


@kernel("Softmax")
def softmax_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """exp(x - max) / sum(exp(x - max)) along one axis."""
    axis = int(op.attrs["axis"])
    y = _shifted(inputs[0], axis)
    np.exp(y, out=y)
    y /= np.sum(y, axis=axis, keepdims=True)
    return [y]


@kernel("LogSoftmax")
def log_softmax_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """x - max - log(sum(exp(x - max))) along one axis."""
    axis = int(op.attrs["axis"])
    y = _shifted(inputs[0], axis)
    y -= np.log(np.sum(np.exp(y), axis=axis, keepdims=True))
    return [y]
