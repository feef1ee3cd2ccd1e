"""cross_layer_equalization: pairs, equal ranges, unchanged float outputs, high-bias absorption, int8 SNR gain."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from npuc.backends.reference.emulation import quantize_for_emulation, run_float_passes
from npuc.frontends.onnx import load_onnx
from npuc.passes.base import PassContext
from npuc.passes.cross_layer_equalization import CrossLayerEqualization, find_pairs
from accuracy_graphs import chain, conv, feeds, outputs, snr_db, wide_channel_block, F32
from pass_testing import apply, assert_preserves
from npuc_testing import ppocr_model

MOBILENET = Path(__file__).resolve().parents[2] / "benchmarks" / "mobilenet_v2.py"
CLS = ppocr_model("ch_ppocr_mobile_v2.0_cls_infer.onnx")


def _ranges(graph, name: str, axis: int) -> np.ndarray:
    w = np.abs(graph.inputs_of(graph.op(name))[1].data)
    return np.max(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1), axis=1)


def test_pair_ranges_equal_and_outputs_unchanged():
    g = chain(depthwise=False, spread=1.5)
    before = _ranges(g, "c1", 0) / _ranges(g, "c3", 1)
    assert before.max() / before.min() > 10  # really unequal to start with
    res = assert_preserves(g, CrossLayerEqualization(), rtol=1e-5)
    assert res.stats["pairs"] == 1
    np.testing.assert_allclose(_ranges(g, "c1", 0), _ranges(g, "c3", 1), rtol=1e-6)


def test_chain_of_three_through_depthwise():
    g = chain(depthwise=True, spread=1.5)
    assert [(a.name, b.name) for a, b in find_pairs(g)] == [("c1", "dw"), ("dw", "c3")]
    res = assert_preserves(g, CrossLayerEqualization(iterations=100, tolerance=1e-8), rtol=1e-5)
    assert res.stats["sweeps"] < 100
    # converged: each middle channel's range equals both neighbours' (geometric equalization of the chain)
    np.testing.assert_allclose(_ranges(g, "c1", 0), _ranges(g, "dw", 0), rtol=1e-5)
    np.testing.assert_allclose(_ranges(g, "dw", 0), _ranges(g, "c3", 1), rtol=1e-5)


def test_shared_outputs_are_not_paired():
    from npuc.ir.graph import Graph

    rng = np.random.default_rng(0)
    g = Graph("g")
    x = g.add_input("x", F32, (1, 3, 6, 6))
    y = conv(g, x, 4, 1, rng, name="a")
    g.op("a").attrs.update(activation="clip", clip_min=0.0, clip_max=6.0)
    z = conv(g, y, 4, 1, rng, name="b")  # reads a ReLU6 output: paired, the bounds become per channel
    u = conv(g, z, 4, 1, rng, name="c")
    g.add_op("Add", [z, u], name="add")  # b's output has two readers: skipped
    g.outputs = [g.outputs_of(g.op("add"))[0]]
    assert [(a.name, b.name) for a, b in find_pairs(g)] == [("a", "b")]


# ------------------------------------------------------------------ ReLU6: per-channel clip bounds
def _relu6_chain(depthwise: bool, seed: int = 0, spread: float = 1.5):
    """conv(ReLU6) -> [depthwise conv(ReLU6, padded)] -> conv, with output-channel ranges 10**+-spread apart."""
    from npuc.ir.graph import Graph

    rng = np.random.default_rng(seed)
    g = Graph("relu6_chain")
    x = g.add_input("x", F32, (1, 4, 10, 10))
    y = conv(g, x, 8, 3, rng, pads=1, act="clip", spread=spread, name="c1")
    if depthwise:
        y = conv(g, y, 8, 3, rng, group=8, pads=1, act="clip", spread=spread, name="dw")
    g.outputs = [conv(g, y, 6, 1, rng, name="c3")]
    for op in g.ops():
        if op.attrs.get("activation") == "clip":
            op.attrs.update(clip_min=0.0, clip_max=6.0)
    return g


def _clipped_fraction(graph, op_name: str, items) -> float:
    """Fraction of the op's outputs sitting at a (per-channel) upper clip bound."""
    from npuc.backends.reference.executor import Executor

    op = graph.op(op_name)
    hi = np.asarray(op.attrs["clip_max"], np.float64).reshape(-1)
    hi = hi.reshape(1, -1, 1, 1) if hi.size > 1 else hi.reshape(())
    t = graph.outputs_of(op)[0].name
    vals = np.concatenate([Executor(graph).run(f, [t])[t] for f in items]).astype(np.float64)
    return float(np.mean(np.isclose(vals, hi, rtol=1e-6, atol=0)))


