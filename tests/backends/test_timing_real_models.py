"""Timing-model sanity on real models: 16-bit vs 8-bit, mixed precision, tail pruning."""
import sys
from importlib import resources
from pathlib import Path

import pytest

from npuc.driver import CompileRequest, build_float, compile_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.data_gen.text_images import write_pages  # noqa: E402

MODELS = resources.files("rapidocr_onnxruntime") / "models"
DET = Path(str(MODELS / "ch_PP-OCRv4_det_infer.onnx"))
CLS = Path(str(MODELS / "ch_ppocr_mobile_v2.0_cls_infer.onnx"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("pages")
    write_pages(folder, 2, seed=11)
    return str(folder / "*")


def det(pages: str, **kw):
    return compile_model(CompileRequest(DET, calib=pages, input_shapes={"x": (1, 3, 640, 640)}, **kw))


@pytest.mark.slow
def test_det_sixteen_bit_mixed_and_eight_bit(pages, tmp_path):
    int8 = det(pages).timing
    int16 = det(pages, quantize_options={"precision_mode": "a16_w16"}).timing
    # the head: the last 3x3 conv and everything after it in 16-bit
    head = [op for op in build_float(CompileRequest(DET, input_shapes={"x": (1, 3, 640, 640)})).graph.ops()
            if op.kind == "Conv"][-1].name
    script = tmp_path / "mixed.alls"
    script.write_text(f"data_type({{{head}...}}, int16)\n")
    mixed = det(pages, script=script).timing

    for report in (int8, int16, mixed):
        assert report.total_cycles == sum(lt.cycles for lt in report.layers)
    assert 2.0 <= int16.total_cycles / int8.total_cycles <= 3.0
    assert int8.total_cycles < mixed.total_cycles < int16.total_cycles
    conversions = [lt for lt in mixed.layers if lt.work.kind == "Requantize"]
    assert conversions and all(lt.cycles > 0 for lt in conversions)


def test_pruning_a_tail_reshape_lowers_the_estimate(tmp_path):
    calib = str(Path(__file__).resolve().parents[2] / "examples" / "ppocr_cls" / "calib" / "line_0000*.png")
    cut = {"input_shapes": {"x": (1, 3, 48, 192)}, "outputs": ["reshape2_0.tmp_0"], "calib": calib}
    norm = "normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])\n"
    plain = tmp_path / "plain.alls"
    plain.write_text(norm)
    kept = compile_model(CompileRequest(CLS, script=plain, **cut)).timing
    script = tmp_path / "prune.alls"
    script.write_text(norm + "prune_tail()\n")
    pruned = compile_model(CompileRequest(CLS, script=script, **cut))
    assert [lt.work.kind for lt in kept.layers][-1] == "Reshape"
    assert "Reshape" not in [lt.work.kind for lt in pruned.timing.layers][-2:]
    assert pruned.timing.total_cycles < kept.total_cycles
    assert pruned.quantized.outputs[0].shape == (1, 200, 1, 1)
