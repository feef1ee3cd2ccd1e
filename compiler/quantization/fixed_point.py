"""Integer requantization exactly as docs/numerics.md specifies it.

Everything on the integer path is int64 arithmetic (shifts, adds, products of
operands below 2**31) so the numba simulator can mirror it line for line. The
one rounding rule for integer right shifts is round-half-up:
``round(x / 2**t) = floor((x + 2**(t-1)) / 2**t)``, computed overflow-free as
``(x >> t) + ((x >> (t-1)) & 1)``.

A real multiplier ``m`` is encoded as ``(M, n)`` with ``m ~= M * 2**-(31 + n)``;
``M`` is a Q31 mantissa normalised to ``[2**30, 2**31)`` (smaller only for
multipliers below ``2**-63``, and 0 for ``m == 0``) and ``n`` is in
``[MIN_SHIFT, MAX_SHIFT]`` (negative ``n`` means the multiplier is >= 1).
"""
from __future__ import annotations

import numpy as np

from npuc.errors import QuantizationError

#: Fraction bits of the multiplier mantissa M.
MULTIPLIER_BITS = 31
#: Smallest shift n: the total right shift 31 + n is at least 1 (multipliers below 2**30).
MIN_SHIFT = -30
#: Largest shift n: total right shift at most 93; smaller multipliers get a denormal M.
MAX_SHIFT = 62
#: Output ranges of requantize must lie in int32.
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

_MASK31 = np.int64((1 << 31) - 1)
_C_LIMIT = np.int64(1 << 32)
_C_CLAMP = np.int64((1 << 32) + 1)


