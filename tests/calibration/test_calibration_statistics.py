"""Statistics collection: observers see every activation, keep nothing, and merge like the whole set."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from calib_fixtures import conv_model

from npuc.backends.reference.executor import Executor
from npuc.calibration.statistics import (
    OBSERVER, OBSERVER_PER_CHANNEL, ObserverConfig, StatisticsCollector, chunks, collect_statistics,
    observed_tensors, prefetched,
)
from npuc.errors import CalibrationError
from npuc.ir.quant_params import QuantParams


def items(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(f"item{i}", {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}) for i in range(n)]


def test_observed_tensors_are_float_activations_without_fixed_encodings():
    g = conv_model()
    assert [t.name for t in observed_tensors(g)] == ["x", "conv", "relu", "pool"]
    g.tensor("relu").meta["fixed_quant"] = QuantParams.per_tensor(0.1, 0, 8, False)
    assert [t.name for t in observed_tensors(g)] == ["x", "conv", "pool"]


def test_minmax_ranges_equal_numpy_over_all_items():
    g = conv_model()
    data = items(5)
    col = collect_statistics(g, data, ObserverConfig("minmax"), batch_size=2)
    ex = Executor(g)
    conv_vals = [ex.run(f, outputs=["conv"])["conv"] for _, f in data]
    # conv is read by a Relu alone: observed after the clamp (its negative values never reach anyone).
    # Batches of 2 vs single items: BLAS may sum in another order (threads), so equal within float32 rounding.
    np.testing.assert_allclose(col.observers["conv"].range(),
                               (max(0.0, float(np.min(conv_vals))), float(np.max(conv_vals))), rtol=1e-6)
    raw = collect_statistics(g, data, ObserverConfig("minmax", reader_clamp=False), batch_size=2)
    np.testing.assert_allclose(raw.observers["conv"].range(),
                               (float(np.min(conv_vals)), float(np.max(conv_vals))), rtol=1e-6)
    xs = np.stack([f["x"] for _, f in data])
    assert col.observers["x"].range() == (float(xs.min()), float(xs.max()))
    assert col.items == 5


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse", "kl"])
def test_two_halves_merged_equal_the_whole_set(method):
    g = conv_model()
    data = items(6, seed=1)
    cfg = ObserverConfig(method, per_channel=True)
    whole = collect_statistics(g, data, cfg)
    merged = collect_statistics(g, data[:2], cfg).merge(collect_statistics(g, data[2:], cfg))
    assert merged.items == whole.items
    for name in whole.observers:
        assert merged.observers[name].range(8) == whole.observers[name].range(8), name
    for name in whole.per_channel:
        a, b = merged.per_channel[name].range(8), whole.per_channel[name].range(8)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_no_activation_is_kept_after_its_observers_saw_it():
    g = conv_model()
    col = StatisticsCollector(g, ObserverConfig("percentile"))
    refs = []

    def spy(tensor, value):
        col.on_tensor(tensor, value)
        if tensor.name in ("conv", "relu"):
            refs.append(weakref.ref(value))

    ex = Executor(g)
    for _, feeds in items(3):
        ex.run(feeds, on_tensor=spy)
    gc.collect()
    assert len(refs) == 6 and all(r() is None for r in refs)


def test_attach_stores_observers_and_replaces_old_ones():
    g = conv_model()
    g.tensor("conv").meta[OBSERVER] = "stale"
    col = collect_statistics(g, items(2), ObserverConfig("minmax", per_channel=True))
    assert col.attach(g) == 4
    assert g.tensor("conv").meta[OBSERVER] is col.observers["conv"]
    assert g.tensor("conv").meta[OBSERVER_PER_CHANNEL].axis == 1
    lo, hi = g.tensor("conv").meta[OBSERVER_PER_CHANNEL].range()
    assert lo.shape == (4,) and np.all(lo <= hi)


def test_nan_activation_names_tensor_and_item():
    g = conv_model()
    bad = {"x": np.full((1, 3, 8, 8), np.inf, np.float32)}
    with pytest.raises(CalibrationError, match="tensor 'x' on calibration item 'bad.npy'"):
        collect_statistics(g, [("bad.npy", bad)], ObserverConfig())


def test_unknown_method_and_bad_percentile():
    with pytest.raises(CalibrationError, match="unknown calibration method 'entropy'"):
        ObserverConfig("entropy")
    with pytest.raises(Exception, match="percentile"):
        ObserverConfig("percentile", percentile=10.0)


def test_chunks_and_prefetch_keep_order_and_propagate_errors():
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(prefetched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]

    def failing():
        yield 1
        raise CalibrationError("cannot read calibration image 'x.jpg'")

    with pytest.raises(CalibrationError, match="x.jpg"):
        list(prefetched(failing(), 1))


def test_only_tensors_read_by_relu_alone_are_clamped():
    g = conv_model()  # x -> conv -> relu -> pool (pool is the output)
    col = collect_statistics(g, items(3), ObserverConfig("minmax"), batch_size=2)
    assert col.bounds == {"conv": (0.0, None)}
    lo, hi = col.observers["conv"].range()
    assert lo == 0.0 and (lo, hi) == col.observers["relu"].range()  # the Relu's input and output share a range
    assert collect_statistics(g, items(3), ObserverConfig("minmax", reader_clamp=False)).bounds == {}


def test_clip_readers_bound_both_sides_and_mixed_readers_do_not():
    from npuc.calibration.statistics import consumer_bounds
    from npuc.ir.dtypes import DType
    from npuc.ir.graph import Graph

    g = Graph("clips")
    x = g.add_input("x", DType.FLOAT32, (1, 2, 4, 4))
    a = g.outputs_of(g.add_op("Add", [x, x], name="a"))[0]
    c1 = g.outputs_of(g.add_op("Clip", [a], {"min": 0.0, "max": 6.0}, name="c1"))[0]
    c2 = g.outputs_of(g.add_op("Clip", [a], {"min": 0.0, "max": 6.0}, name="c2"))[0]
    b = g.outputs_of(g.add_op("Add", [c1, c2], name="b"))[0]
    r = g.outputs_of(g.add_op("Relu", [b], name="r"))[0]
    s = g.outputs_of(g.add_op("Add", [b, r], name="s"))[0]  # b is read by a Relu and an Add: not bounded
    g.outputs = [s]
    bounds = consumer_bounds(g, [a, c1, c2, b, r, s])
    assert bounds == {"a": (0.0, 6.0)}
    col = collect_statistics(g, [("i", {"x": np.full((1, 2, 4, 4), 5.0, np.float32)})], ObserverConfig("minmax"))
    assert col.observers["a"].range() == (6.0, 6.0)  # 10 clipped to the bound every reader applies
