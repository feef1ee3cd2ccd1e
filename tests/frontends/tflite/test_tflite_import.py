"""Import-level behaviour of the TFLite front-end: errors, int8 encodings, folded weights, registry, CLI."""
from __future__ import annotations

import numpy as np
import pytest

from make_models import INT8_IN, INT8_OUT, build
from npuc.errors import ModelImportError, UnsupportedOpsError
from npuc.frontends import FRONTENDS, load_model
from npuc.frontends.tflite import load_tflite
from npuc.frontends.tflite_inspect import inspect_tflite
from npuc.ir.dtypes import DType
from npuc.ir.verify import find_problems
from tflite_testing import litert, npuc_run

TFLITE_FRONTEND = FRONTENDS["tflite"]  # the built-in record (npuc.frontends registers it)


@pytest.fixture
def registered(monkeypatch):
    """The TFLite front-end in the format registry (whether or not npuc.frontends registers it already)."""
    monkeypatch.setitem(FRONTENDS, "tflite", TFLITE_FRONTEND)


def test_custom_op_reported_with_its_code_and_count():
    with pytest.raises(UnsupportedOpsError) as info:
        load_tflite(build("custom_op"))
    msg = str(info.value)
    assert "CUSTOM(MyFancyOp)" in msg and "2 node" in msg and "'b'" in msg and "'y'" in msg
    assert "Traceback" not in msg and info.value.exit_code == 2


def test_custom_op_cut_off_by_outputs():
    g = load_tflite(build("custom_op"), outputs=["a"])
    assert [op.kind for op in g.ops()] == ["Relu"]


@pytest.mark.parametrize("keep", [9, 40, 200, 600, -16])
def test_truncated_file_is_a_model_import_error(tmp_path, keep):
    data = build("conv_same_relu6_s2")
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[:keep] if keep > 0 else data[:len(data) + keep])
    with pytest.raises(ModelImportError) as info:
        load_tflite(path)
    assert "cut.tflite" in str(info.value) or "TFL3" in str(info.value)
    assert "\n" not in str(info.value)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\x08\x07hello world, not a flatbuffer at all")
    with pytest.raises(ModelImportError, match="not a TFLite model"):
        load_tflite(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelImportError, match="cannot read"):
        load_tflite(tmp_path / "nope.tflite")


def test_unknown_output_and_input_names():
    with pytest.raises(ModelImportError, match="not tensors of the model"):
        load_tflite(build("relu"), outputs=["nope"])
    with pytest.raises(ModelImportError, match="model's inputs are"):
        load_tflite(build("relu"), input_shapes={"nope": (1, 2, 3, 4)})


def test_input_shapes_override_in_source_layout():
    g = load_tflite(build("conv_same_relu6_s2"), input_shapes={"x0": (2, 13, 11, 3)})
    assert g.inputs[0].shape == (2, 3, 13, 11)
    assert g.outputs[0].shape == (2, 4, 7, 6)


def test_float16_weights_folded_to_float32_constants():
    g = load_tflite(build("dequantize_float16"))
    assert [op.kind for op in g.ops()] == ["Conv"]
    w = g.inputs_of(g.ops()[0])[1]
    assert w.is_const and w.dtype is DType.FLOAT32 and w.quant is None
    assert g.meta["fixed_encodings"] is False
    assert find_problems(g) == []


def test_int8_model_keeps_its_encodings():
    g = load_tflite(build("int8_conv"))
    assert g.meta["fixed_encodings"] is True
    (conv,) = g.ops()
    x, w, b = g.inputs_of(conv)
    y = g.outputs[0]
    assert x is g.inputs[0] and x.dtype is DType.FLOAT32
    qx, qy, qw, qb = (t.meta["fixed_quant"] for t in (x, y, w, b))
    assert (qx.scale[0], qx.zero_point[0], qx.bits, qx.signed) == (pytest.approx(INT8_IN[0]), INT8_IN[1], 8, True)
    assert (qy.scale[0], qy.zero_point[0]) == (pytest.approx(INT8_OUT[0]), INT8_OUT[1])
    assert qw.axis == 0 and len(qw.scale) == 4 and qw.is_symmetric
    assert qb.bits == 32
    assert x.quant is None and w.quant is None  # float IR: encodings are fixed, not applied yet
    # the dequantized weights are exactly the integer grid times the scales
    q = w.data / qw.scale_array(4)
    np.testing.assert_allclose(q, np.round(q), atol=1e-3)
    assert conv.attrs["activation"] == "relu"


def test_int8_model_float_ir_within_one_lsb_of_litert():
    data = build("int8_conv")
    x = np.random.default_rng(3).uniform(-2, 2, (1, 6, 6, 3)).astype(np.float32)
    ref = litert(data, {"x0": x})["y"]
    # the float IR on the input as LiteRT quantized it, rounded to the output grid
    s, z = INT8_IN
    xq = (np.clip(np.round(x / s) + z, -128, 127) - z) * s
    got = npuc_run(load_tflite(data), {"x0": xq.astype(np.float32)})["y"]
    so, zo = INT8_OUT
    got_q = (np.clip(np.round(got / so) + zo, -128, 127) - zo) * so
    assert np.abs(got_q - ref).max() <= so * 1.0001


def test_inspect_summary():
    s = inspect_tflite(build("custom_op"))
    assert s.format == "tflite" and s.op_histogram == {"CUSTOM(MyFancyOp)": 2, "RELU": 1}
    assert [u.op for u in s.unsupported] == ["CUSTOM(MyFancyOp)"]
    assert s.inputs[0].dims == (1, 4, 4, 3)


def test_load_model_dispatches_by_extension(tmp_path, registered):
    path = tmp_path / "m.tflite"
    path.write_bytes(build("relu"))
    assert load_model(path).meta["source_format"] == "tflite"
    assert TFLITE_FRONTEND.sniff(build("relu")[:64])


@pytest.mark.parametrize("case", ["custom_op", "truncated"])
def test_cli_reports_clear_error_and_exits_2(tmp_path, registered, capsys, case):
    from npuc.cli import main

    data = build("custom_op") if case == "custom_op" else build("conv_same_relu6_s2")[:300]
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(data)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("MyFancyOp" in err) if case == "custom_op" else ("truncated or corrupt" in err)