def _as_int64(x: np.ndarray | int, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise QuantizationError(f"{what} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise QuantizationError(f"{what} does not fit int64")
    return arr.astype(np.int64, copy=False)


def _per_channel(v: np.ndarray | int, ndim: int, axis: int | None) -> np.ndarray:
    """Reshape a 1-D per-channel array so it broadcasts along `axis` of an ndim array."""
    arr = np.asarray(v)
    if axis is None or arr.ndim == 0:
        return arr
    if arr.ndim != 1:
        raise QuantizationError(f"per-channel parameters must be 1-D, got shape {arr.shape}")
    shape = [1] * max(ndim, 1)
    shape[axis % max(ndim, 1)] = arr.shape[0]
    return arr.reshape(shape)


def round_half_even(x: np.ndarray | float) -> np.ndarray:
    """Float -> int64 with round-half-to-even (the rule for every float->int step)."""
    return np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)


def rounding_right_shift(x: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """``floor(x / 2**shift + 1/2)`` (round half up) for int64 x and shift in [0, 63], overflow-free."""
    xa = _as_int64(x, "x")
    t = _as_int64(shift, "shift")
    if t.size and (int(t.min()) < 0 or int(t.max()) > 63):
        raise QuantizationError(f"rounding shift must be in [0, 63], got [{int(t.min())}, {int(t.max())}]")
    t1 = np.maximum(t - 1, 0)
    rounded = np.right_shift(xa, t) + (np.right_shift(xa, t1) & 1)
    return np.where(t > 0, rounded, xa)


def rounding_divide(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``floor(a / b + 1/2)`` (round half up) for int64 ``a`` and positive int64 ``b``.

    Computed as ``floor((2a + b) / (2b))``; callers keep ``|a| < 2**61`` and ``b < 2**61``.
    """
    aa = _as_int64(a, "dividend")
    bb = _as_int64(b, "divisor")
    if bb.size and int(bb.min()) <= 0:
        raise QuantizationError("rounding_divide needs a positive divisor")
    return np.floor_divide(2 * aa + bb, 2 * bb)


def saturate(x: np.ndarray | int, qmin: np.ndarray | int, qmax: np.ndarray | int) -> np.ndarray:
    """Clamp int64 values to ``[qmin, qmax]`` (saturation, never wrap-around)."""
    return np.minimum(np.maximum(_as_int64(x, "x"), qmin), qmax)


def quantize_multiplier(real_multiplier: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Encode real multiplier(s) ``m >= 0`` as ``(M, n)`` with ``m ~= M * 2**-(31 + n)``.

    ``m = f * 2**e`` with ``f`` in [0.5, 1) (frexp); ``M = round_half_even(f * 2**31)``
    (exact float64 scaling, so deterministic); a carry to ``2**31`` renormalises to
    ``2**30`` with ``e + 1``; ``n = -e``. Multipliers below ``2**-63`` keep ``n = 62``
    and a denormal ``M = round_half_even(m * 2**93)`` (possibly 0). Works elementwise
    on arrays (per-channel multipliers); returns int64 arrays of the input's shape.
    """
    m = np.asarray(real_multiplier, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise QuantizationError(f"real multipliers must be finite and >= 0, got {m[~(np.isfinite(m) & (m >= 0))][:4]}")
    f, e = np.frexp(m)
    mant = np.rint(np.ldexp(f, MULTIPLIER_BITS)).astype(np.int64)
    e = e.astype(np.int64)
    carry = mant == (1 << MULTIPLIER_BITS)
    mant = np.where(carry, np.int64(1 << (MULTIPLIER_BITS - 1)), mant)
    e = np.where(carry, e + 1, e)
    n = -e
    if np.any(n < MIN_SHIFT):
        raise QuantizationError(
            f"real multiplier {float(m.max()):.6g} is too large (must be < 2**30): "
            "the input/output scales of this layer are inconsistent")
    tiny = n > MAX_SHIFT
    if np.any(tiny):
        denormal = np.rint(np.ldexp(np.where(tiny, m, 0.0), MULTIPLIER_BITS + MAX_SHIFT)).astype(np.int64)
        mant = np.where(tiny, denormal, mant)
        n = np.where(tiny, np.int64(MAX_SHIFT), n)
    zero = m == 0
    mant = np.where(zero, np.int64(0), mant)
    n = np.where(zero, np.int64(0), n)
    return mant, n


def multiplier_value(M: np.ndarray | int, n: np.ndarray | int) -> np.ndarray:
    """The real value ``M * 2**-(31 + n)`` an encoded multiplier stands for (float64)."""
    return np.ldexp(np.asarray(M, dtype=np.float64), -(MULTIPLIER_BITS + np.asarray(n, dtype=np.int64)))


def multiply_by_quantized_multiplier(acc: np.ndarray | int, M: np.ndarray | int,
                                     n: np.ndarray | int) -> np.ndarray:
    """``clamp(floor(acc * M / 2**(31+n) + 1/2), -2**32, 2**32)`` for any int64 ``acc``.

    Only int64 arithmetic (docs/numerics.md, "Overflow-free multiply"):
    ``acc = hi*2**31 + lo`` (``lo`` in [0, 2**31)), ``lo*M = p_hi*2**31 + p_lo``,
    ``c = hi*M + p_hi`` so ``acc*M = c*2**31 + p_lo`` exactly with ``|c| < 2**63``.
    For ``n >= 1`` the rounded value is ``rounding_right_shift(c, n)``. For ``n <= 0``
    it is ``c * 2**-n + rounding_right_shift(p_lo, 31 + n)``, evaluated with ``c``
    first clamped to ``+-(2**32 + 1)`` (which cannot change the final clamp). The final
    clamp to ``+-2**32`` is harmless: outputs and zero points live in int32.
    """
    a = _as_int64(acc, "accumulator")
    Ma = _as_int64(M, "multiplier")
    na = _as_int64(n, "shift")
    if Ma.size and (int(Ma.min()) < 0 or int(Ma.max()) > (1 << MULTIPLIER_BITS) - 1):
        raise QuantizationError("multiplier mantissa M must be in [0, 2**31)")
    if na.size and (int(na.min()) < MIN_SHIFT or int(na.max()) > MAX_SHIFT):
        raise QuantizationError(f"multiplier shift n must be in [{MIN_SHIFT}, {MAX_SHIFT}]")
    hi = np.right_shift(a, 31)
    lo = a & _MASK31
    p = lo * Ma
    c = hi * Ma + np.right_shift(p, 31)
    p_lo = p & _MASK31
    # n >= 1: the low part p_lo < 2**31 never changes floor((c*2**31 + p_lo + 2**(30+n)) / 2**(31+n)).
    n_pos = np.maximum(na, 1)
    right = np.right_shift(c, n_pos) + (np.right_shift(c, n_pos - 1) & 1)
    # n <= 0: result = c * 2**L + round(p_lo / 2**(31 - L)), L = -n in [0, 30].
    L = np.clip(-na, 0, 30)
    t = 31 - L
    c_sat = np.clip(c, -_C_CLAMP, _C_CLAMP)
    left = c_sat * np.left_shift(np.int64(1), L) + np.right_shift(p_lo, t) + (np.right_shift(p_lo, t - 1) & 1)
    return np.clip(np.where(na >= 1, right, left), -_C_LIMIT, _C_LIMIT)


def requantize(acc: np.ndarray | int, M: np.ndarray | int, n: np.ndarray | int,
               zero_point: np.ndarray | int, qmin: np.ndarray | int, qmax: np.ndarray | int,
               axis: int | None = None, scaled=None) -> np.ndarray:
    """``clamp(zero_point + multiply_by_quantized_multiplier(acc, M, n), qmin, qmax)`` as int64.

    `M`, `n`, `zero_point`, `qmin`, `qmax` broadcast against `acc`; with `axis` given,
    1-D arrays among them are per-channel along that axis of `acc`. `qmin`/`qmax` are
    the output range intersected with any fused activation clamp; they must lie in int32.
    `scaled(acc, M, n)` replaces the scaling step (float32 requantization, docs/numerics.md 6a);
    it must return int64 values clamped to ``+-2**32`` as multiply_by_quantized_multiplier does.
    """
    a = _as_int64(acc, "accumulator")
    lo = _as_int64(qmin, "qmin")
    hi = _as_int64(qmax, "qmax")
    if lo.size and hi.size and (int(lo.min()) < INT32_MIN or int(hi.max()) > INT32_MAX):
        raise QuantizationError("requantize output range must lie inside int32")
    if np.any(lo > hi):
        raise QuantizationError(f"empty output range: qmin {lo} > qmax {hi}")
    nd = a.ndim
    Mv, nv, zv = (_per_channel(v, nd, axis) for v in (M, n, zero_point))
    lo, hi = _per_channel(lo, nd, axis), _per_channel(hi, nd, axis)
    r = (scaled or multiply_by_quantized_multiplier)(a, Mv, nv)
    return saturate(r + _as_int64(zv, "zero point"), lo, hi)


def power_of_two_shift(real_multiplier: float) -> int | None:
    """If ``m == 2**-k`` exactly for k in [0, 63], return the pure right shift k, else None.

    For such multipliers ``quantize_multiplier`` gives ``M = 2**30`` and
    ``requantize`` equals ``rounding_right_shift(acc, k)`` (k >= 0), a fast path.
    """
    m = float(real_multiplier)
    if m <= 0:
        return None
    f, e = np.frexp(m)
    if f != 0.5:
        return None
    k = 1 - int(e)
    return k if 0 <= k <= 63 else None