@pytest.mark.parametrize("depthwise", [False, True])
def test_relu6_pairs_keep_float_outputs_and_equalize_ranges(depthwise):
    g = _relu6_chain(depthwise)
    names = ["c1", "dw", "c3"] if depthwise else ["c1", "c3"]
    pairs = list(zip(names, names[1:]))
    assert [(a.name, b.name) for a, b in find_pairs(g)] == pairs
    before = _ranges(g, "c1", 0) / _ranges(g, names[1], 0 if depthwise else 1)
    assert before.max() / before.min() > 10  # really unequal to start with
    items = [{k: v * 3.0 for k, v in f.items()} for f in feeds(g, 6, seed=3)]  # large inputs: many clip
    for name in names[:-1]:
        assert _clipped_fraction(g, name, items) > 0.05
    ref = outputs(g, items)
    res = apply(g, CrossLayerEqualization(iterations=200, tolerance=1e-9, bias_absorption=False))
    assert res.stats["pairs"] == len(pairs)
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    for name in names[:-1]:
        hi = g.op(name).attrs["clip_max"]
        assert isinstance(hi, tuple) and len(hi) == 8 and g.op(name).attrs["clip_min"] == 0.0
        assert max(hi) / min(hi) > 3  # really per channel now
        assert _clipped_fraction(g, name, items) > 0.05  # the same values still hit the (scaled) bounds
    for a, b in pairs:
        np.testing.assert_allclose(_ranges(g, a, 0), _ranges(g, b, 0 if b == "dw" else 1), rtol=1e-5)
    # and on unscaled random inputs (the generic check of every pass)
    h = _relu6_chain(depthwise)
    assert_preserves(h, CrossLayerEqualization(), rtol=1e-5)


def test_relu6_pair_clip_bounds_are_the_scaled_ones():
    g = _relu6_chain(False)
    w_before = np.array(g.inputs_of(g.op("c1"))[1].data, np.float64)
    apply(g, CrossLayerEqualization(bias_absorption=False))
    s = np.max(np.abs(w_before.reshape(8, -1)), axis=1) / _ranges(g, "c1", 0)  # c1's channel i divided by s_i
    np.testing.assert_allclose(g.op("c1").attrs["clip_max"], 6.0 / s, rtol=1e-5)


@pytest.mark.parametrize("bias_shift", [4.0, 9.0])  # 9: some channels always above 6, c_i capped at the bound
def test_relu6_high_bias_absorption_respects_per_channel_bounds(bias_shift):
    from npuc.ir.graph import Graph

    rng = np.random.default_rng(3)
    g = Graph("absorb6")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    y = conv(g, x, 6, 3, rng, pads=1, act="clip", spread=1.0, bias_shift=bias_shift, name="c1")
    g.op("c1").attrs.update(clip_min=0.0, clip_max=6.0)
    g.outputs = [conv(g, y, 5, 1, rng, name="c2")]  # 1x1, no padding: absorption is exact
    items = feeds(g, 6, seed=1)
    ref = outputs(g, items)
    plain = g.copy()
    apply(plain, CrossLayerEqualization(bias_absorption=False))
    ctx = PassContext()
    ctx.set("calibration_set", items)
    res = apply(g, CrossLayerEqualization(), ctx)
    assert res.stats["absorbed"] == 1
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # channel i's margin c_i left both its bias and its upper bound, and never more than the bound
    c = plain.inputs_of(plain.op("c1"))[2].data.astype(np.float64) - g.inputs_of(g.op("c1"))[2].data
    hi_plain = np.asarray(plain.op("c1").attrs["clip_max"])
    hi = np.asarray(g.op("c1").attrs["clip_max"])
    assert np.all(c >= -1e-6) and np.any(c > 0.5)
    np.testing.assert_allclose(hi_plain - hi, c, rtol=1e-4, atol=1e-5)
    assert np.all(hi >= 0)
    assert np.all(c <= hi_plain + 1e-6)
    if bias_shift > 6:
        assert np.any(hi < 1e-6)  # a channel stuck at its bound: all of it moved to c2


