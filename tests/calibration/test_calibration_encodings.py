"""AIMET/SNPE encodings: derivation rules, per-channel axes, unknown names, exact export -> import round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
from calib_fixtures import F32, conv_model
from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.calibration.encodings import (
    FIXED_DTYPE, FIXED_QUANT, apply_encodings, encoding_entry, export_encodings, parse_entry, read_encodings,
)
from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.quant_params import QuantParams


def test_asymmetric_scale_and_offset_derived_from_min_max():
    enc = parse_entry({"bitwidth": 8, "min": -1.0, "max": 2.0}, "t")
    assert enc.scale == pytest.approx(3.0 / 255.0)
    assert (enc.bits, enc.signed, enc.zero_point) == (8, False, 85)  # offset = round(-1 / (3/255)) = -85


def test_range_is_widened_to_contain_zero():
    enc = parse_entry({"bitwidth": 8, "min": 0.5, "max": 2.55, "is_symmetric": "False"}, "t")
    assert enc.scale == pytest.approx(0.01) and enc.zero_point == 0 and not enc.signed


def test_symmetric_derivation_is_signed_with_zero_point_zero():
    enc = parse_entry({"bitwidth": 8, "min": -0.5, "max": 1.27, "is_symmetric": "True"}, "t")
    assert enc.scale == pytest.approx(0.01) and enc.signed and enc.zero_point == 0


def test_given_scale_and_offset_win():
    enc = parse_entry({"bitwidth": 16, "min": -1, "max": 1, "scale": 0.5, "offset": -10}, "t")
    assert (enc.scale, enc.zero_point, enc.signed, enc.bits) == (0.5, 10, False, 16)


def test_aimet_symmetric_offset_maps_to_signed():
    enc = parse_entry({"bitwidth": 8, "scale": 0.1, "offset": -128, "is_symmetric": True}, "t")
    assert enc.signed and enc.zero_point == 0
    assert parse_entry({"bitwidth": 32, "scale": 1e-6, "offset": -(1 << 31)}, "t").signed


def test_float_entries_mark_float_tensors():
    assert parse_entry({"bitwidth": 16, "dtype": "float"}, "t") is DType.FLOAT16


@pytest.mark.parametrize("entry, match", [
    ({"min": 0, "max": 1}, "bitwidth"),
    ({"bitwidth": 7, "min": 0, "max": 1}, "bitwidth must be one of"),
    ({"bitwidth": 8}, "needs 'scale' and 'offset'"),
    ({"bitwidth": 8, "min": 2, "max": 1}, "min 2.0 > max 1.0"),
    ({"bitwidth": 8, "scale": 0.1, "offset": 3}, "offset must be"),
    ({"bitwidth": 8, "scale": 0.0, "offset": 0}, "scale must be > 0"),
    ({"bitwidth": 8, "min": "a", "max": 1}, "'min' must be a finite number"),
    ({"bitwidth": 8, "min": 0, "max": 1, "is_symmetric": "maybe"}, "is_symmetric"),
    ({"bitwidth": 8, "dtype": "bf16"}, "'dtype'"),
])
def test_bad_entries(entry, match):
    with pytest.raises(QuantizationError, match=match):
        parse_entry(entry, "t")


def test_apply_sets_fixed_encodings_with_output_channel_axis(tmp_path):
    g = conv_model()
    data = {
        "activation_encodings": {"relu": [{"bitwidth": 8, "min": 0.0, "max": 2.55}]},
        "param_encodings": {"conv.weight": [{"bitwidth": 8, "min": -c - 1.0, "max": c + 1.0, "is_symmetric": "True"}
                                            for c in range(4)]},
    }
    path = tmp_path / "enc.json"
    path.write_text(json.dumps(data))
    counts = apply_encodings(g, path)
    assert counts == {"activations": 1, "params": 1, "float": 0}
    relu = g.tensor("relu").meta[FIXED_QUANT]
    assert relu.scale[0] == pytest.approx(0.01) and relu == QuantParams.per_tensor(relu.scale[0], 0, 8, False)
    w = g.tensor("conv.weight").meta[FIXED_QUANT]
    assert w.axis == 0 and w.signed and w.zero_point == (0,) * 4
    np.testing.assert_allclose(w.scale, [(c + 1.0) / 127 for c in range(4)])


def test_conv_transpose_weights_are_per_channel_on_axis_1():
    g = Graph("deconv")
    x = g.add_input("x", F32, (1, 3, 4, 4))
    w = g.add_const("deconv.weight", np.ones((3, 2, 3, 3), np.float32))
    g.outputs = list(g.outputs_of(g.add_op("ConvTranspose", [x, w], name="deconv")))
    apply_encodings(g, {"param_encodings": {"deconv.weight": [
        {"bitwidth": 8, "scale": 0.1, "offset": -128, "is_symmetric": "True"}] * 2}})
    assert g.tensor("deconv.weight").meta[FIXED_QUANT].axis == 1


def test_per_channel_count_must_match():
    with pytest.raises(QuantizationError, match=r"3 per-channel entries.*4 output channels on axis 0"):
        apply_encodings(conv_model(), {"param_encodings": {"conv.weight": [
            {"bitwidth": 8, "scale": 0.1, "offset": -128}] * 3}})
    with pytest.raises(QuantizationError, match="activation 'relu' takes one"):
        apply_encodings(conv_model(), {"activation_encodings": {"relu": [
            {"bitwidth": 8, "scale": 0.1, "offset": 0}] * 2}})


def test_unknown_tensors_are_all_listed_with_nearest_names():
    with pytest.raises(QuantizationError) as err:
        apply_encodings(conv_model(), {
            "activation_encodings": {"rleu": [{"bitwidth": 8, "min": 0, "max": 1}],
                                     "zzzz_unrelated": [{"bitwidth": 8, "min": 0, "max": 1}]},
            "param_encodings": {"conv.weights": [{"bitwidth": 8, "min": -1, "max": 1}]},
        })
    msg = str(err.value)
    assert "3 tensor(s) not in the model" in msg
    assert "'rleu' (nearest: 'relu'" in msg and "'conv.weights' (nearest: 'conv.weight'" in msg
    assert "'zzzz_unrelated'" in msg


def test_file_errors(tmp_path):
    with pytest.raises(QuantizationError, match="does not exist"):
        read_encodings(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(QuantizationError, match="not valid JSON"):
        read_encodings(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"encodings": {}}')
    with pytest.raises(QuantizationError, match="neither"):
        read_encodings(tmp_path / "other.json")


def test_float16_marker_round_trips():
    g = conv_model()
    apply_encodings(g, {"activation_encodings": {"relu": [{"bitwidth": 16, "dtype": "float"}]}})
    assert g.tensor("relu").meta[FIXED_DTYPE] is DType.FLOAT16


# ------------------------------------------------------------------ round trip
def _qp(draw, per_channel: int | None) -> QuantParams:
    bits = draw(st.sampled_from([4, 8, 16, 32]))
    signed = True if bits == 32 else draw(st.booleans())
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    n = per_channel or 1
    scales = [draw(st.floats(1e-9, 1e3, allow_nan=False, allow_infinity=False)) for _ in range(n)]
    symmetric = signed and draw(st.booleans())
    zps = [0 if symmetric else draw(st.integers(lo, hi)) for _ in range(n)]
    if per_channel is None:
        return QuantParams.per_tensor(scales[0], zps[0], bits, signed)
    return QuantParams.per_channel(scales, zps, 0, bits, signed)


@st.composite
def quantized_conv_model(draw):
    g = conv_model()
    g.tensor("x").quant = _qp(draw, None)
    g.tensor("conv").quant = _qp(draw, None)
    g.tensor("relu").quant = _qp(draw, None)
    g.tensor("conv.weight").quant = _qp(draw, draw(st.sampled_from([None, 4])))
    g.tensor("conv.bias").quant = _qp(draw, draw(st.sampled_from([None, 4])))
    return g


@settings(max_examples=60, deadline=None)
@given(g=quantized_conv_model())
def test_export_import_round_trip_is_exact(g, tmp_path_factory):
    path = tmp_path_factory.mktemp("enc") / "enc.json"
    exported = export_encodings(g, path)
    fresh = conv_model()
    apply_encodings(fresh, path)
    for t in g.tensors():
        if t.quant is not None:
            assert fresh.tensor(t.name).meta[FIXED_QUANT] == t.quant, t.name
    # and exporting what was imported gives the same file
    for t in fresh.tensors():
        t.quant = t.meta.get(FIXED_QUANT)
    assert export_encodings(fresh) == exported


def test_export_format_matches_aimet_convention():
    entry = encoding_entry(0.5, 0, 8, True)
    assert entry == {"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "min": -64.0, "max": 63.5,
                     "offset": -128, "scale": 0.5}
    assert encoding_entry(0.1, 3, 8, True)["signed"] is True  # signed asymmetric needs the hint
    assert "signed" not in encoding_entry(0.1, 3, 8, False)
