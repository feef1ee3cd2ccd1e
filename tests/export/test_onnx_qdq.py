"""QDQ ONNX export of compiled PP-OCR models: valid ONNX, standard ops, onnxruntime agrees with npuc's simulator."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "data_gen"))
from qdq_testing import layerwise_flips, pixels, run_binary, run_onnx, snr_db  # noqa: E402

from npuc.backends.npu.decode import read_binary  # noqa: E402
from npuc.backends.npu.lower import to_graph  # noqa: E402
from npuc.calibration import Preprocessing  # noqa: E402
from npuc.driver import CompileRequest, compile_model, write_outputs  # noqa: E402
from npuc.export import export_qdq_onnx  # noqa: E402
from npuc_testing import ppocr_model  # noqa: E402

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).parents[2]
CLS = ROOT / "examples" / "ppocr_cls"


def _models(name: str) -> Path:
    path = ppocr_model(name)
    if not path.is_file():
        pytest.skip(f"{name} not installed")
    return path


def _agreement(binary: Path, onnx_model, images: list[Path]) -> float:
    """Worst SNR (dB) over the images between the simulator's and onnxruntime's dequantized outputs."""
    graph = to_graph(read_binary(binary))
    x = graph.inputs[0]
    worst = float("inf")
    for img in images:
        feed = {x.name: pixels(img, x.shape)}
        ref = run_binary(binary, feed, dequantize=True)
        got = run_onnx(onnx_model, feed)
        for t in graph.outputs:
            worst = min(worst, snr_db(ref[t.name], got[t.name]))
    return worst


@pytest.fixture(scope="module")
def cls(tmp_path_factory) -> tuple[Path, onnx.ModelProto]:
    out = tmp_path_factory.mktemp("cls")
    req = CompileRequest(model=CLS / "model.onnx", script=CLS / "model.alls", calib=str(CLS / "calib" / "*.png"),
                         preprocessing=Preprocessing(align="topleft"))
    binary = write_outputs(compile_model(req), out)["binary"]
    return binary, export_qdq_onnx(to_graph(read_binary(binary)))  # from the binary alone


def test_cls_export_passes_the_full_checker(cls):
    _, model = cls
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 21


def test_cls_export_uses_standard_qdq_ops(cls):
    _, model = cls
    kinds = Counter(n.op_type for n in model.graph.node)
    for op in ("QuantizeLinear", "DequantizeLinear", "Conv", "HardSwish", "HardSigmoid", "Relu", "Add", "Mul",
               "GlobalAveragePool", "MaxPool", "Softmax", "Reshape"):
        assert kinds[op] > 0, op
    assert kinds["Gemm"] + kinds["MatMul"] == 1
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    weight_dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
                  and inits[n.input[0]].ndim == 4 and inits[n.input[0]].dtype == np.int8]
    assert len(weight_dqs) >= 50
    assert all(any(a.name == "axis" and a.i == 0 for a in n.attribute) for n in weight_dqs), "per-channel weights"
    biases = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
              and inits.get(n.input[0]) is not None and inits[n.input[0]].dtype == np.int32]
    assert biases, "int32 biases behind DequantizeLinear"
    zps = {inits[n.input[2]].dtype for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert np.dtype(np.uint16) in zps and np.dtype(np.uint8) in zps, "the 16-bit head stays 16-bit"
    assert [o.name for o in model.graph.output] == ["save_infer_model/scale_0.tmp_1"]


def test_cls_onnxruntime_agrees_with_the_simulator(cls):
    binary, model = cls
    images = sorted(CLS.glob("calib/*.png"))[:4]
    assert _agreement(binary, model, images) >= 35.0


def test_export_command_reads_the_binary_alone(cls, tmp_path):
    from npuc.cli import main

    binary, model = cls
    out = tmp_path / "sub" / "model.qdq.onnx"
    assert main(["export", str(binary), "--onnx", str(out)]) == 0
    assert onnx.load(out).SerializeToString() == model.SerializeToString()
    assert main(["export", str(tmp_path / "missing.npub"), "--onnx", str(out)]) == 2
    truncated = tmp_path / "bad.npub"
    truncated.write_bytes(binary.read_bytes()[:100])
    assert main(["export", str(truncated), "--onnx", str(tmp_path / "bad.onnx")]) == 2


DET_SCRIPT = ("input_shape(x, [1, 3, 320, 320])\n"
              "normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])\n")


def _compile_det(tmp: Path, extra: str = "") -> tuple[Path, onnx.ModelProto, list[Path]]:
    """PP-OCRv4 det at 320x320 calibrated on four rendered pages; two more pages held out."""
    from text_images import write_pages

    pages = write_pages(tmp / "pages", 6, seed=3, size=(320, 320))
    script = tmp / "det.alls"
    script.write_text(DET_SCRIPT + extra)
    req = CompileRequest(model=_models("ch_PP-OCRv4_det_infer.onnx"), script=script,
                         calib=[str(p) for p in pages[:4]], preprocessing=Preprocessing(align="topleft"))
    binary = write_outputs(compile_model(req), tmp / "out")["binary"]
    return binary, export_qdq_onnx(to_graph(read_binary(binary))), pages


@pytest.fixture(scope="module")
def det(tmp_path_factory) -> tuple[Path, onnx.ModelProto, list[Path]]:
    """int8 per-channel with npuc's default (31-bit, half-up) requantization."""
    return _compile_det(tmp_path_factory.mktemp("det"))


@pytest.fixture(scope="module")
def det_float32(tmp_path_factory) -> tuple[Path, onnx.ModelProto, list[Path]]:
    """int8 per-channel with float32 requantization (docs/numerics.md section 6a)."""
    return _compile_det(tmp_path_factory.mktemp("det_float32"), "quantize(requantization=float32)\n")


