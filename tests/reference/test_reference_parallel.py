"""Chunked (multi-threaded) conv paths give the single-threaded results, and the work sharing itself."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from npuc.backends.reference import conv_kernels, parallel
from npuc.backends.reference.conv_kernels import conv2d

CASES = [
    ((2, 3, 40, 33), (8, 3, 3, 3), {"strides": (2, 2), "pads": (1, 1, 1, 1)}),  # im2col
    ((2, 16, 30, 27), (12, 16, 3, 3), {"pads": (1, 0, 2, 1), "dilations": (1, 2)}),  # tap matmul
    ((2, 12, 31, 29), (24, 1, 5, 5), {"group": 12, "strides": (2, 1), "pads": (2, 2, 2, 2)}),  # depthwise x2
    ((2, 16, 40, 40), (24, 16, 1, 1), {}),  # pointwise, column chunks
]


@pytest.mark.parametrize("xs, ws, attrs", CASES)
@pytest.mark.parametrize("act", [None, "relu"])
def test_chunked_conv_matches_serial(monkeypatch, xs, ws, attrs, act):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    args = (x, w, b, attrs.get("strides", (1, 1)), attrs.get("pads", (0, 0, 0, 0)),
            attrs.get("dilations", (1, 1)), attrs.get("group", 1))
    relu = (lambda y: np.maximum(y, 0, out=y)) if act else None
    serial = conv2d(*args, act=relu)
    monkeypatch.setattr(conv_kernels, "PARALLEL_MIN_MACS", 1)
    monkeypatch.setattr(conv_kernels, "MIN_BLOCK_COLUMNS", 8)
    with parallel.threads(3):
        chunked = conv2d(*args, act=relu)
    np.testing.assert_allclose(chunked, serial, rtol=1e-5, atol=1e-5)


def test_parallel_for_runs_every_chunk_once_and_reraises():
    seen = []
    lock = threading.Lock()

    def fn(i):
        with lock:
            seen.append(i)

    with parallel.threads(3):
        parallel.parallel_for(50, fn)
    assert sorted(seen) == list(range(50))

    def bad(i):
        if i == 7:
            raise ValueError("chunk 7")

    with parallel.threads(2), pytest.raises(ValueError, match="chunk 7"):
        parallel.parallel_for(20, bad)
    with parallel.threads(2):  # the pool is usable again after a failure
        seen.clear()
        parallel.parallel_for(5, fn)
    assert sorted(seen) == list(range(5))


def test_parallel_for_is_serial_outside_a_run():
    assert parallel.current_threads() == 1
    order = []
    parallel.parallel_for(4, order.append)
    assert order == [0, 1, 2, 3]


def test_chunked_elementwise_matches_serial(monkeypatch):
    from npuc.backends.reference import elementwise_kernels
    from npuc.backends.reference.kernels import FLOAT_KERNELS
    from npuc.backends.reference.fused_activation import clamp

    class Op:
        attrs = {"alpha": 0.2, "beta": 0.5}

    x = (np.random.default_rng(2).standard_normal((2, 7, 33, 31)) * 5).astype(np.float32)
    serial = [FLOAT_KERNELS[k](Op, [x])[0] for k in ("HardSwish", "HardSigmoid")]
    serial.append(clamp(x, -1.0, 2.0))
    monkeypatch.setattr(elementwise_kernels, "PARALLEL_MIN_ELEMENTS", 100)
    with parallel.threads(3):
        chunked = [FLOAT_KERNELS[k](Op, [x])[0] for k in ("HardSwish", "HardSigmoid")]
        chunked.append(clamp(x, -1.0, 2.0))
    for a, b in zip(serial, chunked):
        np.testing.assert_array_equal(a, b)
