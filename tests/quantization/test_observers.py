"""Observers: merge == sequential == whole set, long-tail clipping, KL vs a plain reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npuc.errors import QuantizationError
from npuc.quantization.observers import (METHODS, Histogram, KLObserver, MinMaxObserver, make_observer)
from npuc.quantization.observers.histogram import BINS
from npuc.quantization.observers.kl import kl_threshold
from npuc.quantization.schemes import dequantize, params_from_range, quantize


def _batches(draw_seed: int, sizes: list[int], scales: list[float], channels: int | None) -> list[np.ndarray]:
    rng = np.random.default_rng(draw_seed)
    out = []
    for n, s in zip(sizes, scales):
        shape = (n, channels, 3) if channels else (n, 5)
        out.append((rng.standard_t(2.5, size=shape) * s).astype(np.float32))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), sizes=st.lists(st.integers(1, 40), min_size=2, max_size=5),
       scales=st.lists(st.sampled_from([1e-6, 1e-3, 0.5, 1.0, 7.0, 300.0, 1e5]), min_size=5, max_size=5),
       method=st.sampled_from(METHODS), per_channel=st.booleans())
def test_merged_observers_equal_whole_set(seed, sizes, scales, method, per_channel):
    axis = 1 if per_channel else None
    batches = _batches(seed, sizes, scales, 4 if per_channel else None)
    sequential = make_observer(method, axis)
    for b in batches:
        sequential.observe(b)
    whole = make_observer(method, axis)
    whole.observe(np.concatenate(batches, axis=0))
    cut = len(batches) // 2
    left, right = make_observer(method, axis), make_observer(method, axis)
    for b in batches[:cut]:
        left.observe(b)
    for b in batches[cut:]:
        right.observe(b)
    merged = left.merge(right)
    if method == "minmax":
        for o in (sequential, merged):
            assert np.array_equal(o.min, whole.min) and np.array_equal(o.max, whole.max)
    else:
        assert sequential.hist.equals(whole.hist) and merged.hist.equals(whole.hist)
    for kw in ({"bits": 8, "signed": False, "symmetric": False}, {"bits": 8, "signed": True, "symmetric": True}):
        want = np.asarray(whole.range(**kw))
        assert np.array_equal(np.asarray(sequential.range(**kw)), want)
        assert np.array_equal(np.asarray(merged.range(**kw)), want)


def test_histogram_growth_equals_direct_binning_and_memory_is_flat():
    rng = np.random.default_rng(5)
    h = Histogram(1)
    data = []
    for k in range(30):
        x = rng.normal(size=(1, 1000)) * 2.0 ** (k % 12)
        data.append(x)
        h.add(x)
        assert h.counts.shape == (1, BINS)
    all_x = np.concatenate(data, axis=1)
    w = float(h.bin_width()[0])
    direct = np.bincount((np.floor(all_x[0] / w) + BINS // 2).astype(np.int64), minlength=BINS)
    assert np.array_equal(direct, h.counts[0]) and h.total[0] == all_x.size
    assert float(np.abs(all_x).max()) < 2.0 ** h.exponent[0] <= 2 * float(np.abs(all_x).max())


def _quant_mse(x: np.ndarray, rng_min: float, rng_max: float, symmetric: bool) -> float:
    qp = params_from_range(rng_min, rng_max, "symmetric" if symmetric else "asymmetric", 8, symmetric)
    return float(np.mean((dequantize(quantize(x, qp), qp, np.float64) - x) ** 2))


@pytest.mark.parametrize("symmetric", [False, True])
def test_long_tail_mse_and_percentile_beat_minmax(symmetric):
    rng = np.random.default_rng(11)
    x = rng.laplace(size=400_000)  # long exponential tails: max ~ 13, 99.99% ~ 8.5
    results = {}
    for method in ("minmax", "percentile", "mse"):
        obs = make_observer(method)
        for part in np.array_split(x, 8):
            obs.observe(part)
        lo, hi = obs.range(8, symmetric, symmetric)
        results[method] = (lo, hi, _quant_mse(x, lo, hi, symmetric))
    mm_lo, mm_hi, mm_err = results["minmax"]
    for method in ("percentile", "mse"):
        lo, hi, err = results[method]
        assert hi - lo < 0.8 * (mm_hi - mm_lo), method  # the tail is clipped
        assert err < mm_err, (method, err, mm_err)


def test_post_relu_tail_is_clipped_by_kl_and_mse():
    rng = np.random.default_rng(2)
    x = np.maximum(rng.laplace(size=300_000), 0.0)
    ranges, errs = {}, {}
    for method in ("minmax", "kl", "mse"):
        obs = make_observer(method)
        obs.observe(x)
        ranges[method] = obs.range(8, False, False)
        assert ranges[method][0] == 0.0
        errs[method] = _quant_mse(x, *ranges[method], False)
    assert ranges["kl"][1] < ranges["minmax"][1] and ranges["mse"][1] < ranges["minmax"][1]
    assert ranges["kl"][1] > np.quantile(x, 0.999)  # clips the tail, keeps the body
    assert errs["mse"] < errs["minmax"]


def kl_reference(hist: list[int], levels: int) -> int:
    """TensorRT entropy calibration written plainly: returns the best number of kept bins."""
    n = max(i for i, c in enumerate(hist) if c > 0) + 1
    if n <= levels:
        return n
    best_i, best_kl = None, math.inf
    for i in range(levels, n + 1):
        p = list(hist[:i])
        p[i - 1] += sum(hist[i:n])
        m = i // levels
        q = [0.0] * i
        for j in range(levels):
            start = j * m
            stop = i if j == levels - 1 else start + m
            total = sum(hist[start:stop])
            nonzero = sum(1 for b in range(start, stop) if p[b] > 0)
            for b in range(start, stop):
                if p[b] > 0:
                    q[b] = total / nonzero if total > 0 else 1e-4  # smoothing of empty tail levels
        sp, sq = sum(p), sum(q)
        kl = 0.0
        for b in range(i):
            if p[b] > 0:
                if q[b] == 0:
                    kl = math.inf
                    break
                kl += (p[b] / sp) * math.log((p[b] / sp) / (q[b] / sq))
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i


@pytest.mark.parametrize("levels", [128, 256])
def test_kl_matches_plain_reference_on_fixed_histogram(levels):
    rng = np.random.default_rng(123)
    # A fixed |x| histogram: exponential decay with holes and a far outlier cluster.
    hist = np.floor(5000.0 * np.exp(-np.arange(1024) / 60.0) * rng.uniform(0.5, 1.5, 1024)).astype(np.int64)
    hist[300:310] = 0
    hist[700] = 3
    hist[701:] = 0
    hist[1000] = 1
    want = kl_reference(hist.tolist(), levels)
    got = kl_threshold(hist, 1.0, levels)
    assert got == float(want)
    assert levels < want < 1001  # it clips


def test_kl_keeps_range_when_grid_is_finer_than_histogram():
    obs = KLObserver()
    obs.observe(np.random.default_rng(0).normal(size=10_000))
    lo, hi = obs.range(16, True, True)
    assert (lo, hi) == (float(obs.hist.min[0]), float(obs.hist.max[0]))


def test_observer_errors():
    with pytest.raises(QuantizationError):
        MinMaxObserver().range()
    obs = MinMaxObserver(axis=1)
    obs.observe(np.zeros((2, 3)))
    with pytest.raises(QuantizationError):
        obs.observe(np.zeros((2, 4)))
    with pytest.raises(QuantizationError):
        obs.merge(MinMaxObserver(axis=0))
    with pytest.raises(QuantizationError):
        make_observer("kl").merge(make_observer("mse"))
    with pytest.raises(QuantizationError):
        make_observer("percentile").observe(np.array([1.0, np.nan]))
    with pytest.raises(QuantizationError):
        make_observer("median")


def test_per_channel_ranges_are_arrays():
    x = np.stack([np.linspace(-1, 1, 100), np.linspace(0, 5, 100)], axis=1)
    for method in METHODS:
        obs = make_observer(method, axis=1)
        obs.observe(x)
        lo, hi = obs.range(8, False, False)
        assert lo.shape == (2,) and hi.shape == (2,)
        assert np.all(lo >= [-1, 0]) and np.all(hi <= [1, 5])


def _numpy_histogram(batches: list[np.ndarray], axis: int | None) -> Histogram:
    """The histogram of docs/numerics.md section 12 written with plain numpy (float64 copies, per batch)."""
    h = None
    for b in batches:
        x = np.asarray(b, dtype=np.float64)
        rows = x.reshape(1, -1) if axis is None else np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
        if h is None:
            h = Histogram(rows.shape[0])
        _, needed = np.frexp(np.max(np.abs(rows), axis=1))
        h._grow(np.maximum(h.exponent, np.maximum(needed.astype(np.int64), -40)))
        idx = np.floor(np.ldexp(rows, (10 - h.exponent)[:, None])).astype(np.int64) + BINS // 2
        for r in range(rows.shape[0]):
            h.counts[r] += np.bincount(idx[r], minlength=BINS)
        h.min, h.max = np.minimum(h.min, rows.min(axis=1)), np.maximum(h.max, rows.max(axis=1))
        h.total += rows.shape[1]
    return h


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("axis", [None, 1, 0, -1])
def test_kernel_histogram_equals_numpy_formulation(dtype, axis):
    rng = np.random.default_rng(7)
    batches = []
    for k, scale in enumerate([1e-3, 1.0, 0.25, 40.0, 3.0, 1e-30]):
        x = rng.standard_t(2.0, size=(2, 3, 5, 7)) * scale
        x.flat[::11] = 0.0
        x.flat[1::13] = -0.0
        x.flat[2] = -np.finfo(dtype).smallest_subnormal  # tiny negatives go to bin 1023, not 1024
        x.flat[3] = np.finfo(dtype).smallest_subnormal
        x.flat[4] = 2.0 ** (k - 3)  # exactly on a power of two: grows the range
        x.flat[5] = -(2.0 ** (k - 2))
        batches.append(x.astype(dtype))
    obs = make_observer("kl", axis)
    for b in batches:
        obs.observe(b)
    assert obs.hist.equals(_numpy_histogram(batches, axis))


def test_non_finite_data_leaves_the_observer_unchanged():
    rng = np.random.default_rng(3)
    for method in METHODS:
        for axis in (None, 1):
            obs = make_observer(method, axis)
            obs.observe(rng.normal(size=(2, 4, 6)).astype(np.float32))
            before = obs.copy()
            for bad in (np.nan, np.inf, -np.inf):
                x = rng.normal(size=(2, 4, 6)).astype(np.float32) * 100.0  # would grow the range
                x[1, 2, 3] = bad
                with pytest.raises(QuantizationError, match="NaN or infinity"):
                    obs.observe(x)
                if method == "minmax":
                    assert np.array_equal(obs.min, before.min) and np.array_equal(obs.max, before.max)
                else:
                    assert obs.hist.equals(before.hist)


def test_row_edges_equal_edges_rows():
    h = Histogram(3)
    h.add(np.array([[0.1, -3.0], [1e-9, 2e-9], [7e5, -1.0]]))
    for r in range(3):
        assert np.array_equal(h.row_edges(r), h.edges()[r])


def _random_folded_histograms(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(count):
        size = int(rng.integers(1000, 100_000))
        x = [np.abs(rng.laplace(size=size)), np.abs(rng.standard_t(2.0 + s % 5, size=size)),
             np.maximum(rng.normal(size=size), 0) ** 2, np.abs(rng.normal(size=size))][s % 4]
        x[:int(rng.integers(1, 20))] *= 30  # a few outliers
        n = int(rng.integers(130, 1024))
        h = np.bincount(np.minimum((x / x.max() * (n - 0.01)).astype(np.int64), 1023), minlength=1024)
        if s % 3 == 0:  # holes: plateaus of equal divergences (ties broken to the smaller threshold)
            a = int(rng.integers(0, n))
            h[a:a + int(rng.integers(1, 200))] = 0
        out.append(h)
    return out


@pytest.mark.parametrize("levels", [128, 256])
def test_kl_threshold_is_exactly_the_numpy_formulations_argmin(levels):
    from npuc.quantization.observers.kl import kl_divergences, kl_divergences_numpy
    for h in _random_folded_histograms(60, seed=levels):
        cand, ref = kl_divergences_numpy(h, levels)
        fast_cand, fast = kl_divergences(h, levels)
        assert np.array_equal(cand, fast_cand)
        assert np.array_equal(np.isfinite(ref), np.isfinite(fast))
        fin = np.isfinite(ref)
        np.testing.assert_allclose(fast[fin], ref[fin], rtol=0, atol=1e-11)
        assert kl_threshold(h, 0.5, levels) == float(cand[int(np.argmin(ref))]) * 0.5