@pytest.mark.slow
def test_det_float32_requantization_export_agrees_on_every_page(det_float32, tmp_path):
    """Compiled with float32 requantization, the exported QDQ model is what onnxruntime's QLinearConv computes,
    so onnxruntime and the simulator agree on every page (144 dB measured on 18 pages: float32 output rounding
    only). Layer by layer, every Conv is identical; only the two ConvTransposes of the head, which onnxruntime
    runs in float32 without fusing, may differ by one LSB on a near-tie (at most 2 values per page measured),
    and that does not reach the output measurably."""
    from text_images import write_pages

    binary, model, pages = det_float32
    onnx.checker.check_model(model, full_check=True)
    graph = to_graph(read_binary(binary))
    assert {op.attrs["requantization"] for op in graph.ops() if op.kind in ("Conv", "ConvTranspose")} == {"float32"}
    x = graph.inputs[0]
    for page in [*pages[4:], *write_pages(tmp_path / "other", 4, seed=11, size=(320, 320))]:
        snr = _agreement(binary, model, [page])
        layers = layerwise_flips(graph, model, {x.name: pixels(page, x.shape)})
        flipped = {name: r for name, r in layers.items() if r[2]}
        print(f"det float32 {page.name}: onnxruntime vs simulator {snr:.1f} dB, flips {flipped}")
        assert snr >= 35.0, (page.name, snr, flipped)
        assert {r[0] for r in flipped.values()} <= {"ConvTranspose"}, flipped
        assert all(r[3] == 1 for r in flipped.values()) and sum(r[2] for r in flipped.values()) <= 4, flipped


@pytest.mark.slow
def test_det_export_onnxruntime_agrees_with_the_simulator(det):
    """End to end on the two held-out pages: a page on which no layer flips is bit-exact up to float32
    output rounding (>= 35 dB asserted; 144 dB measured). A page with a float32 near-tie flip in the
    backbone (one LSB, test below) measures 24-27 dB, the quantized network amplifying it; >= 20 dB is
    asserted for those. Which pages flip varies between runs (onnxruntime's float32 requantization of
    values within ~1e-6 of a midpoint), so no page is required to be flip-free here; on 16 other pages
    8 reach 35 dB (docs/qdq-export.md). With npuc's default requantization the 35 dB target is therefore not
    met on every page; float32 requantization (test above) meets it on every page."""
    binary, model, pages = det
    onnx.checker.check_model(model, full_check=True)
    graph = to_graph(read_binary(binary))
    x = graph.inputs[0]
    for page in pages[4:]:
        snr = _agreement(binary, model, [page])
        flips = [name for name, r in layerwise_flips(graph, model, {x.name: pixels(page, x.shape)}).items() if r[2]]
        print(f"det {page.name}: onnxruntime vs simulator {snr:.1f} dB, layers with near-tie flips {flips}")
        assert snr >= (35.0 if not flips else 20.0), (page.name, snr, flips)


@pytest.mark.slow
def test_det_layers_agree_except_float32_near_ties(det):
    """Each layer fed npuc's own integer inputs: identical except one LSB on a few Conv/ConvTranspose
    values whose exact result lies within ~1e-6 of a rounding midpoint (onnxruntime requantizes with a
    24-bit float32 multiplier, npuc with a 31-bit one). Add ties are handled by the tie-break offsets."""
    binary, model, pages = det
    graph = to_graph(read_binary(binary))
    x = graph.inputs[0]
    quantized = {t.name for op in graph.ops() for t in graph.outputs_of(op) if t.dtype.is_integer}
    for page in (pages[0], pages[4]):
        layers = layerwise_flips(graph, model, {x.name: pixels(page, x.shape)})
        flipped = {name: r for name, r in layers.items() if r[2]}
        assert set(layers) == quantized  # every layer is checked
        assert {r[0] for r in flipped.values()} <= {"Conv", "ConvTranspose"}, flipped
        assert all(r[3] == 1 for r in flipped.values()), flipped
        assert sum(r[2] for r in flipped.values()) <= 10, flipped


@pytest.mark.slow
def test_mixed_precision_export(tmp_path):
    """float16 layers (Cast round trips), 4-bit weights, 16-bit activations and double-scale biases export too."""
    script = tmp_path / "mixed.alls"
    script.write_text((CLS / "model.alls").read_text() + "\n".join([
        "data_type({Conv@45, Conv@46}, float16)",
        "quantization_param({Conv@10, Conv@11}, precision_mode=a8_w4)",
        "quantization_param({Conv@20, Conv@21, Conv@22}, precision_mode=a16_w8)",
        "quantization_param({Conv@5}, bias_mode=double_scale_initialization)", ""]))
    req = CompileRequest(model=CLS / "model.onnx", script=script, calib=str(CLS / "calib" / "*.png"),
                         preprocessing=Preprocessing(align="topleft"))
    binary = write_outputs(compile_model(req), tmp_path / "out")["binary"]
    graph = to_graph(read_binary(binary))
    kinds = Counter(op.kind for op in graph.ops())
    assert kinds["Dequantize"] and kinds["Requantize"] > 2
    model = export_qdq_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    assert Counter(n.op_type for n in model.graph.node)["Cast"] >= 4
    dtypes = {onnx.helper.tensor_dtype_to_np_dtype(i.data_type) for i in model.graph.initializer}
    assert {np.dtype(np.float16), np.dtype(np.uint16), np.dtype(np.int8), np.dtype(np.int32)} <= dtypes
    assert _agreement(binary, model, sorted(CLS.glob("calib/*.png"))[:3]) >= 30.0
