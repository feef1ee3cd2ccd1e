"""Float kernels for elementwise ops: broadcasting arithmetic, comparisons, Where, activations, Cast.

Every unary/binary kernel is written once as ``fn(op, inputs, out)`` and
registered twice: with ``out=None`` (fresh result) and with ``out=inputs[0]``
(in-place variant, used by the executor when it owns input 0 exclusively).
Float math stays in the input's precision (no float64 detours).
"""
from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from npuc.backends.reference.fused_activation import clamp
from npuc.backends.reference.kernels import register_kernel
from npuc.backends.reference.parallel import current_threads, parallel_for
from npuc.ir.dtypes import DType
from npuc.ir.op import Op

ElementwiseFn = Callable[[Op, list, "np.ndarray | None"], np.ndarray]


def _register(kind: str, fn: ElementwiseFn, inplace: bool = True) -> None:
    """Register `fn` as the kernel of `kind`, plus its in-place variant writing into inputs[0]."""

    def fresh(op: Op, inputs: list) -> list[np.ndarray]:
        return [fn(op, inputs, None)]

    def in_place(op: Op, inputs: list) -> list[np.ndarray]:
        return [fn(op, inputs, inputs[0])]

    fresh.__name__ = fresh.__qualname__ = f"{kind.lower()}_kernel"
    register_kernel(kind, fresh, "builtin", inplace=in_place if inplace else None)


def _scalar(value: float, dtype: np.dtype):
    """An attribute value as a scalar of the array's type (keeps float32 math in float32)."""
    return dtype.type(value)


