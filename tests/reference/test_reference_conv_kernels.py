"""Conv and ConvTranspose kernels against onnxruntime over strides, pads, dilations, groups and activations."""
from __future__ import annotations

import numpy as np
import pytest
from reference_oracle import check_op, rand

from npuc.backends.reference import conv_kernels
from npuc.backends.reference.conv_kernels import conv2d

CONV_CASES = [
    # (x shape, weight shape, attrs)
    ((1, 3, 9, 11), (4, 3, 3, 3), {}),
    ((1, 3, 9, 11), (4, 3, 3, 3), {"pads": (1, 1, 1, 1)}),
    ((2, 3, 9, 11), (5, 3, 3, 3), {"strides": (2, 2), "pads": (1, 0, 2, 1)}),
    ((1, 4, 12, 10), (6, 4, 3, 2), {"strides": (1, 2), "dilations": (2, 1), "pads": (2, 1, 0, 1)}),
    ((1, 4, 12, 10), (6, 4, 5, 5), {"pads": (2, 2, 2, 2), "activation": "relu"}),
    ((1, 6, 8, 8), (4, 3, 3, 3), {"group": 2, "pads": (1, 1, 1, 1)}),
    ((1, 6, 8, 8), (6, 2, 3, 3), {"group": 3, "strides": (2, 2), "activation": "clip", "clip_min": 0.0,
                                  "clip_max": 0.5}),
    # depthwise, with stride, dilation, asymmetric pads, channel multiplier 2
    ((1, 5, 10, 9), (5, 1, 3, 3), {"group": 5, "pads": (1, 1, 1, 1)}),
    ((2, 5, 10, 9), (5, 1, 3, 3), {"group": 5, "strides": (2, 2), "pads": (1, 1, 1, 1)}),
    ((1, 5, 10, 9), (5, 1, 5, 5), {"group": 5, "strides": (2, 1), "pads": (2, 2, 2, 2), "activation": "relu"}),
    ((1, 4, 11, 11), (4, 1, 3, 3), {"group": 4, "dilations": (2, 2), "pads": (2, 1, 0, 2)}),
    ((1, 3, 8, 8), (6, 1, 3, 3), {"group": 3, "pads": (1, 1, 1, 1)}),
    # pointwise: plain, strided, padded, grouped, batch
    ((1, 8, 7, 9), (16, 8, 1, 1), {}),
    ((2, 8, 7, 9), (16, 8, 1, 1), {"strides": (2, 2), "activation": "clip", "clip_min": -0.5, "clip_max": None}),
    ((1, 8, 7, 9), (16, 8, 1, 1), {"pads": (1, 0, 1, 2)}),
    ((1, 8, 7, 9), (12, 4, 1, 1), {"group": 2}),
    # >= 16 input channels per group: the tap-by-tap matmul path
    ((1, 16, 9, 10), (8, 16, 3, 3), {"pads": (1, 1, 1, 1), "activation": "relu"}),
    ((2, 16, 11, 10), (8, 16, 3, 3), {"strides": (2, 2), "dilations": (1, 2), "pads": (0, 2, 1, 1)}),
    ((1, 32, 9, 9), (6, 16, 5, 3), {"group": 2, "strides": (1, 2), "pads": (2, 1, 2, 1)}),
    # single input channel, group 1 (not depthwise)
    ((1, 1, 9, 9), (3, 1, 3, 3), {"pads": (1, 1, 1, 1)}),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("xs,ws,attrs", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_matches_onnxruntime(xs, ws, attrs, bias):
    b = rand(ws[0], seed=3) if bias else None
    check_op("Conv", [rand(*xs, seed=1), rand(*ws, seed=2), b], attrs, const=(1, 2))


def test_conv_blocks_rows_and_channels_when_large(monkeypatch):
    """Small block budgets force several pixel blocks (im2col, tap matmul) and depthwise channel blocks."""
    monkeypatch.setattr(conv_kernels, "IM2COL_BLOCK_ELEMENTS", 500)
    monkeypatch.setattr(conv_kernels, "CACHE_BLOCK_ELEMENTS", 200)
    monkeypatch.setattr(conv_kernels, "MIN_BLOCK_COLUMNS", 7)
    monkeypatch.setattr(conv_kernels, "DEPTHWISE_BLOCK_ELEMENTS", 3000)
    check_op("Conv", [rand(1, 3, 17, 13, seed=1), rand(4, 3, 3, 3, seed=2), rand(4, seed=3)],
             {"pads": (1, 1, 1, 1), "strides": (2, 1), "activation": "relu"}, const=(1, 2))
    check_op("Conv", [rand(1, 6, 17, 13, seed=1), rand(6, 1, 3, 3, seed=2), rand(6, seed=3)],
             {"group": 6, "pads": (1, 1, 1, 1), "activation": "relu"}, const=(1, 2))
    check_op("Conv", [rand(2, 32, 17, 13, seed=1), rand(12, 16, 3, 3, seed=2), rand(12, seed=3)],
             {"group": 2, "strides": (2, 2), "pads": (1, 2, 0, 1), "activation": "clip", "clip_min": 0.0,
              "clip_max": 6.0}, const=(1, 2))


def test_conv_stays_float32():
    y = conv2d(rand(1, 3, 8, 8), rand(4, 3, 3, 3), rand(4), pads=(1, 1, 1, 1))
    assert y.dtype == np.float32


CONV_T_CASES = [
    ((1, 4, 5, 6), (4, 3, 2, 2), {"strides": (2, 2)}),
    ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": (2, 2), "pads": (1, 1, 1, 1), "output_padding": (1, 1)}),
    ((2, 4, 5, 6), (4, 2, 3, 2), {"strides": (1, 2), "pads": (0, 1, 1, 0)}),
    ((1, 4, 5, 5), (4, 2, 3, 3), {"group": 2, "strides": (2, 2), "activation": "relu"}),
    ((1, 3, 5, 5), (3, 2, 3, 3), {"dilations": (2, 2), "strides": (3, 2), "pads": (1, 2, 0, 1)}),
    ((1, 3, 4, 4), (3, 1, 4, 4), {"strides": (2, 2), "pads": (1, 1, 1, 1), "activation": "clip",
                                  "clip_min": 0.0, "clip_max": 1.0}),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("xs,ws,attrs", CONV_T_CASES, ids=[str(i) for i in range(len(CONV_T_CASES))])
def test_conv_transpose_matches_onnxruntime(xs, ws, attrs, bias):
    group = attrs.get("group", 1)
    b = rand(ws[1] * group, seed=3) if bias else None
    check_op("ConvTranspose", [rand(*xs, seed=1), rand(*ws, seed=2), b], attrs, const=(1, 2))
