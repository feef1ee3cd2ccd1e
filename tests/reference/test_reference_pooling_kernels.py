"""Pooling and reduction kernels against onnxruntime (pads, strides, dilations, ceil_mode, count_include_pad)."""
from __future__ import annotations

import numpy as np
import pytest
from reference_oracle import check_op, rand

POOL_CASES = [
    {"kernel": (2, 2), "strides": (2, 2)},
    {"kernel": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)},
    {"kernel": (3, 3), "strides": (2, 2), "ceil_mode": True},
    {"kernel": (3, 2), "strides": (2, 3), "pads": (1, 0, 1, 1), "ceil_mode": True},
    {"kernel": (2, 2), "strides": (1, 1), "pads": (0, 0, 1, 1)},
    {"kernel": (3, 3), "strides": (3, 3), "pads": (1, 1, 0, 0), "ceil_mode": True},
]


@pytest.mark.parametrize("attrs", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_max_pool_matches_onnxruntime(attrs):
    check_op("MaxPool", [rand(2, 3, 10, 11)], attrs)


@pytest.mark.parametrize("dilations", [(2, 2), (1, 2)])
def test_max_pool_dilated(dilations):
    check_op("MaxPool", [rand(1, 2, 11, 12)], {"kernel": (3, 2), "strides": (2, 1), "pads": (1, 1, 1, 1),
                                                 "dilations": dilations, "ceil_mode": True})


@pytest.mark.parametrize("include_pad", [False, True], ids=["exclude_pad", "include_pad"])
@pytest.mark.parametrize("attrs", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_average_pool_matches_onnxruntime(attrs, include_pad):
    check_op("AveragePool", [rand(2, 3, 10, 11)], {**attrs, "count_include_pad": include_pad})


@pytest.mark.parametrize("kind", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 9)])
def test_global_pool_matches_onnxruntime(kind, shape):
    check_op(kind, [rand(*shape)])


@pytest.mark.parametrize("kind", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("axes,keepdims", [(None, True), (None, False), ((1,), True), ((-1, 1), False),
                                           ((0, 2, 3), True)])
def test_reduce_matches_onnxruntime(kind, axes, keepdims):
    check_op(kind, [rand(2, 3, 4, 5)], {"axes": axes, "keepdims": keepdims})


def test_reduce_sum_integer_keeps_dtype():
    (got,) = check_op("ReduceSum", [np.arange(24, dtype=np.int32).reshape(2, 3, 4)], {"axes": (1,)})
    assert got.dtype == np.int32
