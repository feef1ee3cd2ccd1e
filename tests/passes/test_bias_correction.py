"""bias_correction: mean per-channel error removed (BC, IBC), 8-bit warning, missing float graph, cls SNR."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from npuc.backends.reference.emulation import quantize_for_emulation, run_float_passes
from npuc.errors import NpucError
from npuc.passes.base import PassContext
from npuc.passes.bias_correction import BiasCorrection
from accuracy_graphs import chain, feeds, outputs, snr_db
from npuc_testing import ppocr_model

CLS = ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")


def _setup(**quantize_options):
    g = chain(depthwise=True, spread=1.0)
    items = feeds(g, 8, seed=2)
    q = quantize_for_emulation(g, items, per_channel=False, **quantize_options)
    ctx = PassContext()
    ctx.set("float_graph", g)
    ctx.set("calibration_set", items)
    return g, q, items, ctx


def _channel_error(g, q, items) -> np.ndarray:
    err = outputs(q, items, quantized=True).astype(np.float64) - outputs(g, items)
    return err.mean(axis=(0, 2, 3))


@pytest.mark.parametrize("iterative", [False, True])
def test_mean_channel_error_removed(iterative):
    g, q, items, ctx = _setup()
    before = np.abs(_channel_error(g, q, items))
    res = BiasCorrection(iterative=iterative).run(q, ctx)
    after = np.abs(_channel_error(g, q, items))
    assert res.stats["layers"] == 3
    assert after.mean() < 0.5 * before.mean()
    if iterative:  # IBC drives the output's mean error to the output grid's resolution
        step = q.outputs[0].quant.scale[0]
        assert after.max() < step, (after, step)


def test_eight_bit_bias_warns(caplog):
    from npuc.ir.dtypes import DType
    from npuc.passes.bias_correction import _warn_narrow_biases

    g, q, items, ctx = _setup()
    b = q.inputs_of(q.op("c3"))[2]
    b.dtype = DType.INT8  # quantize offers 16/32-bit biases only; imported int8 models may carry 8-bit ones
    with caplog.at_level(logging.WARNING, logger="npuc.passes.bias_correction"):
        _warn_narrow_biases(q, [q.op("c1"), q.op("c3")])
    assert "8-bit bias" in caplog.text and "c3" in caplog.text and "c1" not in caplog.text


def test_needs_float_graph_and_data():
    g, q, items, _ = _setup()
    with pytest.raises(NpucError, match="float_graph"):
        BiasCorrection().run(q, PassContext())
    ctx = PassContext()
    ctx.set("float_graph", g)
    with pytest.raises(NpucError, match="calibration data"):
        BiasCorrection().run(q, ctx)


@pytest.mark.slow
def test_cls_snr_improves():
    import sys
    from pathlib import Path

    if not CLS.is_file():
        pytest.skip("rapidocr_onnxruntime models not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantization_passes"))
    from npuc.frontends.onnx import load_onnx
    from text_lines import render_text_lines

    # measured at the logits: a 2-class softmax output's SNR is dominated by a few confident items
    g = run_float_passes(load_onnx(str(CLS), {"x": (1, 3, 48, 192)}, outputs=["linear_1.tmp_1"]))
    images = render_text_lines(88, seed=7)
    calib, test = [{"x": a} for a in images[:32]], [{"x": a} for a in images[32:]]
    q = quantize_for_emulation(g, calib, per_channel=False)
    ref = outputs(g, test)
    base = snr_db(ref, outputs(q, test, quantized=True))
    ctx = PassContext()
    ctx.set("float_graph", g)
    ctx.set("calibration_set", calib)
    BiasCorrection(iterative=True).run(q, ctx)
    assert snr_db(ref, outputs(q, test, quantized=True)) > base + 0.25  # measured: 15.8 -> 16.5 dB


def test_script_options_a_pass_does_not_take_are_named_not_dropped():
    """adaround's script form carries another toolchain's training settings (learning_rate, epochs): npuc's
    pass takes lr/iterations instead, so the compile notes name the ignored ones; the options it does take
    (dataset_size) reach the pass."""
    from npuc.script import default_registry
    from npuc.script.binder import bind
    from npuc.script.parser import parse
    from npuc.script_config import pipeline_settings

    text = ("post_quantization_optimization(adaround, policy=enabled, learning_rate=0.001, epochs=2, "
            "dataset_size=4)\npost_quantization_optimization(bias_correction, iterative=true)\n")
    s = pipeline_settings(bind(parse(text, "s.alls"), default_registry(), None))
    assert [(p.name, p.dataset_size) for p in s.post_passes] == [("adaround", 4), ("bias_correction", 32)]
    assert s.post_passes[1].iterative is True
    (note,) = s.notes
    assert "s.alls:1" in note and "epochs=, learning_rate= accepted but not used" in note and "lr" in note
