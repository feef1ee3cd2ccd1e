"""Float kernels with a fused clip of per-output-channel bounds: every conv path (prepared pointwise and
depthwise, generic, transposed), Gemm and MatMul equal the unfused op followed by a broadcast clip."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.reference.executor import run_graph
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

F32 = DType.FLOAT32

CASES = {
    "pointwise": ("Conv", (2, 4, 6, 5), (6, 4, 1, 1), {}),
    "depthwise": ("Conv", (2, 4, 6, 5), (4, 1, 3, 3), {"group": 4, "pads": (1, 1, 1, 1)}),
    "generic": ("Conv", (2, 4, 6, 5), (6, 2, 3, 3), {"group": 2, "strides": (2, 2), "pads": (1, 0, 1, 0)}),
    "transpose": ("ConvTranspose", (1, 4, 4, 3), (4, 3, 2, 2), {"strides": (2, 2)}),
    "gemm": ("Gemm", (3, 5), (6, 5), {}),
    "matmul": ("MatMul", (2, 3, 5), (5, 6), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_per_channel_clip_equals_unfused_clip(case):
    kind, xs, ws, attrs = CASES[case]
    rng = np.random.default_rng(0)
    w = rng.normal(size=ws).astype(np.float32)
    cout = {"ConvTranspose": ws[1] * attrs.get("group", 1), "MatMul": ws[-1]}.get(kind, ws[0])
    hi = rng.uniform(0.05, 1.0, cout)
    lo = -rng.uniform(0.0, 0.5, cout)
    graphs = []
    for fused in (False, True):
        g = Graph(case)
        x = g.add_input("x", F32, xs)
        extra = {"activation": "clip", "clip_min": tuple(lo), "clip_max": tuple(hi)} if fused else {}
        op = g.add_op(kind, [x, g.add_const("w", w)], {**attrs, **extra}, name="op")
        g.outputs = g.outputs_of(op)
        graphs.append(g)
    feeds = {"x": rng.normal(size=xs).astype(np.float32)}
    plain = run_graph(graphs[0], feeds)[graphs[0].outputs[0].name]
    axis = 1 if kind.startswith("Conv") else -1
    shape = [1] * plain.ndim
    shape[axis] = cout
    expect = np.minimum(np.maximum(plain, lo.astype(np.float32).reshape(shape)), hi.astype(np.float32).reshape(shape))
    assert np.mean(expect != plain) > 0.2  # the bounds bind
    got = run_graph(graphs[1], feeds)[graphs[1].outputs[0].name]  # small convs run a prepared kernel
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)
