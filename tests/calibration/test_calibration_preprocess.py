"""Preprocessing: letterbox resize (never distort), channel order, layout, mean/std."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from npuc.calibration.preprocess import Preprocessing, parse_channel_order
from npuc.errors import CalibrationError
from npuc.ir.dtypes import DType
from npuc.ir.tensor import Tensor


def solid(width: int, height: int, rgb=(200, 100, 50)) -> Image.Image:
    return Image.new("RGB", (width, height), rgb)


def test_letterbox_keeps_aspect_ratio_and_centres_bands():
    pre = Preprocessing(size=(8, 8), pad_value=0)
    out = pre.apply(solid(16, 8))  # 2:1 image into a square: 8x4 content, 2-row bands top and bottom
    assert out.shape == (1, 3, 8, 8) and out.dtype == np.float32
    assert np.all(out[0, :, :2, :] == 0) and np.all(out[0, :, 6:, :] == 0)
    assert np.all(out[0, 0, 2:6, :] == 200) and np.all(out[0, 2, 2:6, :] == 50)


def test_letterbox_topleft_pads_right():
    pre = Preprocessing(size=(48, 192), align="topleft", pad_value=127)
    nw, nh, left, top = pre.letterbox_geometry(96, 48)
    assert (nw, nh, left, top) == (96, 48, 0, 0)
    out = pre.apply(solid(96, 48, (10, 20, 30)))
    assert np.all(out[0, :, :, 96:] == 127) and np.all(out[0, 0, :, :96] == 10)


def test_geometry_never_distorts():
    pre = Preprocessing(size=(640, 640))
    for w, h in [(1000, 500), (300, 900), (640, 640), (17, 3)]:
        nw, nh, *_ = pre.letterbox_geometry(w, h)
        assert nw <= 640 and nh <= 640 and (nw == 640 or nh == 640)
        ratio = min(640 / w, 640 / h)
        assert abs(nw - w * ratio) <= 1 and abs(nh - h * ratio) <= 1


def test_no_letterbox_refuses_to_stretch():
    with pytest.raises(CalibrationError, match="never stretched"):
        Preprocessing(size=(8, 8), letterbox=False).apply(solid(16, 8), "a.png")


def test_bgr_nhwc_and_normalization():
    pre = Preprocessing(size=(2, 2), channel_order="bgr", layout="nhwc", mean=(10, 20, 30), std=(2, 4, 5))
    out = pre.apply(solid(2, 2, (50, 100, 150)))
    assert out.shape == (1, 2, 2, 3)
    # channel 0 is blue: (150 - 10) / 2
    np.testing.assert_allclose(out[0, 0, 0], [(150 - 10) / 2, (100 - 20) / 4, (50 - 30) / 5], rtol=1e-6)


def test_gray_gives_one_channel():
    pre = Preprocessing(size=(4, 4), channel_order="gray")
    assert pre.apply(solid(4, 4)).shape == (1, 1, 4, 4)


def test_for_input_detects_layout_and_channels():
    nchw = Tensor("x", DType.FLOAT32, (1, 3, 48, 192))
    nhwc = Tensor("x", DType.FLOAT32, (1, 32, 64, 3))
    gray = Tensor("x", DType.FLOAT32, (1, 1, 28, 28))
    assert Preprocessing.for_input(nchw).input_shape() == (1, 3, 48, 192)
    assert Preprocessing.for_input(nhwc).layout == "NHWC"
    assert Preprocessing.for_input(nhwc).input_shape() == (1, 32, 64, 3)
    assert Preprocessing.for_input(gray).channel_order == "GRAY"
    assert Preprocessing.for_input(nchw, channel_order="BGR").channel_order == "BGR"


def test_for_input_errors_name_the_input():
    with pytest.raises(CalibrationError, match="'tokens'"):
        Preprocessing.for_input(Tensor("tokens", DType.FLOAT32, (1, 128)))
    with pytest.raises(CalibrationError, match="'feat'"):
        Preprocessing.for_input(Tensor("feat", DType.FLOAT32, (1, 16, 8, 8)))
    with pytest.raises(CalibrationError, match="has 3"):
        Preprocessing.for_input(Tensor("x", DType.FLOAT32, (1, 3, 8, 8)), channel_order="GRAY")


@pytest.mark.parametrize("kwargs, match", [
    ({"mean": (1, 2)}, "2 means"),
    ({"std": (1, 0, 1)}, "non-zero"),
    ({"layout": "CHW"}, "layout"),
    ({"channel_order": "RGBA"}, "channel order"),
    ({"size": (0, 4)}, "positive"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        Preprocessing(**kwargs)


def test_parse_channel_order():
    assert parse_channel_order(["B", "G", "R"]) == "BGR"
    assert parse_channel_order("grey") == "GRAY"
