"""Per-output-channel fused clip bounds (what cross-layer equalization makes of a ReLU6): the quantized
clamp_min/clamp_max [C] of MAC layers, bit-exact simulator == reference, binary round trip, validation."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.lower import lower, to_graph
from npuc.backends.npu.sim import Simulator
from npuc.backends.reference.quantized_executor import run_quantized
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.printer import to_text
from npuc.ir.verify import find_problems
from sim_helpers import assert_bit_exact, binary_of, quantize_graph

F32 = DType.FLOAT32

#: (kind, cin, cout, k, stride, group, pads): pointwise GEMM, depthwise, stride-1 shifted taps,
#: strided im2col with groups, transposed conv, Gemm — every requantization loop of the simulator
GEOMETRIES = {
    "pointwise": ("Conv", 4, 6, 1, 1, 1, 0),
    "depthwise": ("Conv", 6, 6, 3, 1, 6, 1),
    "taps": ("Conv", 3, 5, 3, 1, 1, 1),
    "im2col": ("Conv", 4, 6, 3, 2, 2, 1),
    "transpose": ("ConvTranspose", 4, 6, 3, 2, 2, 1),
    "gemm": ("Gemm", 12, 7, 0, 0, 0, 0),
}


def channel_clip_graph(geometry: str, seed: int = 0, lower_bounds: bool = False) -> Graph:
    kind, cin, cout, k, s, g, p = GEOMETRIES[geometry]
    rng = np.random.default_rng(seed)
    graph = Graph(f"clip_{geometry}")
    hi = 10.0 ** rng.uniform(-1.5, 0.3, cout)  # channel 0 clamps hard, others barely
    hi[0] = 0.02
    lo = tuple(float(v) for v in -hi * rng.uniform(0.1, 1.0, cout)) if lower_bounds else 0.0
    attrs = {"activation": "clip", "clip_min": lo, "clip_max": tuple(float(v) for v in hi)}
    if kind == "Gemm":
        x = graph.add_input("x", F32, (3, cin))
        w = rng.normal(size=(cout, cin)) * 0.3
    else:
        x = graph.add_input("x", F32, (1, cin, 9, 8))
        w = rng.normal(size=(cin, cout // g, k, k) if kind == "ConvTranspose" else (cout, cin // g, k, k)) * 0.3
        attrs.update(strides=(s, s), pads=(p,) * 4, group=g)
        if kind == "ConvTranspose":
            attrs["output_padding"] = (s - 1, 0)
    bias = rng.normal(size=cout)
    bias[0] = 0.5  # channel 0 mostly above its bound
    b = graph.add_const("b", bias.astype(np.float32))
    op = graph.add_op(kind, [x, graph.add_const("w", w.astype(np.float32)), b], attrs, name="layer")
    graph.outputs = graph.outputs_of(op)
    assert not find_problems(graph)
    return graph


def _feeds(graph: Graph, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [{t.name: rng.normal(size=t.shape).astype(np.float32) * 2.0 for t in graph.inputs} for _ in range(n)]


def _layer(program):
    return next(l for l in program.layers if l.name == "layer")


@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_per_channel_clamp_bit_exact(geometry, mode):
    g = channel_clip_graph(geometry, lower_bounds=mode == "a16_w16")
    feeds = _feeds(g, 4)
    q = quantize_graph(g, feeds, precision_mode=mode)
    sim = assert_bit_exact(q, feeds + _feeds(g, 2, seed=9))
    program = decode(binary_of(q))
    params = program.layer_params(_layer(program))
    cout = GEOMETRIES[geometry][2]
    lo, hi = params["clamp_min"], params["clamp_max"]
    assert lo.shape == hi.shape == (cout,)
    assert np.all(lo <= hi) and len(set(hi.tolist())) > 1
    # the clamp binds: channel 0's tiny bound is reached by many outputs
    out = sim.run(feeds[0])[g.outputs[0].name]
    ch0 = out[:, 0] if out.ndim == 2 else out[0, 0]
    assert np.mean(ch0 == hi[0]) > 0.2
    # and the dequantized result matches the float clip within the grid step
    from npuc.backends.reference.executor import run_graph

    ref = run_graph(g, feeds[0])[g.outputs[0].name]
    deq = run_quantized(q, feeds[0])[g.outputs[0].name]
    step = q.outputs[0].quant.scale[0] if q.outputs[0].quant is not None else 0.0
    assert np.max(np.abs(deq - ref)) <= 0.05 * np.max(np.abs(ref)) + 2 * step


def test_per_tensor_clip_still_stores_one_clamp():
    g = channel_clip_graph("pointwise")
    g.op("layer").attrs.update(clip_min=0.0, clip_max=0.5)
    feeds = _feeds(g, 3)
    q = quantize_graph(g, feeds)
    assert_bit_exact(q, feeds)
    program = decode(binary_of(q))
    params = program.layer_params(_layer(program))
    assert params["clamp_min"].shape == params["clamp_max"].shape == (1,)


def test_binary_round_trip_keeps_per_channel_bounds():
    g = channel_clip_graph("taps", lower_bounds=True)
    q = quantize_graph(g, _feeds(g, 3))
    data = binary_of(q)
    back = decode(data)
    assert emit(back) == data
    assert to_text(to_graph(back)) == to_text(to_graph(decode(emit(lower(q)))))
    attrs = _layer(back).attrs
    assert isinstance(attrs["clip_max"], tuple) and len(attrs["clip_max"]) == 5
    np.testing.assert_array_equal(attrs["clip_max"], q.op("layer").attrs["clip_max"])


def _with_layer_attr(data: bytes, **attrs) -> bytes:
    program = decode(data)
    layer = _layer(program)
    layer.attrs.update(attrs)
    return emit(program)


def _with_param(data: bytes, name: str, value: np.ndarray) -> bytes:
    program = decode(data)
    pid = _layer(program).params[name]
    program.params[pid] = (program.params[pid][0], np.asarray(value, np.int64))
    return emit(program)


def test_decode_rejects_per_channel_bounds_of_the_wrong_length():
    g = channel_clip_graph("pointwise")
    data = binary_of(quantize_graph(g, _feeds(g, 2)))
    with pytest.raises(BinaryFormatError, match="per-channel bounds for 6 output channels"):
        decode(_with_layer_attr(data, clip_max=(1.0, 2.0)))
    with pytest.raises(BinaryFormatError, match="clip_min > clip_max"):
        decode(_with_layer_attr(data, clip_min=(0.0,) * 5 + (9.0,)))


@pytest.mark.parametrize("name, value, message", [
    ("clamp_max", [10, 20], r"shape \(2,\), expected \(1,\) or \(6,\)"),
    ("clamp_max", [[10] * 6], r"expected \(1,\) or \(6,\)"),
    ("clamp_min", [0, 0, 0, 0, 0, 300], r"values in \[0, 300\], allowed"),
    ("clamp_min", [0, 0, 0, 127, 0, 0], "channel 3 is empty"),
])
def test_simulator_validates_per_channel_clamps(name, value, message):
    g = channel_clip_graph("pointwise")
    q = quantize_graph(g, _feeds(g, 2), precision_mode="a8_w8")
    data = binary_of(q)
    params = decode(data).layer_params(_layer(decode(data)))
    if "empty" in message:
        value = np.maximum(np.asarray(value), 0)
        value[3] = int(params["clamp_max"][3]) + 1
    bad = decode(_with_param(data, name, value))  # the binary itself is well formed
    with pytest.raises(BinaryFormatError, match=message):
        Simulator(bad)


@pytest.mark.parametrize("geometry", ["taps", "gemm"])
def test_float16_layer_with_per_channel_clip(geometry):
    """A float16 layer keeps the float clip: the attribute bounds travel in the binary's layer attributes."""
    from npuc.backends.reference.executor import run_graph
    from npuc.quantization.config import QuantConfig

    g = channel_clip_graph(geometry, lower_bounds=True)
    feeds = _feeds(g, 3)
    cfg = QuantConfig()
    cfg.set_precision_mode(["layer"], "float16")
    q = quantize_graph(g, feeds, cfg)
    assert_bit_exact(q, feeds)
    ref = run_graph(g, feeds[0])[g.outputs[0].name]
    got = run_quantized(q, feeds[0])[g.outputs[0].name]
    np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())


