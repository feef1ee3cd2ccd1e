"""`npuc analyze` on the bundled PP-OCR cls example (slow): complete report within the time budget, and a
deliberately broken layer found among 139."""
import itertools
from pathlib import Path

import pytest
from analysis_models import break_weight_scale
from report_checks import check_report_folder

from npuc.analysis import analyze
from npuc.calibration import Preprocessing
from npuc.calibration.dataset import open_calibration_set
from npuc.cli import main
from npuc.driver import CompileRequest, compile_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ppocr_cls"
CALIB = str(EXAMPLE / "calib" / "*.png")

pytestmark = pytest.mark.slow


def test_cls_report_is_complete_and_fast(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["analyze", str(EXAMPLE / "model.onnx"), "-s", str(EXAMPLE / "model.alls"), "--calib", CALIB,
                 "--letterbox", "topleft", "-o", str(out), "--samples", "16"]) == 0
    data = check_report_folder(out)
    assert len(data["layers"]) > 100 and data["samples"] == 16
    (output, snr), = data["output_snr_db"].items()
    assert 15.0 < snr < 80.0
    sens = [l["sensitivity_min_db"] for l in data["layers"] if l["sensitivity_min_db"] is not None]
    assert len(sens) > 100 and min(sens) > 15.0  # int8 with a 16-bit head: no layer alone ruins the label
    assert data["seconds"]["total"] < 120.0, data["seconds"]
    # the a16_w16 head keeps far more of its output distribution than the 8-bit body
    kl16 = [l["kl"]["out0"] for l in data["layers"] if l["dtype"] in ("u16", "i16")]
    kl8 = sorted(l["kl"]["out0"] for l in data["layers"] if l["dtype"] in ("u8", "i8"))
    assert kl16 and max(kl16) < kl8[len(kl8) // 2]
    assert "worst layers" in capsys.readouterr().out


def test_cls_broken_layer_is_ranked_first_and_flagged():
    pre = Preprocessing(align="topleft")
    result = compile_model(CompileRequest(model=EXAMPLE / "model.onnx", script=EXAMPLE / "model.alls", calib=CALIB,
                                          preprocessing=pre))
    break_weight_scale(result.quantized, "Conv@20")
    data = open_calibration_set(CALIB, result.fp_optimized, pre)
    report = analyze(result.fp_optimized, result.quantized, itertools.islice(iter(data), 4))
    worst, second = report.layers[:2]
    assert worst.name == "Conv@20" and worst.flagged and worst.layer_snr_min_db < report.threshold_db
    assert worst.sensitivity_min_db < second.sensitivity_min_db - 3.0, (worst, second)