# ------------------------------------------------------------------ binary
def binary_result_dtype(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """The IR rule: a's type unless only b is floating point."""
    a_float = np.issubdtype(a.dtype, np.floating)
    b_float = np.issubdtype(b.dtype, np.floating)
    return a.dtype if a_float or not b_float else b.dtype


def _coerce(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.dtype == b.dtype:
        return a, b
    dt = binary_result_dtype(a, b)
    if a.dtype != dt:
        a = a.astype(dt)
    if b.dtype != dt:
        b = b.astype(dt)
    return a, b


def _int_div(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Integer division truncating toward zero (C/ONNX semantics; numpy's // floors)."""
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    q += fix.astype(q.dtype)
    if out is not None:
        out[...] = q
        return out
    return q


def _binary(ufunc: np.ufunc) -> ElementwiseFn:
    def fn(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
        a, b = _coerce(inputs[0], inputs[1])
        return ufunc(a, b, out=out)

    return fn


def _div(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    a, b = _coerce(np.asarray(inputs[0]), np.asarray(inputs[1]))
    if np.issubdtype(a.dtype, np.integer):
        return _int_div(a, b, out)
    return np.divide(a, b, out=out)


def _pow(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    # ONNX Pow: the result has the base's type whatever the exponent's type.
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    if np.issubdtype(a.dtype, np.floating) and b.dtype != a.dtype:
        b = b.astype(a.dtype)
    r = np.power(a, b)
    if r.dtype != a.dtype:
        r = r.astype(a.dtype)
    if out is not None:
        out[...] = r
        return out
    return r


for _kind, _uf in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
                   ("Max", np.maximum), ("Min", np.minimum)):
    _register(_kind, _binary(_uf))
_register("Div", _div)
_register("Pow", _pow)


def _compare(ufunc: np.ufunc):
    def fn(op: Op, inputs: list) -> list[np.ndarray]:
        return [ufunc(inputs[0], inputs[1])]

    return fn


register_kernel("Equal", _compare(np.equal))
register_kernel("Less", _compare(np.less))
register_kernel("Greater", _compare(np.greater))


def where_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    cond, a, b = inputs
    r = np.where(cond.astype(bool, copy=False), a, b)
    if r.dtype != a.dtype:
        r = r.astype(a.dtype)
    return [r]


register_kernel("Where", where_kernel)


# ------------------------------------------------------------------- unary
def _ufunc(ufunc: np.ufunc) -> ElementwiseFn:
    def fn(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
        return ufunc(inputs[0], out=out)

    return fn


for _kind, _uf in (("Tanh", np.tanh), ("Exp", np.exp), ("Log", np.log), ("Sqrt", np.sqrt),
                   ("Reciprocal", np.reciprocal), ("Neg", np.negative), ("Abs", np.absolute),
                   ("Floor", np.floor), ("Ceil", np.ceil)):
    _register(_kind, _ufunc(_uf))


def _relu(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x = inputs[0]
    if np.issubdtype(x.dtype, np.floating):
        return clamp(x, 0, None, out=out)
    return np.maximum(x, _scalar(0, x.dtype), out=out)


def _clip(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x = inputs[0]
    lo, hi = op.attrs["min"], op.attrs["max"]
    if lo is None and hi is None:
        return x.copy() if out is None else out
    if np.issubdtype(x.dtype, np.floating):
        return clamp(x, lo, hi, out=out)
    y = x
    if lo is not None:
        y = np.maximum(y, _scalar(lo, x.dtype), out=out)
        out = y
    if hi is not None:
        y = np.minimum(y, _scalar(hi, x.dtype), out=out)
    return y


def _leaky_relu(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x = inputs[0]
    y = x.copy() if out is None else out
    np.multiply(y, _scalar(op.attrs["alpha"], x.dtype), out=y, where=y < 0)
    return y


def _prelu(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x, slope = inputs
    y = x.copy() if out is None else out
    np.multiply(y, slope.astype(x.dtype, copy=False), out=y, where=y < 0)
    return y


#: Elements per block for activations that take several passes (128 KiB of float32: stays in cache).
ACTIVATION_BLOCK_ELEMENTS = 1 << 15


def _blockwise(fn: Callable[[Op, np.ndarray, np.ndarray | None], np.ndarray]) -> ElementwiseFn:
    """Run a several-pass activation block by block over large contiguous arrays, so its
    temporaries stay in cache (one trip through memory instead of one per pass)."""

    def run(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
        x = inputs[0]
        blk = ACTIVATION_BLOCK_ELEMENTS
        if x.size < 4 * blk or not x.flags.c_contiguous or not np.issubdtype(x.dtype, np.floating):
            return fn(op, x, out)
        y = np.empty_like(x) if out is None else out
        xf, yf = x.reshape(-1), y.reshape(-1)
        for i in range(0, xf.size, blk):
            fn(op, xf[i:i + blk], yf[i:i + blk])
        return y

    return run


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + exp(-x)) in x's precision (exp overflow for very negative x correctly gives 0)."""
    y = np.negative(x, out=out)
    np.exp(y, out=y)
    y += _scalar(1, y.dtype)
    return np.reciprocal(y, out=y)


def _sigmoid(op: Op, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return sigmoid(x, out)


# Each compiled pass has a separate loop for the in-place case (same array in and out): with
# two arrays LLVM guards its vectorised loop with an overlap check, which an exact alias fails,
# falling back to a scalar loop ~6x slower.
@numba.njit(cache=True, nogil=True, inline="always")
def _unit_clamp(v, zero, one):  # pragma: no cover - compiled
    # comparisons, not min/max: NaN passes through as with np.maximum/np.minimum
    if v < zero:
        return zero
    if v > one:
        return one
    return v


@numba.njit(cache=True, nogil=True)
def _hard_sigmoid_nb(x, y, same, alpha, beta, zero, one):  # pragma: no cover - compiled
    if same:
        for i in range(y.size):
            y[i] = _unit_clamp(y[i] * alpha + beta, zero, one)
    else:
        for i in range(x.size):
            y[i] = _unit_clamp(x[i] * alpha + beta, zero, one)


@numba.njit(cache=True, nogil=True)
def _hard_swish_nb(x, y, same, sixth, half, zero, one):  # pragma: no cover - compiled
    if same:
        for i in range(y.size):
            v = y[i]
            y[i] = v * _unit_clamp(v * sixth + half, zero, one)
    else:
        for i in range(x.size):
            v = x[i]
            y[i] = v * _unit_clamp(v * sixth + half, zero, one)


def _one_pass(nb_fn, op: Op, x: np.ndarray, out: np.ndarray | None, a: float, b: float) -> np.ndarray | None:
    """One compiled pass over a contiguous float32/float64 array (the numpy form takes 4-5 passes
    and temporaries, which dominates on the small tensors of small models); None when it does not apply."""
    if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous or x.size == 0:
        return None
    y = np.empty_like(x) if out is None else out
    if not y.flags.c_contiguous:
        return None
    t = x.dtype.type
    xf, yf, args = x.reshape(-1), y.reshape(-1), (y is x, t(a), t(b), t(0), t(1))
    split_flat(xf.size, lambda i0, i1: nb_fn(xf[i0:i1], yf[i0:i1], *args))
    return y


#: Fewest elements per chunk when a one-pass elementwise kernel is shared with worker threads.
PARALLEL_MIN_ELEMENTS = 1 << 18


def split_flat(size: int, fn) -> None:
    """fn(start, end) over [0, size), in chunks shared with the executor's worker threads when
    the array is big (element i only depends on element i, so any split gives the same result)."""
    chunks = min(2 * current_threads(), size // PARALLEL_MIN_ELEMENTS)
    if chunks <= 1:
        fn(0, size)
        return
    step = -(-size // chunks)
    parallel_for(-(-size // step), lambda i: fn(i * step, min(size, (i + 1) * step)))


def _hard_sigmoid_kernel(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x = inputs[0]
    y = _one_pass(_hard_sigmoid_nb, op, x, out, op.attrs["alpha"], op.attrs["beta"])
    return _blockwise(_hard_sigmoid)(op, inputs, out) if y is None else y


def _hard_swish_kernel(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    x = inputs[0]
    y = _one_pass(_hard_swish_nb, op, x, out, 1.0 / 6.0, 0.5)
    return _blockwise(_hard_swish)(op, inputs, out) if y is None else y


def _hard_sigmoid(op: Op, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    y = np.multiply(x, _scalar(op.attrs["alpha"], x.dtype), out=out)
    y += _scalar(op.attrs["beta"], x.dtype)
    np.maximum(y, _scalar(0, x.dtype), out=y)
    return np.minimum(y, _scalar(1, x.dtype), out=y)


def _hard_swish(op: Op, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    gate = np.multiply(x, _scalar(1.0 / 6.0, x.dtype))
    gate += _scalar(0.5, x.dtype)
    np.maximum(gate, _scalar(0, x.dtype), out=gate)
    np.minimum(gate, _scalar(1, x.dtype), out=gate)
    return np.multiply(x, gate, out=out)


def _silu(op: Op, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.multiply(x, sigmoid(x), out=out)


# Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7, below float32 resolution of erf's range.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Vectorised error function (numpy has none) accurate to ~1.5e-7 absolute."""
    dt = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    ax = np.abs(x).astype(dt, copy=False)
    t = np.multiply(ax, dt.type(_ERF_P))
    t += dt.type(1)
    np.reciprocal(t, out=t)
    poly = np.multiply(t, dt.type(_ERF_A[4]))
    for coef in _ERF_A[3::-1]:
        poly += dt.type(coef)
        poly *= t
    e = np.square(ax)
    np.negative(e, out=e)
    np.exp(e, out=e)
    poly *= e
    y = np.subtract(dt.type(1), poly, out=poly)
    np.copysign(y, x, out=y)
    if out is not None:
        out[...] = y
        return out
    return y


def _erf(op: Op, inputs: list, out: np.ndarray | None) -> np.ndarray:
    return erf(inputs[0], out)


for _kind, _fn in (("Relu", _relu), ("Clip", _clip), ("LeakyRelu", _leaky_relu), ("Erf", _erf), ("PRelu", _prelu)):
    _register(_kind, _fn)
for _kind, _fn in (("Sigmoid", _sigmoid), ("SiLU", _silu)):
    _register(_kind, _blockwise(_fn))
_register("HardSigmoid", _hard_sigmoid_kernel)
_register("HardSwish", _hard_swish_kernel)


def identity_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """Identity and inference-time Dropout: the input itself (kernels never modify inputs, so no copy)."""
    return [inputs[0]]


register_kernel("Identity", identity_kernel)
register_kernel("Dropout", identity_kernel)


def cast_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    to = op.attrs["to"]
    if to is None:
        raise ValueError("Cast has no target type (attribute 'to' is None)")
    if isinstance(to, str):
        to = DType.parse(to)
    x = inputs[0]
    target = to.numpy
    if np.issubdtype(x.dtype, np.floating) and np.issubdtype(target, np.integer):
        x = np.trunc(x)  # ONNX truncates toward zero; be explicit before the integer conversion
    return [np.asarray(x).astype(target)]


register_kernel("Cast", cast_kernel)
