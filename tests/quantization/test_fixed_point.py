"""Requantization arithmetic: hand-computed rounding cases and exact Python-int references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npuc.errors import QuantizationError
from npuc.quantization.fixed_point import (MAX_SHIFT, MIN_SHIFT, multiplier_value,
                                          multiply_by_quantized_multiplier, power_of_two_shift,
                                          quantize_multiplier, requantize, rounding_divide,
                                          rounding_right_shift, saturate)


def exact_R(acc: int, M: int, n: int) -> int:
    """The spec's definition with arbitrary-precision ints: round half up, then clamp to +-2**32."""
    s = 31 + n
    v = (acc * M + (1 << (s - 1))) >> s
    return max(-(1 << 32), min(1 << 32, v))


# (m, M, n, acc, expected R) — computed by hand in docs/numerics.md section 6.
HAND_CASES = [
    (0.5, 1 << 30, 0, 3, 2),
    (0.5, 1 << 30, 0, -3, -1),
    (0.5, 1 << 30, 0, 5, 3),
    (0.5, 1 << 30, 0, -5, -2),
    (2.0 ** -4, 1 << 30, 3, 24, 2),
    (2.0 ** -4, 1 << 30, 3, -24, -1),
    (2.0 ** -4, 1 << 30, 3, -25, -2),
    (2.0 ** -4, 1 << 30, 3, -1000, -62),
    (2.0 ** -4, 1 << 30, 3, 1000, 63),
    (0.3, 1288490189, 1, 5, 2),
    (0.3, 1288490189, 1, -5, -2),
    (0.3, 1288490189, 1, 1000, 300),
    (1.7, 1825361101, -1, -25, -43),
    (1.0, 1 << 30, -1, -7, -7),
]


@pytest.mark.parametrize("m,M,n,acc,expected", HAND_CASES)
def test_hand_computed_rounding(m, M, n, acc, expected):
    qM, qn = quantize_multiplier(m)
    assert (int(qM), int(qn)) == (M, n)
    assert int(multiply_by_quantized_multiplier(acc, M, n)) == expected
    assert exact_R(acc, M, n) == expected


def test_requantize_hand_case_with_zero_point_and_relu():
    M, n = quantize_multiplier(2.0 ** -4)
    assert int(requantize(-1000, M, n, 128, 0, 255)) == 66
    assert int(requantize(-1000, M, n, 128, 128, 255)) == 128
    assert int(requantize(10 ** 6, M, n, 128, 0, 255)) == 255


def test_rounding_right_shift_ties_go_up():
    x = np.array([3, -3, 5, -5, 6, -6, 7, -7])
    assert rounding_right_shift(x, 1).tolist() == [2, -1, 3, -2, 3, -3, 4, -3]
    assert rounding_right_shift(x, 0).tolist() == x.tolist()
    big = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min])
    assert rounding_right_shift(big, 63).tolist() == [1, -1]


def test_rounding_divide_and_saturate():
    assert rounding_divide(np.array([5, -5, 7, 1]), np.array([2, 2, 2, 3])).tolist() == [3, -2, 4, 0]
    assert saturate(np.array([-300, 5, 300]), -128, 127).tolist() == [-128, 5, 127]


def test_quantize_multiplier_edges_and_arrays():
    M, n = quantize_multiplier(np.array([0.0, 1e-30, 2.0 ** -70, 0.999999999999, 1.0, 2.0 ** 29]))
    assert M.dtype == np.int64 and M.shape == (6,)
    assert (int(M[0]), int(n[0])) == (0, 0)
    assert int(n[1]) == MAX_SHIFT and int(M[1]) == 0          # flushes to zero
    assert int(n[2]) == MAX_SHIFT and int(M[2]) == 1 << 23   # denormal mantissa, exact
    assert (int(M[3]), int(n[3])) == (1 << 30, -1)           # carry renormalised
    assert int(n[5]) == MIN_SHIFT
    normal = M[3:]
    assert np.all((normal >= 1 << 30) & (normal < 1 << 31))
    with pytest.raises(QuantizationError):
        quantize_multiplier(2.0 ** 30)
    with pytest.raises(QuantizationError):
        quantize_multiplier(-0.5)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0 ** -80, max_value=2.0 ** 29.9, allow_nan=False))
def test_quantize_multiplier_relative_error(m):
    M, n = quantize_multiplier(m)
    if m >= 2.0 ** -63:
        assert (1 << 30) <= int(M) < (1 << 31)
        assert abs(float(multiplier_value(M, n)) / m - 1.0) <= 2.0 ** -30
    else:
        assert abs(float(multiplier_value(M, n)) - m) <= 2.0 ** -94


acc_strategy = st.one_of(
    st.integers(-(1 << 15), 1 << 15),
    st.integers(-(1 << 31), (1 << 31) - 1),
    st.integers(-(1 << 47), 1 << 47),
    st.integers(-(1 << 63), (1 << 63) - 1),
)
mult_strategy = st.tuples(st.integers(0, (1 << 31) - 1), st.integers(MIN_SHIFT, MAX_SHIFT))


