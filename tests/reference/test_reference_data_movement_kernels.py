"""Data-movement kernels (reshape, transpose, concat, split, slice, pad, resize, gather, ...) against onnxruntime."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference_oracle import check_op, rand, run_npuc


def test_reshape_transpose_concat_split():
    x = rand(2, 3, 4, 5)
    check_op("Reshape", [x], {"shape": (6, 20)})
    check_op("Transpose", [x], {"perm": (0, 2, 3, 1)})
    check_op("Concat", [x, rand(2, 1, 4, 5, seed=2), rand(2, 2, 4, 5, seed=3)], {"axis": 1})
    check_op("Concat", [x, rand(2, 3, 4, 2, seed=2)], {"axis": -1})
    check_op("Split", [x], {"axis": 1, "split": (1, 2)})
    check_op("Split", [x], {"axis": -1, "split": (2, 2, 1)})


@pytest.mark.parametrize("attrs", [
    {"starts": (1,), "ends": (3,)},
    {"starts": (0, 1), "ends": (2, -1), "axes": (2, 3)},
    {"starts": (-1, 4), "ends": (-10, 0), "axes": (1, 3), "steps": (-1, -2)},
    {"starts": (0, 1), "ends": (1000, 1000), "axes": (-1, -2), "steps": (2, 2)},
    {"starts": (3,), "ends": (-2**63,), "axes": (2,), "steps": (-1,)},
    {"starts": (2,), "ends": (2,), "axes": (2,)},
])
def test_slice_matches_onnxruntime(attrs):
    check_op("Slice", [rand(2, 3, 4, 5)], attrs)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_matches_onnxruntime(mode):
    x = rand(1, 2, 4, 5)
    check_op("Pad", [x], {"pads": (0, 0, 1, 2, 0, 1, 3, 1), "mode": mode, "value": 1.5})
    check_op("Pad", [x], {"pads": (0, 1, 0, 0, 0, 0, 2, 0), "mode": mode})


def test_pad_negative_crops():
    check_op("Pad", [rand(1, 2, 6, 5)], {"pads": (0, 0, -1, 2, 0, 0, 1, -2)})


# tf_half_pixel_for_nearest: neither onnxruntime nor onnx.reference implements it; see the hand-checked test
COORD_MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
SIZES = [(1, 2, 8, 12), (1, 2, 3, 5), (1, 2, 11, 7), (1, 2, 1, 4)]


@pytest.mark.parametrize("size", SIZES, ids=["up2", "down", "odd", "to1"])
@pytest.mark.parametrize("coord,nearest", list(itertools.product(COORD_MODES, NEAREST_MODES)))
def test_resize_nearest_matches_onnxruntime(coord, nearest, size):
    check_op("Resize", [rand(1, 2, 4, 6)], {"size": size, "mode": "nearest",
                                            "coordinate_transformation_mode": coord, "nearest_mode": nearest})


@pytest.mark.parametrize("nearest,want", [
    ("round_prefer_floor", [0, 1, 1, 2, 2, 3, 3, 3]),  # source (x + 0.5) / 2 = .25 .75 1.25 ... 3.75
    ("round_prefer_ceil", [0, 1, 1, 2, 2, 3, 3, 3]),
    ("floor", [0, 0, 1, 1, 2, 2, 3, 3]),
    ("ceil", [1, 1, 2, 2, 3, 3, 3, 3]),
])
def test_resize_tf_half_pixel_for_nearest_follows_the_onnx_formula(nearest, want):
    """x_original = (x_resized + 0.5) / scale (ONNX Resize-13), then the nearest mode, clamped."""
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4) * 10
    (got,) = run_npuc("Resize", [x], {"size": (1, 1, 1, 8), "mode": "nearest", "nearest_mode": nearest,
                                      "coordinate_transformation_mode": "tf_half_pixel_for_nearest"})
    np.testing.assert_array_equal(got.ravel(), np.array(want, dtype=np.float32) * 10)
    (down,) = run_npuc("Resize", [np.arange(6, dtype=np.float32).reshape(1, 1, 1, 6)],
                       {"size": (1, 1, 1, 3), "mode": "nearest", "nearest_mode": nearest,
                        "coordinate_transformation_mode": "tf_half_pixel_for_nearest"})
    np.testing.assert_array_equal(down.ravel(), [1, 3, 5])


@pytest.mark.parametrize("size", SIZES, ids=["up2", "down", "odd", "to1"])
@pytest.mark.parametrize("coord", COORD_MODES)
def test_resize_linear_matches_onnxruntime(coord, size):
    check_op("Resize", [rand(1, 2, 4, 6)], {"size": size, "mode": "linear", "coordinate_transformation_mode": coord})


def test_resize_other_axes_and_identity():
    check_op("Resize", [rand(1, 2, 4, 6)], {"size": (1, 2, 4, 6), "mode": "linear"})
    check_op("Resize", [rand(2, 3, 4)], {"size": (2, 6, 8), "mode": "nearest",
                                         "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_matches_onnxruntime(axis):
    x = rand(3, 4, 5)
    check_op("Gather", [x, np.array([[0, -1], [1, 2]], dtype=np.int64)], {"axis": axis}, const=(1,))
    check_op("Gather", [x, np.array(1, dtype=np.int64)], {"axis": axis}, const=(1,))


@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-2, None), (1, 3)])
def test_shape_matches_onnxruntime(start, end):
    (got,) = check_op("Shape", [rand(2, 3, 4, 5)], {"start": start, "end": end})
    assert got.dtype == np.int64


def test_expand_tile():
    check_op("Expand", [rand(3, 1)], {"shape": (2, 3, 4)})
    check_op("Expand", [rand(2, 1, 4)], {"shape": (3, 1)})
    check_op("Tile", [rand(2, 3)], {"repeats": (2, 3)})


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_matches_onnxruntime(mode):
    check_op("DepthToSpace", [rand(2, 8, 3, 4)], {"blocksize": 2, "mode": mode})


def test_space_to_depth_matches_onnxruntime():
    check_op("SpaceToDepth", [rand(2, 3, 4, 6)], {"blocksize": 2})
