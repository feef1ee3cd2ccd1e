"""SNR arithmetic, the suffix runner and the single-layer runner on a small conv net."""
import math

import numpy as np
import pytest
from analysis_models import calibration_arrays, small_convnet

from npuc.analysis.entropy import EntropyEntry, kl_divergence, sorted_entries
from npuc.analysis.float_cache import FloatCache
from npuc.analysis.layers import find_layers
from npuc.analysis.single_layer import SingleLayerRunner
from npuc.analysis.snr import SNR_FLOOR_DB, SnrStats, channel_axis, snr_db
from npuc.analysis.suffix import SuffixRunner
from npuc.backends.reference.executor import Executor
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.calibration.dataset import open_calibration_set
from npuc.driver import CompileRequest, compile_model


def test_snr_db_is_ten_log10_of_the_power_ratio():
    assert snr_db(100.0, 1.0) == pytest.approx(20.0)
    assert snr_db(1.0, 10.0) == pytest.approx(-10.0)
    assert snr_db(5.0, 0.0) is None
    assert snr_db(0.0, 1.0) == SNR_FLOOR_DB


def test_snr_stats_accumulate_over_samples_and_channels():
    rng = np.random.default_rng(0)
    refs = [rng.standard_normal((1, 3, 4, 4)) for _ in range(3)]
    noise = [rng.standard_normal((1, 3, 4, 4)) * np.array([0.01, 0.1, 1.0])[None, :, None, None] for _ in range(3)]
    stats = SnrStats(3, channel_axis((1, 3, 4, 4)))
    for r, n in zip(refs, noise):
        stats.add(r, r + n)
    sig = sum(float((r ** 2).sum()) for r in refs)
    err = sum(float((n ** 2).sum()) for n in noise)
    assert stats.db == pytest.approx(10 * math.log10(sig / err))
    per_channel = stats.channel_db()
    assert np.argsort(per_channel).tolist() == [2, 1, 0]  # the noisiest channel is the worst
    assert channel_axis((1, 5)) == 1 and channel_axis((1, 1, 4, 4)) is None and channel_axis((7,)) is None


def test_kl_is_zero_for_equal_histograms_and_entries_sort_highest_first():
    h = np.array([0, 3, 5, 2, 0])
    assert kl_divergence(h, h) == pytest.approx(0.0, abs=1e-9)
    assert kl_divergence(h, np.array([0, 0, 10, 0, 0])) > 0.5
    entries = sorted_entries([EntropyEntry("a", "out0", 0.1), EntropyEntry("b", "weight", 0.9),
                              EntropyEntry("c", "out0", 0.5)])
    assert [e.line() for e in entries] == ["b:weight, 0.900000", "c:out0, 0.500000", "a:out0, 0.100000"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    model = small_convnet(tmp / "m.onnx")
    calib = calibration_arrays(tmp / "calib", 4)
    result = compile_model(CompileRequest(model=model, calib=calib))
    feeds = next(iter(open_calibration_set(calib, result.fp_optimized)))
    return result, feeds


def test_layers_are_the_compute_ops_of_both_graphs(compiled):
    result, _ = compiled
    layers = find_layers(result.fp_optimized, result.quantized)
    assert [l.name for l in layers] == ["conv1", "conv2", "conv3", "gap", "flatten", "fc"]
    assert {l.name for l in layers if l.weight} == {"conv1", "conv2", "conv3", "fc"}


def test_suffix_run_from_float_values_reproduces_the_float_outputs(compiled):
    result, feeds = compiled
    fp = result.fp_optimized
    cache = FloatCache(fp).capture(feeds)
    full = Executor(fp).run(feeds)
    suffix = SuffixRunner(fp)
    outs = suffix.run({"r1": cache["r1"].copy()}, cache)
    assert set(outs) == {"y", "z"}
    for name, value in outs.items():
        np.testing.assert_array_equal(value, full[name])
    plan = suffix.plan(frozenset({"y"}))
    assert plan.steps == () and plan.outputs == ("y",)  # an output tensor needs no further op
    assert [s[0].name for s in suffix.plan(frozenset({"g"})).steps] == ["flatten", "fc"]


def test_single_layer_run_matches_the_quantized_executor_on_its_own_inputs(compiled):
    """With the quantized graph's own (integer) inputs dequantized as 'float values', one layer
    re-quantizes them exactly and reproduces the quantized executor's output for that layer."""
    result, feeds = compiled
    q = result.quantized
    seen = {}
    QuantizedExecutor(q).run(feeds, outputs=["r1", "r2"], dequantize=True,
                             on_tensor=lambda t, v: seen.__setitem__(t.name, (t, v)))
    from npuc.analysis.single_layer import to_float

    floats = {name: to_float(v, t) for name, (t, v) in seen.items()}
    layer = next(l for l in find_layers(result.fp_optimized, q) if l.name == "conv2")
    out = SingleLayerRunner(q).run(layer, floats)
    np.testing.assert_array_equal(out["r2"], floats["r2"])
