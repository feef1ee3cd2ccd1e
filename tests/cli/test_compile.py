"""`npuc compile` end to end on the bundled example: outputs, determinism, and user errors."""
from pathlib import Path

import pytest

from npuc.backends.npu.decode import read_binary
from npuc.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ppocr_cls"
CALIB = str(EXAMPLE / "calib" / "*.png")


def compile_example(out: Path, *extra: str) -> int:
    return main(["compile", str(EXAMPLE / "model.onnx"), "-s", str(EXAMPLE / "model.alls"), "--calib", CALIB,
                 "--letterbox", "topleft", "-o", str(out), *extra])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert compile_example(out) == 0
    return out


def test_writes_binary_info_and_layer_table(compiled, capsys):
    files = sorted(p.name for p in compiled.iterdir())
    assert files == ["layers.csv", "model.npub", "model_info.txt"]
    program = read_binary(compiled / "model.npub")
    kinds = {layer.kind for layer in program.layers}
    assert "Quantize" in kinds and "Conv" in kinds and "HardSwish" in kinds
    assert "Requantize" in kinds  # the a16_w16 head needs a conversion layer
    info = (compiled / "model_info.txt").read_text()
    assert "normalization (x - [127.5, 127.5, 127.5])" in info
    assert "real = scale * (q - zero_point)" in info
    rows = (compiled / "layers.csv").read_text().splitlines()
    assert rows[0].startswith("index,name,origin,op") and len(rows) == len(program.layers) + 1


def test_same_inputs_give_byte_identical_binaries(compiled, tmp_path):
    assert compile_example(tmp_path) == 0
    assert (tmp_path / "model.npub").read_bytes() == (compiled / "model.npub").read_bytes()
    assert (tmp_path / "layers.csv").read_text() == (compiled / "layers.csv").read_text()


def test_missing_calibration_is_an_error_saying_how_to_fix_it(tmp_path, capsys):
    code = main(["compile", str(EXAMPLE / "model.onnx"), "-s", str(EXAMPLE / "model.alls"), "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--calib" in err and "Traceback" not in err
    assert not (tmp_path / "model.npub").exists()


def test_script_error_keeps_previous_outputs(compiled, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.npub").write_bytes(b"precious")
    bad = tmp_path / "bad.alls"
    bad.write_text("input_shape(x, [1, 3, 48, 192])\nquantization_param({conv*}, precision_mode=a12_w3)\n")
    code = main(["compile", str(EXAMPLE / "model.onnx"), "-s", str(bad), "--calib", CALIB, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.alls:2:" in err and "a12_w3" in err and "Traceback" not in err
    assert (out / "model.npub").read_bytes() == b"precious"


def test_unknown_target_is_named(tmp_path, capsys):
    code = compile_example(tmp_path, "--target", "npu-m")
    err = capsys.readouterr().err
    assert code == 2 and "unknown target 'npu-m'" in err


def test_normalization_layers_are_named_after_the_script_line_and_selectable(tmp_path, capsys):
    """The example's `normalization1 = normalization(...)` gives layers normalization1/sub and /mul; a
    quantization_param line naming normalization1 puts both in 16-bit (the raw u8 pixels then meet the
    half-step (x - 127.5) on a 16-bit grid)."""
    script = tmp_path / "model.alls"
    script.write_text((EXAMPLE / "model.alls").read_text()
                      + "quantization_param(normalization1, precision_mode=a16_w16)\n")
    code = main(["compile", str(EXAMPLE / "model.onnx"), "-s", str(script), "--calib", CALIB,
                 "--letterbox", "topleft", "-o", str(tmp_path / "out")])
    assert code == 0 and "normalization1" not in capsys.readouterr().err  # no 'selects nothing' warning
    rows = {r.split(",")[1]: r.split(",") for r in (tmp_path / "out" / "layers.csv").read_text().splitlines()[1:]}
    assert rows["normalization1/sub"][4].endswith("->i16") or rows["normalization1/sub"][4].endswith("->u16")
    assert rows["normalization1/mul"][4].endswith("16")
