"""noise_aware_equalization: float outputs unchanged, scales chosen by modelled noise, int8 SNR gain, script line."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.reference.emulation import quantize_for_emulation
from npuc.errors import NpucError
from npuc.passes.base import PassContext
from npuc.passes.noise_aware_equalization import NoiseAwareEqualization, best_scales, modelled_noise
from accuracy_graphs import feeds, outputs, snr_db, wide_channel_block
from pass_testing import apply


def _ctx(items) -> PassContext:
    ctx = PassContext()
    ctx.set("calibration_set", items)
    return ctx


def test_needs_calibration_data():
    with pytest.raises(NpucError, match="calibration data"):
        apply(wide_channel_block(), NoiseAwareEqualization())


def test_float_outputs_unchanged_and_the_wide_channel_shrinks():
    g = wide_channel_block()
    items = feeds(g, 8, seed=2)
    ref = outputs(g, items)
    res = apply(g, NoiseAwareEqualization(), _ctx(items))
    assert res.changed and res.stats["rescaled"] >= 1
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    w_dw = np.abs(g.inputs_of(g.op("dw"))[2].data)
    assert w_dw[3] < 150.0 / 5  # the wide channel's bias (its range) was divided down


def test_int8_snr_improves_on_held_out_items():
    g = wide_channel_block()
    items = feeds(g, 12, seed=4)
    calib, test = items[:8], items[8:]
    ref = outputs(g, test)
    base = snr_db(ref, outputs(quantize_for_emulation(g, calib), test, quantized=True))
    eq = g.copy()
    apply(eq, NoiseAwareEqualization(), _ctx(calib))
    after = snr_db(ref, outputs(quantize_for_emulation(eq, calib), test, quantized=True))
    print(f"int8 SNR: plain {base:.1f} dB, noise-aware equalization {after:.1f} dB")
    assert after > base + 10.0, (base, after)


def test_scales_minimize_the_modelled_noise():
    # channel 0 is 100x wider than the others but rarely large (small mean square); L2 reads it with
    # weights as large as the others, so shrinking it fully would coarsen every output row's grid 100x
    lo, hi = np.full(8, -1.0), np.ones(8)
    lo[0], hi[0] = -100.0, 100.0
    ms = np.full(8, 1.0 / 3)
    w2 = np.ones((4, 8, 1, 1))
    s, n0, n1 = best_scales(lo, hi, ms, w2)
    assert n1 < n0 / 2 and s[0] > 1.0 and np.all(s[1:] == 1.0)
    assert modelled_noise(s, lo, hi, ms, w2, 8, 8) == pytest.approx(n1)
    for s0 in (1.0, 3.0, 10.0, 30.0, 100.0):  # no other threshold does better
        trial = np.ones(8)
        trial[0] = s0
        assert modelled_noise(trial, lo, hi, ms, w2, 8, 8) >= n1 * (1 - 1e-9)
    # channels all alike: nothing to gain
    s, n0, n1 = best_scales(np.full(8, -1.0), np.ones(8), np.ones(8) / 3, w2)
    assert np.all(s == 1.0) and n1 == n0


def test_depthwise_second_layer_reads_each_channel_alone():
    # a depthwise L2 has per-channel weights: rescaling costs it nothing, so wide channels shrink fully
    lo, hi = np.zeros(4), np.array([1.0, 1.0, 1.0, 50.0])
    s, n0, n1 = best_scales(lo, hi, hi ** 2 / 3, np.ones((4, 1, 3, 3)), depthwise=True)
    np.testing.assert_allclose(s, [1.0, 1.0, 1.0, 50.0])
    assert n1 < n0 / 2


def test_script_line_runs_the_pass():
    from npuc.script.binder import bind
    from npuc.script.parser import parse
    from npuc.script_config import pipeline_settings, script_registry

    bound = bind(parse("noise_aware_equalization(min_gain=0.2)\n", "s.alls"), script_registry(), None)
    passes = pipeline_settings(bound).float_passes
    assert [(p.name, p.min_gain) for p in passes] == [("noise_aware_equalization", 0.2)]
