"""The three real PP-OCR models shipped in rapidocr_onnxruntime: import, verify, match onnxruntime."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from PIL import Image, ImageDraw, ImageFont

from npuc.frontends import load_model
from npuc.ir.verify import find_problems
from onnx_testing import assert_close, run_ort
from npuc_testing import ppocr_model

CLS = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
REC = "ch_PP-OCRv4_rec_infer.onnx"
DET = "ch_PP-OCRv4_det_infer.onnx"


def text_image(height: int, width: int, text: str, seed: int = 0) -> np.ndarray:
    """A rendered dark-on-light text image, normalised as PP-OCR does: (x / 255 - 0.5) / 0.5, NCHW."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (235, 232, 225))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    y = 4
    while y < height - 12:
        draw.text((6, y), text, fill=(20, 20, 30), font=font)
        y += max(16, height // 3)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 4, (height, width, 3)).astype(np.float32)
    arr = (np.clip(arr, 0, 255) / 255.0 - 0.5) / 0.5
    return arr.transpose(2, 0, 1)[None].astype(np.float32)


def check_model(name: str, shape: tuple[int, ...], text: str) -> None:
    from npuc.backends.reference.executor import run_graph

    graph = load_model(ppocr_model(name), input_shapes={"x": shape})
    assert find_problems(graph) == []
    (x,) = graph.inputs
    assert (x.name, x.shape, x.layout) == ("x", shape, "NCHW")
    assert graph.meta["source_format"] == "onnx" and graph.meta["opset"] in (11, 12)
    kinds = Counter(op.kind for op in graph.ops())
    assert not {"Shape", "Gather", "Constant", "Cast"} & set(kinds), "shape chains must be folded at import"
    node_names = {n.name for n in onnx.load(str(ppocr_model(name))).graph.node}
    assert all(op.origin[0] in node_names for op in graph.ops())

    feed = text_image(shape[2], shape[3], text)
    ours = run_graph(graph, {"x": feed})
    ref = run_ort(onnx.load(str(ppocr_model(name))), {"x": feed})
    assert list(ours) == list(ref)
    for out, value in ref.items():
        assert_close(ours[out], value, f"{name}:{out}")


def test_cls_model() -> None:
    check_model(CLS, (1, 3, 48, 192), "Invoice total 42.50")


def test_rec_model() -> None:
    check_model(REC, (1, 3, 48, 320), "The quick brown fox 1234")


@pytest.mark.slow
def test_det_model() -> None:
    check_model(DET, (1, 3, 640, 640), "npuc: open NPU compiler - page of text, line after line")


def test_cls_import_facts() -> None:
    graph = load_model(ppocr_model(CLS), input_shapes={"x": (1, 3, 48, 192)})
    assert graph.meta["source_input_shapes"] == {"x": ["?", 3, "?", "?"]}
    assert graph.meta["producer"].startswith("PaddlePaddle")
    kinds = Counter(op.kind for op in graph.ops())
    assert kinds["BatchNormalization"] == 35 and kinds["Conv"] == 53  # BN is folded later, by a pass
    assert [t.name for t in graph.outputs] == ["save_infer_model/scale_0.tmp_1"]
    assert graph.outputs[0].shape == (1, 2)


def test_rec_parse_end_keeps_only_what_feeds_the_outputs() -> None:
    full = load_model(ppocr_model(REC), input_shapes={"x": (1, 3, 48, 320)})
    softmax = [op for op in full.ops() if op.kind == "Softmax"]
    cut_at = full.inputs_of(softmax[-1])[0].name  # the logits before the final softmax
    graph = load_model(ppocr_model(REC), input_shapes={"x": (1, 3, 48, 320)}, outputs=[cut_at])
    assert [t.name for t in graph.outputs] == [cut_at]
    assert len(graph) == len(full) - 1
    assert find_problems(graph) == []
