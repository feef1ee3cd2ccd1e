"""Gemm, MatMul, BatchNormalization, Softmax and LogSoftmax kernels against onnxruntime."""
from __future__ import annotations

import pytest
from reference_oracle import check_op, rand

ACTS = [{}, {"activation": "relu"}, {"activation": "clip", "clip_min": -0.5, "clip_max": 0.5}]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("attrs", ACTS, ids=["none", "relu", "clip"])
def test_gemm_matches_onnxruntime(attrs, bias):
    check_op("Gemm", [rand(3, 8), rand(5, 8, seed=2), rand(5, seed=3) if bias else None], attrs, const=(1, 2))


@pytest.mark.parametrize("sa,sb", [((3, 8), (8, 5)), ((2, 3, 8), (8, 5)), ((2, 1, 3, 8), (4, 8, 5)),
                                   ((8,), (8, 5)), ((3, 8), (8,)), ((2, 3, 8), (2, 8, 4))])
@pytest.mark.parametrize("attrs", ACTS, ids=["none", "relu", "clip"])
def test_matmul_matches_onnxruntime(sa, sb, attrs):
    check_op("MatMul", [rand(*sa), rand(*sb, seed=2)], attrs)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3), (1, 3, 7)])
def test_batchnorm_matches_onnxruntime(shape):
    c = shape[1]
    check_op("BatchNormalization",
             [rand(*shape), rand(c, seed=2), rand(c, seed=3), rand(c, seed=4), rand(c, seed=5, low=0.1, high=2.0)],
             {"epsilon": 1e-3}, const=(1, 2, 3, 4))


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_softmax_matches_onnxruntime(kind, axis):
    check_op(kind, [rand(3, 4, 5) * 10], {"axis": axis})
