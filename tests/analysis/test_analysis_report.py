"""`npuc analyze` end to end on a small two-output conv net, and a deliberately broken layer."""
import math

import pytest
from analysis_models import break_weight_scale, calibration_arrays, small_convnet
from report_checks import check_report_folder

from npuc.analysis import analyze
from npuc.calibration.dataset import open_calibration_set
from npuc.cli import main
from npuc.driver import CompileRequest, compile_model


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    return small_convnet(tmp / "m.onnx"), calibration_arrays(tmp / "calib", 6)


def test_cli_writes_a_complete_report(small, tmp_path, capsys):
    model, calib = small
    out = tmp_path / "report"
    assert main(["analyze", str(model), "--calib", calib, "-o", str(out), "--samples", "4",
                 "--plot-layers", "3"]) == 0
    printed = capsys.readouterr().out
    assert "worst layers" in printed and "report.html" in printed
    data = check_report_folder(out)
    assert data["samples"] == 4 and data["outputs"] == ["y", "z"]
    layers = {l["name"]: l for l in data["layers"]}
    assert set(layers) == {"conv1", "conv2", "conv3", "gap", "flatten", "fc"}
    # conv3 only reaches y, fc only z, conv1 both
    assert set(layers["conv3"]["sensitivity_db"]) == {"y"}
    assert set(layers["fc"]["sensitivity_db"]) == {"z"}
    assert set(layers["conv1"]["sensitivity_db"]) == {"y", "z"}
    for l in data["layers"]:  # int8 on a well-behaved net: sane SNRs, nothing flagged
        for v in [*l["sensitivity_db"].values(), *l["layer_snr_db"].values()]:
            assert v is None or 15.0 < v < 100.0
        assert not l["flagged"]
    assert all(15.0 < v < 100.0 for v in data["output_snr_db"].values())
    assert len([l for l in data["layers"] if l["plots"]]) == 3
    assert set(data["charts"]) == {"sensitivity:y", "sensitivity:z", "layer_snr"}


def test_analyze_needs_calibration_data(small, tmp_path, capsys):
    model, _ = small
    with pytest.raises(SystemExit):
        main(["analyze", str(model), "-o", str(tmp_path)])
    assert "--calib" in capsys.readouterr().err


def test_a_broken_layer_gets_the_lowest_snr_and_is_flagged(small):
    model, calib = small
    result = compile_model(CompileRequest(model=model, calib=calib))
    break_weight_scale(result.quantized, "conv2")
    data = open_calibration_set(calib, result.fp_optimized)
    report = analyze(result.fp_optimized, result.quantized, iter(data))
    worst = report.layers[0]
    assert worst.name == "conv2" and worst.rank == 1 and worst.flagged
    assert worst.sensitivity_min_db < 10.0 and worst.layer_snr_min_db < 10.0
    healthy = report.by_name("conv1")
    assert not healthy.flagged and healthy.sensitivity_min_db > 20.0
    # conv3 alone is still fine (its own input is quantized from the float value), but with all layers
    # quantized it inherits conv2's garbage: the two SNR kinds tell the culprit from the victims
    victim = report.by_name("conv3")
    assert victim.sensitivity_db["y"] > 20.0 and victim.layer_snr_min_db < 10.0
    assert all(math.isfinite(v) for v in report.output_snr_db.values() if v is not None)
