"""adaround: im2col patches match the conv, learned rounding beats round-to-nearest, outputs not worse."""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.emulation import quantize_for_emulation
from npuc.passes.adaround import AdaRound, AdaRoundSettings, adaround_layer
from npuc.passes.base import PassContext
from npuc.passes.layer_data import PatchGeometry, channel_rows
from accuracy_graphs import chain, feeds, outputs, snr_db


def test_patches_times_weights_is_the_conv():
    from npuc.backends.reference.executor import run_graph

    g = chain(depthwise=True)
    x = feeds(g, 1, seed=4)[0]
    for name in ("c1", "dw", "c3"):
        op = g.op(name)
        ins = g.inputs_of(op)
        xin = run_graph(g, x, [ins[0].name])[ins[0].name] if ins[0].name != "x" else x["x"]
        y = run_graph(g, x, [g.outputs_of(op)[0].name])[g.outputs_of(op)[0].name]
        geo = PatchGeometry.of(g, op)
        pos = np.array([0, 7, 55, 99])
        pre = np.einsum("pgk,gok->pgo", geo.patches(xin, pos), geo.weight_matrix(ins[1].data)).reshape(4, -1)
        pre = pre + ins[2].data
        if op.attrs["activation"] == "relu":
            pre = np.maximum(pre, 0)
        np.testing.assert_allclose(pre, channel_rows(y, pos), rtol=1e-4, atol=1e-5)


def test_learned_rounding_reconstructs_better_than_nearest():
    from npuc.ir.op import Op

    rng = np.random.default_rng(0)
    op = Op("fc", "Gemm", {"activation": None})
    geo = PatchGeometry("Gemm", 1, 64, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1))
    w = rng.standard_normal((16, 64)) * 0.1
    scale = np.abs(w).max(axis=1) / 7.0  # 4-bit symmetric: a coarse grid where rounding matters
    # correlated inputs (rank 8 + offset), as real activations are: round-to-nearest's errors add up
    x = (rng.standard_normal((1024, 8)) @ rng.standard_normal((8, 64)) + 0.5).astype(np.float32).reshape(1024, 1, 64)
    target = x.reshape(1024, 64) @ w.T
    res = adaround_layer(op, geo, w, scale, -7, 7, np.zeros(16), x, target, AdaRoundSettings(iterations=300))
    assert res.adaround_error < 0.3 * res.nearest_error
    nearest = np.rint(w / scale.reshape(-1, 1))
    assert np.all(np.abs(res.weight - nearest) <= 1) and res.flipped > 0  # only rounding directions change


def test_pass_keeps_or_improves_output_snr():
    g = chain(depthwise=True, spread=0.5)
    items = feeds(g, 10, seed=3)
    calib, test = items[:6], items[6:]
    q = quantize_for_emulation(g, calib, per_channel=False)
    ref = outputs(g, test)
    before = snr_db(ref, outputs(q, test, quantized=True))
    w_before = {op.name: np.array(q.inputs_of(op)[1].data) for op in q.ops() if op.kind == "Conv"}
    ctx = PassContext()
    ctx.set("float_graph", g)
    ctx.set("calibration_set", calib)
    res = AdaRound(iterations=200, samples=512).run(q, ctx)
    assert res.stats["layers"] == 3
    for name, w in w_before.items():
        assert np.max(np.abs(np.asarray(q.inputs_of(q.op(name))[1].data, np.int64) - w)) <= 1
    assert snr_db(ref, outputs(q, test, quantized=True)) >= before - 0.1
