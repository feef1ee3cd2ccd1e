import json
import subprocess
import sys

import pytest

from npuc.cli import main

from cli_models import conv_bn_relu_mul1
from npuc_testing import ppocr_model

CLS = str(ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx"))


@pytest.fixture
def tiny(tmp_path):
    return str(conv_bn_relu_mul1(tmp_path / "tiny.onnx"))


def test_dump_cls_after_fold_batchnorm_is_readable_and_deterministic(tmp_path):
    cmd = [sys.executable, "-m", "npuc.cli", "dump", CLS, "--input-shape", "x=1,3,48,192", "--after", "fold_batchnorm"]
    runs = [subprocess.run(cmd, capture_output=True, check=True, cwd=tmp_path).stdout for _ in range(2)]
    assert runs[0] == runs[1]
    text = runs[0].decode()
    assert text.startswith('graph "') and text.rstrip().endswith("}")
    assert "= BatchNormalization(" not in text
    assert "Conv(%x, %Conv@0.weight_bn, %Conv@0.bias_bn)" in text
    assert "# Conv@0 <- Conv@0, BatchNormalization@0" in text
    assert "= Clip(" in text  # recognize_activations has not run yet
    assert max(len(line) for line in text.splitlines()) < 400  # big constants are elided


def test_dump_default_pipeline_and_formats(tiny, tmp_path, capsys):
    assert main(["dump", tiny]) == 0
    text = capsys.readouterr().out
    assert "Conv(" in text and "activation=\"relu\"" in text and "Identity" not in text
    assert "Mul(" in text  # the built-in passes leave Mul by one alone
    assert main(["dump", tiny, "--format", "json", "-o", str(tmp_path / "g.json")]) == 0
    doc = json.loads((tmp_path / "g.json").read_text())
    assert [op["kind"] for op in doc["ops"]] == ["Conv", "Mul"]
    assert main(["dump", tiny, "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph")


def test_dump_after_input_shows_the_import(tiny, capsys):
    assert main(["dump", tiny, "--after", "input"]) == 0
    assert "BatchNormalization(" in capsys.readouterr().out


def test_dump_dir_time_passes_print_after(tiny, tmp_path, capsys):
    d = tmp_path / "dumps"
    assert main(["dump", tiny, "--dump-dir", str(d), "--time-passes", "--print-after", "fuse_activations"]) == 0
    cap = capsys.readouterr()
    names = sorted(p.name for p in d.iterdir())
    assert names == ["00-input.npuir", "01-fold_constants.npuir", "02-remove_identity.npuir",
                     "03-fold_batchnorm.npuir", "04-recognize_activations.npuir", "05-fuse_scale.npuir",
                     "06-fuse_bias.npuir", "07-fuse_activations.npuir", "08-fold_constants.npuir",
                     "09-eliminate_dead_code.npuir"]
    assert "BatchNormalization(" in (d / "00-input.npuir").read_text()
    assert "pass timing" in cap.err and "fold_batchnorm" in cap.err and "folded=1" in cap.err
    assert "IR after fuse_activations (pass 7)" in cap.err
    assert cap.out.startswith("graph")


def test_dump_custom_passes(tiny, capsys):
    assert main(["dump", tiny, "--passes", "remove_identity,fold_batchnorm", "--after", "remove_identity"]) == 0
    out = capsys.readouterr().out
    assert "BatchNormalization(" in out and "Identity(" not in out


@pytest.mark.parametrize("args,msg", [
    (["--after", "fold_batchnrom"], "did you mean 'fold_batchnorm'"),
    (["--after", "prune_tail"], "runs 0 time(s) in this pipeline"),
    (["--passes", "fold_constants,nope"], "unknown pass 'nope'"),
    (["--passes", "prune_outputs(outputs=[zz])"], "pass 'prune_outputs' (#1 of 1; it was the first pass) failed: "
                                                  "cannot keep the requested outputs: no tensor named 'zz'"),
])
def test_dump_errors_are_one_paragraph(tiny, capsys, args, msg):
    assert main(["dump", tiny] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("npuc: error: ") and msg in err and "Traceback" not in err


def test_passes_lists_everything(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for name in ("fold_constants", "fold_batchnorm", "remove_identity", "fuse_activations", "recognize_activations",
                 "prune_tail", "prune_outputs", "eliminate_dead_code"):
        assert f"{name}  [builtin]" in out
    assert "size_limit: int = 65536" in out and "outputs: list of str = []" in out
    assert "default cleanup pipeline: fold_constants, remove_identity" in out
    assert main(["passes", "--json", "prune_outputs"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passes"][0]["options"][0] == {"name": "outputs", "type": "list of str", "default": [],
                                              "doc": doc["passes"][0]["options"][0]["doc"]}


def test_help_texts(capsys):
    for cmd in ("dump", "passes"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "usage: npuc " + cmd in capsys.readouterr().out


def test_dump_bad_print_after_and_dump_dir(tiny, tmp_path, capsys):
    assert main(["dump", tiny, "--print-after", "fuse_activation"]) == 2
    assert "did you mean 'fuse_activations'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["dump", tiny, "--dump-dir", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot use" in err and "IR dump folder" in err and "Traceback" not in err
