"""Elementwise kernels (arithmetic, comparisons, Where, activations, Cast) against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from reference_oracle import check_op, rand

from npuc.ir.dtypes import DType

BROADCASTS = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1, 3, 1, 1)), ((3, 1, 5), (4, 1)), ((2, 3), ())]


@pytest.mark.parametrize("kind", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("sa,sb", BROADCASTS, ids=["same", "channel", "both", "scalar"])
def test_binary_matches_onnxruntime(kind, sa, sb):
    b = rand(*sb, seed=2)
    if kind == "Div":
        b = np.where(np.abs(b) < 0.2, np.float32(0.5), b).astype(np.float32)
    check_op(kind, [rand(*sa, seed=1), b])


def test_binary_constant_operand():
    check_op("Mul", [rand(2, 3, 4), rand(3, 1, seed=5)], const=(1,))


def test_pow_matches_onnxruntime():
    check_op("Pow", [rand(3, 4, low=0.1, high=3.0), rand(3, 4, seed=2, low=-2.0, high=2.0)])
    check_op("Pow", [rand(3, 4, low=-3.0, high=3.0), np.array(2.0, np.float32)])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_arithmetic_keeps_dtype_and_truncates_division(dtype):
    a = np.array([[7, -7, 6, -6, 0, 5]], dtype=dtype)
    b = np.array([[2, 2, -4, -4, 3, 5]], dtype=dtype)
    for kind in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        (got,) = check_op(kind, [a, b])
        assert got.dtype == dtype


@pytest.mark.parametrize("kind", ["Equal", "Less", "Greater"])
def test_compare_matches_onnxruntime(kind):
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    b = np.array([2, 2, 7], dtype=np.int64)
    (got,) = check_op(kind, [a, b])
    assert got.dtype == np.bool_
    x = np.round(rand(2, 3, 4)).astype(np.float32)
    check_op(kind, [x, np.round(rand(3, 1, seed=2)).astype(np.float32)])


def test_where_matches_onnxruntime():
    cond = rand(2, 3, 4, seed=4) > 0
    check_op("Where", [cond, rand(2, 3, 4), rand(3, 1, seed=2)])
    check_op("Where", [cond[0], np.arange(12, dtype=np.int64).reshape(3, 4), np.array(-1, np.int64)])


UNARY = {
    "Relu": ({}, None), "Sigmoid": ({}, None), "HardSwish": ({}, None), "SiLU": ({}, None), "Tanh": ({}, None),
    "Exp": ({}, None), "Neg": ({}, None), "Abs": ({}, None), "Erf": ({}, None), "Floor": ({}, None),
    "Ceil": ({}, None), "Identity": ({}, None), "Dropout": ({}, None),
    "Log": ({}, (0.01, 10.0)), "Sqrt": ({}, (0.0, 10.0)), "Reciprocal": ({}, (0.1, 5.0)),
    "LeakyRelu": ({"alpha": 0.1}, None),
    "HardSigmoid": ({"alpha": 0.2, "beta": 0.5}, None),
}


@pytest.mark.parametrize("kind", sorted(UNARY))
def test_unary_matches_onnxruntime(kind):
    attrs, bounds = UNARY[kind]
    x = rand(2, 3, 5, 7, low=bounds[0], high=bounds[1]) if bounds else rand(2, 3, 5, 7) * 4
    check_op(kind, [x], attrs)


def test_sigmoid_family_is_stable_for_large_magnitudes():
    x = np.array([-1000.0, -90.0, -20.0, 0.0, 20.0, 90.0, 1000.0], dtype=np.float32)
    for kind in ("Sigmoid", "SiLU", "Tanh", "Erf", "HardSwish", "HardSigmoid"):
        (got,) = check_op(kind, [x])
        assert np.isfinite(got).all(), kind


@pytest.mark.parametrize("attrs", [{"min": 0.0, "max": 6.0}, {"min": -1.0, "max": None}, {"min": None, "max": 0.5},
                                   {"min": None, "max": None}])
def test_clip_matches_onnxruntime(attrs):
    check_op("Clip", [rand(3, 4, 5) * 4], attrs)


def test_clip_integer_input():
    check_op("Clip", [np.arange(-5, 5, dtype=np.int64)], {"min": -2, "max": 3})


@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1)])
def test_prelu_matches_onnxruntime(slope_shape):
    check_op("PRelu", [rand(2, 3, 4, 5), rand(*slope_shape, seed=3)], const=(1,))


@pytest.mark.parametrize("src,to", [
    (np.float32, DType.INT64), (np.float32, DType.INT32), (np.float32, DType.UINT8), (np.int64, DType.FLOAT32),
    (np.float32, DType.BOOL), (np.bool_, DType.FLOAT32), (np.int64, DType.INT32), (np.float32, DType.FLOAT16),
])
def test_cast_matches_onnxruntime(src, to):
    x = (rand(4, 6) * 5).astype(src) if src is not np.bool_ else rand(4, 6) > 0
    if to is DType.UINT8:
        x = np.abs(x)
    (got,) = check_op("Cast", [x], {"to": to})
    assert got.dtype == to.numpy


@pytest.mark.parametrize("kind", ["Sigmoid", "HardSigmoid", "HardSwish", "SiLU"])
def test_blockwise_activations_match_onnxruntime(kind, monkeypatch):
    """Large arrays are processed block by block (a small block size forces several, and a ragged last one)."""
    from npuc.backends.reference import elementwise_kernels

    monkeypatch.setattr(elementwise_kernels, "ACTIVATION_BLOCK_ELEMENTS", 16)
    check_op(kind, [rand(2, 3, 5, 7) * 4])