@settings(max_examples=400, deadline=None)
@given(st.lists(acc_strategy, min_size=1, max_size=16), mult_strategy)
def test_multiply_matches_python_int_reference(accs, mult):
    M, n = mult
    got = multiply_by_quantized_multiplier(np.array(accs, dtype=np.int64), M, n)
    assert got.tolist() == [exact_R(a, M, n) for a in accs]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(acc_strategy, mult_strategy), min_size=1, max_size=16),
       st.integers(-(1 << 15), 1 << 15), st.sampled_from([(0, 255), (-128, 127), (-32768, 32767), (0, 65535)]))
def test_requantize_elementwise_params_vs_reference(items, zp, bounds):
    acc = np.array([a for a, _ in items], dtype=np.int64)
    M = np.array([m for _, (m, _) in items], dtype=np.int64)
    n = np.array([s for _, (_, s) in items], dtype=np.int64)
    lo, hi = bounds
    got = requantize(acc, M, n, zp, lo, hi)
    want = [max(lo, min(hi, zp + exact_R(int(a), int(m), int(s)))) for a, m, s in zip(acc, M, n)]
    assert got.tolist() == want


def test_exhaustive_small_accumulators_against_reference():
    acc = np.arange(-70000, 70001, dtype=np.int64)
    for m in (0.5, 2.0 ** -8, 0.0123, 0.77, 1.0, 3.3, 1e-7):
        M, n = quantize_multiplier(m)
        got = multiply_by_quantized_multiplier(acc, M, n)
        s = 31 + int(n)
        ref = (acc.astype(object) * int(M) + (1 << (s - 1))) >> s
        assert np.array_equal(got, ref.astype(np.int64)), m


def test_per_channel_requantize_along_axis():
    acc = np.arange(-24, 24, dtype=np.int64).reshape(2, 3, 8)
    M, n = quantize_multiplier(np.array([0.5, 0.25, 2.0 ** -4]))
    got = requantize(acc, M, n, np.array([0, 10, -5]), -128, 127, axis=1)
    for c in range(3):
        want = [max(-128, min(127, [0, 10, -5][c] + exact_R(int(a), int(M[c]), int(n[c])))) for a in acc[:, c].ravel()]
        assert got[:, c].ravel().tolist() == want


def test_power_of_two_multiplier_is_a_pure_shift():
    acc = np.arange(-5000, 5000, dtype=np.int64) * 37
    for k in (0, 1, 4, 12, 40):
        M, n = quantize_multiplier(2.0 ** -k)
        assert int(M) == 1 << 30 and power_of_two_shift(2.0 ** -k) == k
        assert np.array_equal(multiply_by_quantized_multiplier(acc, M, n), rounding_right_shift(acc, k))
    assert power_of_two_shift(0.3) is None


def test_requantize_rejects_bad_inputs():
    with pytest.raises(QuantizationError):
        requantize(np.array([1.5]), 1 << 30, 0, 0, 0, 255)
    with pytest.raises(QuantizationError):
        requantize(np.array([1]), 1 << 30, 0, 0, 0, 1 << 40)
    with pytest.raises(QuantizationError):
        multiply_by_quantized_multiplier(np.array([1]), 1 << 31, 0)


def test_int64_only_scalar_mirror_in_numba_matches():
    """The spec's split, written as int64 scalar code under numba (as the simulator does), agrees."""
    numba = pytest.importorskip("numba")

    @numba.njit(cache=False)
    def scalar_R(acc, M, n):
        hi = acc >> 31
        lo = acc & 0x7FFFFFFF
        p = lo * M
        c = hi * M + (p >> 31)
        p_lo = p & 0x7FFFFFFF
        if n >= 1:
            r = (c >> n) + ((c >> (n - 1)) & 1)
        else:
            t = 31 + n
            c = min(max(c, -(2 ** 32 + 1)), 2 ** 32 + 1)
            r = c * (1 << -n) + (p_lo >> t) + ((p_lo >> (t - 1)) & 1)
        return min(max(r, -(2 ** 32)), 2 ** 32)

    @numba.njit(cache=False)
    def vector_R(a, M, n):
        out = np.empty_like(a)
        for i in range(a.size):
            out[i] = scalar_R(a[i], M[i], n[i])
        return out

    rng = np.random.default_rng(0)
    acc = rng.integers(-(2 ** 63), 2 ** 63 - 1, 50_000, dtype=np.int64)
    acc[::3] >>= 16
    acc[1::3] >>= 40
    M, n = quantize_multiplier(2.0 ** rng.uniform(-70, 29.9, acc.size))
    assert np.array_equal(vector_R(acc, M, n), multiply_by_quantized_multiplier(acc, M, n))