@pytest.mark.slow
def test_equalized_mobilenet_v2_relu6_is_bit_exact():
    """benchmarks/mobilenet_v2.py (ReLU6 everywhere) after cross-layer equalization: the per-channel clamps of
    every ReLU6 layer, through quantize -> lower -> emit -> decode -> simulator, equal the reference."""
    import importlib.util
    from pathlib import Path

    from npuc.backends.reference.emulation import run_float_passes
    from npuc.frontends.onnx import load_onnx
    from npuc.passes.base import PassContext
    from npuc.passes.cross_layer_equalization import CrossLayerEqualization

    spec = importlib.util.spec_from_file_location(
        "npuc_bench_mobilenet_v2", Path(__file__).resolve().parents[3] / "benchmarks" / "mobilenet_v2.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = bench.build(seed=0, classes=10, stat_images=1)
    del model.graph.value_info[:]
    for d, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w")):
        d.dim_param = name
    g = run_float_passes(load_onnx(model, {model.graph.input[0].name: (1, 3, 32, 32)}))
    CrossLayerEqualization().run(g, PassContext())
    per_channel = [op for op in g.ops() if isinstance(op.attrs.get("clip_max"), tuple)]
    assert len(per_channel) >= 30
    feeds = _feeds(g, 4)
    q = quantize_graph(g, feeds, per_channel=False)
    assert_bit_exact(q, feeds + _feeds(g, 1, seed=5))
    program = decode(binary_of(q))
    sizes = {program.layer_params(l)["clamp_max"].size for l in program.layers if l.name in
             {op.name for op in per_channel}}
    assert min(sizes) > 1
