"""stream_equalization: residual streams found and tied, float outputs unchanged, int8 SNR gain, script line."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.reference.emulation import quantize_for_emulation
from npuc.errors import NpucError
from npuc.ir.graph import Graph
from npuc.passes.base import PassContext
from npuc.passes.stream_equalization import StreamEqualization, streams
from accuracy_graphs import conv, feeds, outputs, snr_db, F32
from pass_testing import apply

WIDE = (1, 5)  # stream channels ~20x wider than the others


def _residual(seed: int = 0, head_output: bool = False) -> Graph:
    """conv(relu) -> 2 blocks [dw -> 1x1 -> Add(skip) -> Relu] with a zero channel Pad in the second skip,
    -> 1x1 head (the output). Stream channels WIDE are ~20x wider than the others in every stream tensor."""
    rng = np.random.default_rng(seed)
    g = Graph("residual")
    x = g.add_input("x", F32, (1, 4, 10, 10))
    s = conv(g, x, 8, 3, rng, pads=1, act="relu", name="c0")
    for i, cout in enumerate((8, 10)):
        y = conv(g, s, 8, 3, rng, group=8, pads=1, name=f"dw{i}")
        y = conv(g, y, cout, 1, rng, name=f"pw{i}")
        skip = s
        if cout != 8:
            skip = g.outputs_of(g.add_op("Pad", [s], {"pads": (0, 0, 0, 0, 0, cout - 8, 0, 0)}, name="pad"))[0]
        a = g.outputs_of(g.add_op("Add", [skip, y], {}, name=f"add{i}"))[0]
        s = g.outputs_of(g.add_op("Relu", [a], {}, name=f"relu{i}"))[0]
    for name in ("c0", "pw0", "pw1"):  # widen the stream channels at every producer
        op = g.op(name)
        w, b = (np.array(t.data) for t in g.inputs_of(op)[1:3])
        w[list(WIDE)] *= 20.0
        b[list(WIDE)] *= 20.0
        g.set_input(op, 1, g.add_const(f"{name}_w_wide", w.astype(np.float32)))
        g.set_input(op, 2, g.add_const(f"{name}_b_wide", b.astype(np.float32)))
    for name in ("dw0", "dw1"):  # ... and read them back at the usual scale
        op = g.op(name)
        w = np.array(g.inputs_of(op)[1].data)
        w[list(WIDE)] /= 20.0
        g.set_input(op, 1, g.add_const(f"{name}_w_narrow", w.astype(np.float32)))
    head = conv(g, s, 3, 1, rng, name="head")
    wh = np.array(g.inputs_of(g.op("head"))[1].data)
    wh[:, list(WIDE)] /= 20.0
    g.set_input(g.op("head"), 1, g.add_const("head_w_narrow", wh.astype(np.float32)))
    g.outputs = [s, head] if head_output else [head]
    return g


def _ctx(items) -> PassContext:
    ctx = PassContext()
    ctx.set("calibration_set", items)
    return ctx


def test_one_stream_tied_through_the_channel_pad():
    g = _residual()
    (st,) = streams(g)
    names = {g.outputs_of(g.op(n))[0].name for n in ("c0", "pw0", "add0", "relu0", "pad", "pw1", "add1", "relu1")}
    assert set(st.tensors) == names
    assert st.classes == 10  # 8 channels tied from c0 to relu1, 2 more from the pad on
    c0, relu1 = g.outputs_of(g.op("c0"))[0].name, g.outputs_of(g.op("relu1"))[0].name
    np.testing.assert_array_equal(st.cls[relu1][:8], st.cls[c0])
    assert {op.name for op, _ in st.producers} == {"c0", "pw0", "pw1"}
    assert {op.name for op, _ in st.readers} == {"dw0", "dw1", "head"}


def test_a_stream_reaching_a_graph_output_is_left_alone():
    assert streams(_residual(head_output=True)) == []


def test_needs_calibration_data():
    with pytest.raises(NpucError, match="calibration data"):
        apply(_residual(), StreamEqualization())


def test_float_outputs_unchanged_and_int8_snr_improves():
    g = _residual()
    items = feeds(g, 12, seed=3)
    calib, test = items[:8], items[8:]
    ref = outputs(g, test)
    base = snr_db(ref, outputs(quantize_for_emulation(g, calib), test, quantized=True))
    eq = g.copy()
    res = apply(eq, StreamEqualization(), _ctx(calib))
    assert res.changed and res.stats == {"streams": 1, "rescaled": 1}
    np.testing.assert_allclose(outputs(eq, test), ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    after = snr_db(ref, outputs(quantize_for_emulation(eq, calib), test, quantized=True))
    print(f"int8 SNR: plain {base:.1f} dB, stream equalization {after:.1f} dB")
    assert after > base + 6.0, (base, after)
    w = np.abs(eq.inputs_of(eq.op("c0"))[1].data).reshape(8, -1).max(axis=1)
    w0 = np.abs(g.inputs_of(g.op("c0"))[1].data).reshape(8, -1).max(axis=1)
    spread = lambda r: r[list(WIDE)].min() / np.median(r)  # noqa: E731
    assert spread(w) < spread(w0) / 4  # the wide channels were divided down relative to the others


def test_script_line_runs_the_pass():
    from npuc.script.binder import bind
    from npuc.script.parser import parse
    from npuc.script_config import pipeline_settings, script_registry

    bound = bind(parse("stream_equalization(sweeps=5)\n", "s.alls"), script_registry(), None)
    assert [(p.name, p.sweeps) for p in pipeline_settings(bound).float_passes] == [("stream_equalization", 5)]
