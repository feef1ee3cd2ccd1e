"""Calibration sets: resolution of folders/globs/lists, lazy streaming, arrays, and the errors users meet."""
from __future__ import annotations

import numpy as np
import pytest
from calib_fixtures import F32, conv_model, write_arrays, write_images

from npuc.calibration.dataset import CalibrationSet, open_calibration_set, resolve_files
from npuc.calibration.preprocess import Preprocessing
from npuc.errors import CalibrationError
from npuc.ir.graph import Graph


def test_folder_glob_and_list_resolve_sorted(tmp_path):
    paths = write_images(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / ".hidden.png").write_bytes(b"")
    assert resolve_files(tmp_path / "imgs") == paths
    assert resolve_files(str(tmp_path / "imgs" / "*.png")) == paths
    assert resolve_files([paths[2], str(paths[0])]) == [paths[2], paths[0]]


def test_images_stream_preprocessed(tmp_path):
    write_images(tmp_path, 5, size=(16, 8))
    calib = open_calibration_set(tmp_path, conv_model())
    assert len(calib) == 5
    items = list(calib)
    assert all(set(f) == {"x"} and f["x"].shape == (1, 3, 8, 8) and f["x"].dtype == np.float32 for f in items)
    # letterboxed: the 16x8 image becomes 8x4 with zero bands top and bottom
    assert np.all(items[0]["x"][0, :, :2] == 0) and np.all(items[0]["x"][0, :, 6:] == 0)


def test_batches_stack_along_batch_axis(tmp_path):
    write_arrays(tmp_path, 5)
    calib = open_calibration_set(tmp_path, conv_model())
    shapes = [b["x"].shape for b in calib.batches(2)]
    assert shapes == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    whole = np.concatenate([b["x"] for b in calib.batches(2)])
    np.testing.assert_array_equal(whole, np.concatenate([f["x"] for f in calib]))


def test_npy_shapes_with_without_batch_and_stacked(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal((1, 3, 8, 8)))
    np.save(tmp_path / "b.npy", rng.standard_normal((3, 8, 8)).astype(np.float16))
    stack = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "c.npy", stack)
    calib = open_calibration_set(tmp_path, conv_model())
    assert len(calib) == 6
    items = list(calib)
    assert all(f["x"].dtype == np.float32 and f["x"].shape == (1, 3, 8, 8) for f in items)
    np.testing.assert_array_equal(items[3]["x"][0], stack[1])


def test_npz_single_and_multi_input(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", first=rng.standard_normal((2, 3, 8, 8)), second=rng.standard_normal((3, 8, 8)))
    assert len(open_calibration_set(tmp_path / "one.npz", conv_model())) == 3

    g = Graph("two")
    a = g.add_input("a", F32, (1, 4))
    b = g.add_input("b", F32, (1, 4))
    g.outputs = list(g.outputs_of(g.add_op("Add", [a, b])))
    np.savez(tmp_path / "two.npz", a=np.ones((3, 4)), b=np.zeros((3, 4)))
    calib = open_calibration_set(tmp_path / "two.npz", g)
    items = list(calib)
    assert len(items) == 3 and items[0]["a"].shape == (1, 4) and np.all(items[2]["b"] == 0)
    np.savez(tmp_path / "bad.npz", a=np.ones((3, 4)))
    with pytest.raises(CalibrationError, match=r"lacks arrays for model input\(s\) \['b'\]"):
        open_calibration_set(tmp_path / "bad.npz", g)


def test_empty_folder_and_glob(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="has no images"):
        open_calibration_set(tmp_path / "empty", conv_model())
    with pytest.raises(CalibrationError, match="matched no files"):
        open_calibration_set(str(tmp_path / "*.jpg"), conv_model())
    with pytest.raises(CalibrationError, match="does not exist"):
        open_calibration_set(tmp_path / "missing", conv_model())


def test_unreadable_image_is_named(tmp_path):
    write_images(tmp_path, 2)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CalibrationError, match="broken.jpg"):
        open_calibration_set(tmp_path, conv_model())


def test_truncated_image_is_named_when_decoded(tmp_path):
    path = write_images(tmp_path, 1, size=(64, 64), fmt="png")[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut
    calib = open_calibration_set(tmp_path, conv_model())
    with pytest.raises(CalibrationError, match="img_000.png"):
        list(calib)


def test_array_shape_mismatch_names_both(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(CalibrationError, match=r"wrong.npy.*\(1, 3, 16, 16\).*'x' \(1, 3, 8, 8\)"):
        open_calibration_set(tmp_path, conv_model())


def test_channel_mismatch_names_both(tmp_path):
    write_images(tmp_path, 1)
    with pytest.raises(CalibrationError, match=r"GRAY gives 1 channel.*'x' \(1, 3, 8, 8\)"):
        open_calibration_set(tmp_path, conv_model(), Preprocessing(channel_order="GRAY"))
    with pytest.raises(CalibrationError, match=r"\(1, 1, 8, 8\).*'x' is \(1, 3, 8, 8\)"):
        open_calibration_set(tmp_path, conv_model(), Preprocessing(size=(8, 8), channel_order="GRAY"))
    with pytest.raises(CalibrationError, match=r"'x' \(1, 12, 8, 8\) has no 1- or 3-channel"):
        open_calibration_set(tmp_path, conv_model(channels=12))


def test_preprocessing_size_defaults_to_model_input(tmp_path):
    write_images(tmp_path, 1)
    calib = open_calibration_set(tmp_path, conv_model(h=6, w=10), Preprocessing(mean=(1.0,), std=(2.0,)))
    assert calib.preprocessing.size == (6, 10)
    assert next(iter(calib))["x"].shape == (1, 3, 6, 10)


def test_select_is_seeded_ordered_and_checks_size(tmp_path):
    write_arrays(tmp_path, 10)
    calib = open_calibration_set(tmp_path, conv_model())
    a = calib.select(4, seed=3)
    b = calib.select(4, seed=3)
    assert [r.path for r in a.items] == [r.path for r in b.items]
    assert [r.path for r in a.items] == sorted(r.path for r in a.items)
    assert [r.path.name for r in calib.select(2, seed=None).items] == ["item_000.npy", "item_001.npy"]
    assert calib.select(None) is calib
    with pytest.raises(CalibrationError, match="10 item.*fewer than calibset_size=64"):
        calib.select(64)


def test_items_are_decoded_lazily(tmp_path, monkeypatch):
    write_images(tmp_path, 6)
    calib = open_calibration_set(tmp_path, conv_model())
    decoded = []
    original = Preprocessing.apply
    monkeypatch.setattr(Preprocessing, "apply", lambda self, img, name="": decoded.append(name) or original(self, img, name))
    it = iter(calib)
    next(it)
    assert len(decoded) == 1
    assert isinstance(calib, CalibrationSet)


def test_nan_array_is_rejected(tmp_path):
    arr = np.zeros((1, 3, 8, 8), np.float32)
    arr[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    with pytest.raises(CalibrationError, match="nan.npy.*NaN"):
        list(open_calibration_set(tmp_path, conv_model()))


def test_images_need_a_one_input_model(tmp_path):
    write_images(tmp_path, 1)
    g = Graph("two")
    a = g.add_input("a", F32, (1, 3, 8, 8))
    b = g.add_input("b", F32, (1, 3, 8, 8))
    g.outputs = list(g.outputs_of(g.add_op("Add", [a, b])))
    with pytest.raises(CalibrationError, match="2 inputs"):
        open_calibration_set(tmp_path, g)
