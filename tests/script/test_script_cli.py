"""`npuc script check`: exit codes, warnings, errors without tracebacks, the explain table."""
from __future__ import annotations

import pytest

from script_testing import CORPUS, ppocr_cls_model


def write(tmp_path, text: str, name: str = "model.alls"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_clean_script_exits_0(cli):
    result = cli("script", "check", str(CORPUS[0]))
    assert result.code == 0, result.err
    assert "7 statements, 7 with effect, 0 warnings, no errors" in result.out
    assert result.err == ""


def test_warnings_are_printed_and_exit_0(cli, tmp_path):
    path = write(tmp_path, "calibration()\nallocator_param(timeout=25m)\n")
    result = cli("script", "check", path)
    assert result.code == 0
    assert f"{path}:2:1: warning: 'allocator_param' has no effect on this target, skipped" in result.err
    assert "1 warning" in result.out


def test_strict_turns_warnings_into_errors(cli, tmp_path):
    path = write(tmp_path, "allocator_param(timeout=25m)\n")
    result = cli("script", "check", path, "--strict")
    assert result.code == 2
    assert f"{path}:1:1: error: 'allocator_param' has no effect" in result.err


def test_errors_exit_2_without_traceback(cli, tmp_path):
    path = write(tmp_path, 'model_optimization_config(calibration, batch_size="eight")\nquantizaton_param(conv1)\n')
    result = cli("script", "check", path)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert f"npuc: error: {path}: 1 error" in result.err
    assert f"{path}:1:51: error:" in result.err
    assert '                                                  ^~~~~~~' in result.err
    assert f"{path}:2:1: warning: unknown command 'quantizaton_param', skipped; did you mean 'quantization_param'?" in result.err


def test_syntax_error_exits_2(cli, tmp_path):
    path = write(tmp_path, "quantization_param([conv1, conv2, precision_mode=a16_w16)\n")
    result = cli("script", "check", path)
    assert result.code == 2 and "unterminated list" in result.err and "Traceback" not in result.err


def test_missing_script_exits_2(cli, tmp_path):
    result = cli("script", "check", str(tmp_path / "nope.alls"))
    assert result.code == 2 and "cannot read script" in result.err


def test_missing_model_exits_2(cli):
    result = cli("script", "check", str(CORPUS[0]), "--model", "/nonexistent/model.onnx")
    assert result.code == 2 and "model file not found" in result.err


def test_unknown_model_format_exits_2(cli, tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    result = cli("script", "check", str(CORPUS[0]), "--model", str(model))
    assert result.code == 2 and "Traceback" not in result.err and "npuc: error:" in result.err


def test_script_without_action_prints_usage(cli):
    result = cli("script")
    assert result.code == 2 and "check" in result.err


def test_explain_table_with_real_model(cli, tmp_path):
    model = ppocr_cls_model()
    if model is None:
        pytest.skip("rapidocr-onnxruntime (which ships the PP-OCR cls model) is not installed")
    path = write(tmp_path, "quantization_param({conv*}, precision_mode=a16_w16)\nallocator_param(timeout=25m)\n")
    result = cli("script", "check", path, "--model", str(model), "--input-shape", "x=1,3,48,192")
    assert result.code == 0, result.err
    assert "Script lines" in result.out and "precision_mode=a16_w16" in result.out
    assert result.out.splitlines()[0].endswith("layers")


def test_script_input_shape_and_prune_after_shape_the_model(cli, tmp_path):
    model = ppocr_cls_model()
    if model is None:
        pytest.skip("rapidocr-onnxruntime (which ships the PP-OCR cls model) is not installed")
    path = write(
        tmp_path,
        "input_shape(x, [1, 3, 48, 192])\nprune_after(\"linear_1.tmp_0\")\ndata_type({MatMul@0...}, int16)\n",
    )
    result = cli("script", "check", path, "--model", str(model))
    assert result.code == 0, result.err
    assert "1: MatMul@0" in result.out  # nothing after the pruning point
    assert "dynamic dimensions" not in result.err


def test_dynamic_model_without_shape_exits_2(cli, tmp_path):
    model = ppocr_cls_model()
    if model is None:
        pytest.skip("rapidocr-onnxruntime (which ships the PP-OCR cls model) is not installed")
    result = cli("script", "check", write(tmp_path, "calibration()\n"), "--model", str(model))
    assert result.code == 2 and "input-shape" in result.err and "Traceback" not in result.err


def test_normalization_layers_can_be_selected_by_their_assignment_name(cli, tmp_path):
    """`normalization1 = normalization(...)` adds layers normalization1/sub and normalization1/mul; a later
    line selects them by that name with no 'matches nothing' warning."""
    model = ppocr_cls_model()
    if model is None:
        pytest.skip("rapidocr-onnxruntime (which ships the PP-OCR cls model) is not installed")
    path = write(tmp_path, "normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])\n"
                           "quantization_param(normalization1, precision_mode=a16_w16)\n")
    result = cli("script", "check", path, "--model", str(model), "--input-shape", "x=1,3,48,192", "--strict")
    assert result.code == 0, result.err
    assert "0 warnings" in result.out and "normalization1/sub" in result.out