def test_high_bias_absorption_exact_on_calibration_items():
    from npuc.ir.graph import Graph

    rng = np.random.default_rng(3)
    g = Graph("absorb")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    y = conv(g, x, 6, 3, rng, pads=1, act="relu", bias_shift=8.0, name="c1")
    g.outputs = [conv(g, y, 5, 1, rng, name="c2")]  # 1x1, no padding: absorption is exact
    items = feeds(g, 6, seed=1)
    ref = outputs(g, items)
    ctx = PassContext()
    ctx.set("calibration_set", items)
    res = apply(g, CrossLayerEqualization(), ctx)
    assert res.stats["absorbed"] == 1
    assert np.all(g.inputs_of(g.op("c1"))[2].data < 8.0 - 1.0)  # the high bias went to c2
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-4, atol=1e-4)


def test_no_absorption_into_padded_conv():
    g = chain(depthwise=True)
    ctx = PassContext()
    ctx.set("calibration_set", feeds(g, 2))
    res = apply(g, CrossLayerEqualization(), ctx)
    # c1 -> dw (padded) is skipped; dw -> c3 (1x1) is a candidate but its minima are negative
    assert res.stats.get("absorbed", 0) == 0


def test_real_cls_model_float_outputs_unchanged():
    if not CLS.is_file():
        pytest.skip("rapidocr_onnxruntime models not installed")
    g = run_float_passes(load_onnx(str(CLS), {"x": (1, 3, 48, 192)}))
    res = assert_preserves(g, CrossLayerEqualization(), rtol=1e-5, seeds=(0, 1))
    assert res.stats["pairs"] >= 6


