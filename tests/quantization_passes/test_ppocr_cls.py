"""PP-OCR direction classifier: int8 per-channel vs int16 vs mixed, SNR of quantized vs native outputs."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from npuc.backends.reference.emulation import prepare_emulation
from npuc.frontends.onnx import load_onnx
from npuc.ir.printer import to_text
from npuc.quantization.config import QuantConfig
from quant_testing import snr_db
from text_lines import render_text_lines
from npuc_testing import ppocr_model

log = logging.getLogger(__name__)
MODEL = ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")
#: ops from this index on (counted from the end) form the "head" run in int16 in the mixed setting
HEAD_OPS = 24


@pytest.mark.slow
def test_cls_int8_int16_mixed_snr(capsys):
    if not MODEL.is_file():
        pytest.skip("rapidocr_onnxruntime models not installed")
    # compared at the logits: the 2-class softmax saturates, and a few items would dominate its SNR
    graph = load_onnx(str(MODEL), {"x": (1, 3, 48, 192)}, outputs=["linear_1.tmp_1"])
    images = render_text_lines(96, seed=7)
    calib = [{"x": a} for a in images[:64]]
    test = [{"x": a} for a in images[64:]]
    base = prepare_emulation(graph)
    fp = base.fp_optimized
    head = [op.name for op in fp.ops()[-HEAD_OPS:]]
    mixed = QuantConfig()
    mixed.set_precision_mode(head, "a16_w16")
    results = {}
    for label, cfg, mode in (("a8_w8", None, "a8_w8"), ("mixed", mixed, "a8_w8"), ("a16_w16", None, "a16_w16")):
        em = prepare_emulation(graph, calib, cfg, precision_mode=mode, per_channel=True)
        native = np.concatenate([em.run("native", f)[graph.outputs[0].name] for f in test])
        quant = np.concatenate([em.run("quantized", f)[em.quantized.outputs[0].name] for f in test])
        results[label] = snr_db(native, quant)
        if label == "mixed":
            text = to_text(em.quantized)
            assert "Requantize(" in text  # the u8 -> u16 boundary is a visible conversion
    fp_snr = snr_db(np.concatenate([base.run("native", f)[graph.outputs[0].name] for f in test]),
                    np.concatenate([base.run("fp_optimized", f)[fp.outputs[0].name] for f in test]))
    with capsys.disabled():
        print("\nPP-OCR cls quantized vs native, SNR per output (dB): "
              + ", ".join(f"{k} {v:.1f}" for k, v in results.items()) + f"; fp_optimized {fp_snr:.1f}")
    assert fp_snr > 80
    assert results["a8_w8"] >= 15  # logits; measured 18.3 dB (per-tensor activations, 64 calibration lines)
    assert results["a16_w16"] > results["mixed"] > results["a8_w8"]
