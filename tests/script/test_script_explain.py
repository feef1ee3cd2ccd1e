"""The explain table: which layers each line selects and what it sets on each."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from npuc.script.binder import bind
from npuc.script.explain import explain_rows, layer_rows, render_explain
from npuc.script.parser import parse

from script_testing import ppocr_cls_model

SCRIPT = """\
normalization1 = normalization([127.5], [127.5])
model_optimization_config(calibration, batch_size=8)
pre_quantization_optimization(equalization, policy=enabled)
quantization_param({conv*}, precision_mode=a16_w16)
quantization_param([conv1, fc1], bias_mode=double_scale_initialization)
data_type({Concat_155...}, int16)
allocator_param(timeout=25m)
frobnicate(1)
"""


def render(bound) -> str:
    out = io.StringIO()
    render_explain(bound, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_rows_per_line(registry, layers):
    rows = explain_rows(bind(parse(SCRIPT, "s.alls"), registry, layers))
    assert [r.line for r in rows] == list(range(1, 9))
    norm, calib, eq, convs, lst, rng, alloc, unknown = rows
    assert norm.scope == "model inputs"
    assert calib.scope == "model" and calib.settings == {"calibration.batch_size": 8}
    assert eq.scope == "all layers" and len(eq.layers) == len(layers) and "cross_layer_equalization" in eq.note
    assert convs.layers == ("conv1", "conv2", "conv3", "conv10", "conv36_d0-2", "conv40")
    assert convs.settings == {"precision_mode": "a16_w16"}
    assert lst.layers == ("conv1", "fc1")
    assert rng.layers == ("Concat_155", "conv40", "fc1", "output_layer1") and rng.settings == {"dtype": "int16"}
    assert alloc.scope == "skipped" and alloc.note == "no effect on this target"
    assert unknown.note == "unknown command"


def test_layer_rows_merge_settings_in_order(registry, layers):
    rows = {r.name: r for r in layer_rows(bind(parse(SCRIPT, "s.alls"), registry, layers))}
    assert rows["conv1"].settings == {"precision_mode": "a16_w16", "bias_mode": "double_scale_initialization"}
    assert rows["conv1"].lines == (4, 5)
    assert rows["fc1"].settings == {"bias_mode": "double_scale_initialization", "dtype": "int16"}
    assert "relu1" not in rows


def test_rendered_table(registry, layers):
    text = render(bind(parse(SCRIPT, "s.alls"), registry, layers))
    assert "Script lines" in text and "sets on each" in text
    assert "6: conv1, conv2, conv3, conv10, conv36_d0-2, conv40" in text
    assert "precision_mode=a16_w16" in text
    assert "4: Concat_155, conv40, fc1, output_layer1" in text


def test_explain_real_ppocr_cls_model(registry):
    model = ppocr_cls_model()
    if model is None:
        pytest.skip("rapidocr-onnxruntime (which ships the PP-OCR cls model) is not installed")
    from npuc.script.model_layers import load_model_layers

    layers = load_model_layers(model, {"x": (1, 3, 48, 192)})
    assert len(layers) > 50
    names = [l.name for l in layers]
    first, last = names[0], names[-1]
    start = next(i for i in range(len(names) - 8, 0, -1) if parse(f"f({{{names[i]}...}})"))
    script = (
        "normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])\n"
        "quantization_param({conv*}, precision_mode=a16_w16)\n"
        f'quantization_param(["{first}", "{last}"], bias_mode=double_scale_initialization)\n'
        f"data_type({{{names[start]}...}}, int16)\n"
        "allocator_param(timeout=25m)\n"
    )
    bound = bind(parse(script, "cls.alls"), registry, layers)
    assert [w.message for w in bound.warnings] == ["'allocator_param' has no effect on this target, skipped"]
    rows = explain_rows(bound)
    convs = rows[1].layers
    assert convs and all(
        "conv" in (l.name + " ".join(l.origin) + l.kind).lower() for l in layers if l.name in convs
    )
    assert rows[2].layers == (first, last)
    assert rows[3].layers == tuple(names[start:])
    text = render(bound)
    assert "precision_mode=a16_w16" in text and "dtype=int16" in text