def _mobilenet_v2_unequal(seed: int = 0, spread: float = 1.5, relu6: bool = False):
    """benchmarks/mobilenet_v2.py's model, "un-equalized": each BN -> ReLU6 -> Conv has its BN scale/shift
    multiplied by a per-channel factor f in [10**-spread, 10**spread] and the conv's input channels divided
    by f. With ReLU instead of ReLU6 (relu6=False) that is the same float function with very unequal ranges;
    with the ReLU6 kept it is another function (channel c now saturates at 6 / f_c of the original), still
    a ReLU6 network with very unequal per-channel ranges."""
    from onnx import helper, numpy_helper

    spec = importlib.util.spec_from_file_location("npuc_bench_mobilenet_v2", MOBILENET)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = bench.build(seed=seed, classes=10, stat_images=1)
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in model.graph.initializer}
    readers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def set_init(name: str, value: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))

    for node in model.graph.node:
        acts = readers.get(node.output[0], [])
        if node.op_type != "BatchNormalization" or len(acts) != 1 or acts[0].op_type != "Clip":
            continue
        convs = readers.get(acts[0].output[0], [])
        if len(convs) != 1 or convs[0].op_type != "Conv":
            continue
        gamma, beta = (numpy_helper.to_array(inits[n]) for n in node.input[1:3])
        f = 10.0 ** rng.uniform(-spread, spread, gamma.shape)
        set_init(node.input[1], gamma * f)
        set_init(node.input[2], beta * f)
        w = numpy_helper.to_array(inits[convs[0].input[1]]).astype(np.float64)
        depthwise = w.shape[1] == 1 and w.shape[0] == f.size
        set_init(convs[0].input[1], w / (f.reshape(-1, 1, 1, 1) if depthwise else f.reshape(1, -1, 1, 1)))
    nodes = [helper.make_node("Relu", [n.input[0]], list(n.output), name=n.name)
             if n.op_type == "Clip" and not relu6 else n for n in model.graph.node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.value_info[:]
    for d, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w")):
        d.dim_param = name  # any size: the tests run it small
    return model


@pytest.mark.slow
def test_per_tensor_int8_snr_improves_on_mobilenet_v2_style_model():
    model = _mobilenet_v2_unequal()
    g = run_float_passes(load_onnx(model, {model.graph.input[0].name: (1, 3, 32, 32)}))
    items = feeds(g, 12, seed=5)
    calib, test = items[:8], items[8:]
    ref = outputs(g, test)
    base = snr_db(ref, outputs(quantize_for_emulation(g, calib, per_channel=False), test, quantized=True))
    eq = g.copy()
    apply(eq, CrossLayerEqualization())
    assert snr_db(ref, outputs(eq, test)) > 100  # float model unchanged
    after = snr_db(ref, outputs(quantize_for_emulation(eq, calib, per_channel=False), test, quantized=True))
    assert after > base + 2.0, (base, after)


@pytest.mark.slow
def test_per_tensor_int8_snr_improves_on_mobilenet_v2_relu6_model():
    """The ReLU6 pairs are equalized too (their clip bounds become per channel)."""
    model = _mobilenet_v2_unequal(spread=1.0, relu6=True)
    g = run_float_passes(load_onnx(model, {model.graph.input[0].name: (1, 3, 32, 32)}))
    clips = [op for op in g.ops() if op.attrs.get("activation") == "clip"]
    assert clips and all(op.attrs["clip_max"] == 6.0 for op in clips)
    items = feeds(g, 12, seed=5)
    calib, test = items[:8], items[8:]
    ref = outputs(g, test)
    base = snr_db(ref, outputs(quantize_for_emulation(g, calib, per_channel=False), test, quantized=True))
    eq = g.copy()
    res = apply(eq, CrossLayerEqualization())
    assert sum(1 for op in clips if isinstance(eq.op(op.name).attrs["clip_max"], tuple)) >= len(clips) - 1
    assert res.stats["pairs"] >= 2 * 16  # every block: expand -> depthwise -> project
    assert snr_db(ref, outputs(eq, test)) > 100  # float model unchanged
    after = snr_db(ref, outputs(quantize_for_emulation(eq, calib, per_channel=False), test, quantized=True))
    print(f"MobileNetV2 (ReLU6) per-tensor int8 SNR: {base:.1f} dB -> {after:.1f} dB after CLE")
    assert after > base + 2.0, (base, after)


# ------------------------------------------------------------------ activation-aware ranges
def _channel_ranges(graph, tensor: str, items) -> np.ndarray:
    from npuc.backends.reference.executor import Executor

    ex = Executor(graph)
    vals = np.concatenate([ex.run(f, [tensor])[tensor] for f in items])
    return np.max(np.abs(vals), axis=(0, 2, 3))


def test_activation_ranges_need_calibration_data():
    from npuc.errors import NpucError

    with pytest.raises(NpucError, match="calibration data"):
        apply(wide_channel_block(), CrossLayerEqualization(ranges="activations"))


def test_activation_aware_float_unchanged_and_ranges_more_equal():
    g = wide_channel_block()
    items = feeds(g, 8, seed=2)
    dw_out = g.outputs_of(g.op("dw"))[0].name
    before = _channel_ranges(g, dw_out, items)
    assert before.max() / np.median(before) > 30
    ref = outputs(g, items)
    ctx = PassContext()
    ctx.set("calibration_set", items)
    res = apply(g, CrossLayerEqualization(ranges="activations", bias_absorption=False), ctx)
    assert res.stats["pairs"] == 2
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    after = _channel_ranges(g, g.outputs_of(g.op("dw"))[0].name, items)
    assert after.max() / after.min() < (before.max() / before.min()) ** 0.6, (before, after)
    # at the fixed point each dw output channel's range equals pw's input-channel weight range
    np.testing.assert_allclose(after, _ranges(g, "pw", 1), rtol=1e-3)


def test_activation_aware_int8_snr_improves():
    g = wide_channel_block()
    items = feeds(g, 12, seed=4)
    calib, test = items[:8], items[8:]
    ref = outputs(g, test)
    base = snr_db(ref, outputs(quantize_for_emulation(g, calib), test, quantized=True))
    by_weights = g.copy()
    apply(by_weights, CrossLayerEqualization())
    weights_snr = snr_db(ref, outputs(quantize_for_emulation(by_weights, calib), test, quantized=True))
    eq = g.copy()
    ctx = PassContext()
    ctx.set("calibration_set", calib)
    apply(eq, CrossLayerEqualization(ranges="activations"), ctx)
    assert snr_db(ref, outputs(eq, test)) > 100  # float model unchanged
    after = snr_db(ref, outputs(quantize_for_emulation(eq, calib), test, quantized=True))
    print(f"int8 SNR: plain {base:.1f} dB, weight CLE {weights_snr:.1f} dB, activation-aware CLE {after:.1f} dB")
    assert after > base + 10.0, (base, weights_snr, after)


def test_script_line_selects_activation_ranges():
    from npuc.script import default_registry
    from npuc.script.binder import bind
    from npuc.script.parser import parse
    from npuc.script_config import pipeline_settings

    text = ("pre_quantization_optimization(equalization, policy=enabled)\n"
            "pre_quantization_optimization(equalization, policy=enabled, ranges=activations)\n")
    s = pipeline_settings(bind(parse(text, "s.alls"), default_registry(), None))
    assert [(p.name, p.ranges) for p in s.float_passes] == [("cross_layer_equalization", "weights"),
                                                             ("cross_layer_equalization", "activations")]


def test_two_sided_clip_with_negative_bound_scales_both_bounds():
    """clip(-1, 1) (TFLite RELU_N1_TO_1): clip(x / s, -1 / s, 1 / s) = clip(x, -1, 1) / s; no absorption."""
    g = _relu6_chain(False)
    g.op("c1").attrs.update(clip_min=-1.0, clip_max=1.0)
    ctx = PassContext()
    ctx.set("calibration_set", feeds(g, 2))
    before = g.copy()
    res = apply(g, CrossLayerEqualization(), ctx)
    assert res.stats["pairs"] == 1 and res.stats.get("absorbed", 0) == 0
    lo, hi = (np.asarray(g.op("c1").attrs[k]) for k in ("clip_min", "clip_max"))
    assert lo.size == hi.size == 8
    np.testing.assert_allclose(lo, -hi, rtol=1e-12)
    items = [{k: v * 3.0 for k, v in f.items()} for f in feeds(g, 4, seed=8)]
    ref = outputs(before, items)
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_high_bias_absorption_takes_the_smaller_of_bn_rule_and_measured_minima():
    """A BN rule that promises more than the data shows must not break the float model on that data."""
    from npuc.ir.graph import Graph

    rng = np.random.default_rng(3)
    g = Graph("absorb_bn")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    y = conv(g, x, 6, 3, rng, pads=1, act="relu", bias_shift=8.0, name="c1")
    g.outputs = [conv(g, y, 5, 1, rng, name="c2")]
    # an over-optimistic BN record: beta - 3 gamma = 50 for every channel
    g.outputs_of(g.op("c1"))[0].meta["batchnorm"] = {"beta": np.full(6, 53.0), "gamma": np.ones(6)}
    items = feeds(g, 6, seed=1)
    ref = outputs(g, items)
    ctx = PassContext()
    ctx.set("calibration_set", items)
    assert apply(g, CrossLayerEqualization(), ctx).stats["absorbed"] == 1
    np.testing.assert_allclose(outputs(g, items), ref, rtol=1e-4, atol=1e-4)
