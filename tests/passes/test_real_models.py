"""The default cleanup on the real rapidocr models: what must be gone, and outputs still matching onnxruntime."""
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest

from npuc.passes.manager import PassManager, default_pipeline

ort = pytest.importorskip("onnxruntime")
MODELS = files("rapidocr_onnxruntime") / "models"
CLS = ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192))
DET = ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640))


def _image_like(shape, seed=0):
    """Smooth, normalised 'text on paper' input rather than white noise."""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    base = np.linspace(-0.8, 0.9, w, dtype=np.float32)[None, :] * np.linspace(1.0, 0.6, h, dtype=np.float32)[:, None]
    strokes = (rng.random((h // 4 + 1, w // 4 + 1)) > 0.8).repeat(4, 0).repeat(4, 1)[:h, :w] * -1.5
    img = np.broadcast_to(base + strokes, (n, c, h, w)) + rng.normal(0, 0.05, (n, c, h, w))
    return img.astype(np.float32)


def _check(model, shape):
    from npuc.backends.reference.executor import run_graph
    from npuc.frontends.onnx import load_onnx

    path = str(MODELS / model)
    graph = load_onnx(path, input_shapes={"x": shape})
    PassManager(default_pipeline()).run(graph)
    counts = Counter(op.kind for op in graph.ops())
    for gone in ("BatchNormalization", "Identity", "Shape", "Constant", "Dropout"):
        assert counts[gone] == 0, f"{gone} left after cleanup: {counts}"
    assert counts["HardSwish"] > 0
    assert counts["Div"] == 0 and counts["Clip"] == 0, f"hard-swish pieces left: {counts}"

    x = _image_like(shape)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})
    got = run_graph(graph, {"x": x})
    assert len(want) == len(graph.outputs)
    for ref, out in zip(want, graph.outputs):
        val = got[out.name]
        assert val.shape == ref.shape
        err = float(np.max(np.abs(val - ref))) / max(float(np.max(np.abs(ref))), 1e-12)
        assert err <= 1e-4, f"{out.name}: relative error {err:.3g}"
    return graph, counts


def test_cls_model_cleanup():
    graph, counts = _check(*CLS)
    assert counts["HardSwish"] == 18 and counts["Conv"] == 53
    # fused ops keep every source node name
    assert graph.op("Conv@1").origin == ("Conv@1", "BatchNormalization@1", "Relu@0")
    assert graph.op("Div@0").kind == "HardSwish" and graph.op("Div@0").origin == ("Add@0", "Clip@0", "Mul@0", "Div@0")


@pytest.mark.slow
def test_det_model_cleanup():
    _, counts = _check(*DET)
    assert counts["HardSwish"] == 24 and counts["ConvTranspose"] == 2
