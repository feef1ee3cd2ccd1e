"""AveragePool rounding="half_away_from_zero" (TFLite's int8 kernel, docs/numerics.md section 8):
the formula by hand, simulator == reference bit for bit (hypothesis), binary round trip, validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.lower import lower, to_graph
from npuc.backends.npu.sim import Simulator
from npuc.backends.reference.integer_kernels.pooling import rounding_divide_away
from npuc.backends.reference.quantized_executor import run_quantized
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.printer import to_text
from sim_helpers import assert_bit_exact, binary_of, quantize_graph

F32 = DType.FLOAT32
AWAY = "half_away_from_zero"


def test_rounding_divide_away_by_hand():
    a = np.array([5, -5, 6, -6, 7, -7, 2, -2, 0, 1, -1, 4, -4, 9, -9])
    b = np.array([2, 2, 4, 4, 4, 4, 4, 4, 4, 3, 3, 6, 6, 6, 6])
    # 2.5 -> 3, -2.5 -> -3, 1.5 -> 2, -1.5 -> -2, 1.75 -> 2, 0.5 -> 1, -0.5 -> -1, 1/3 -> 0, 2/3 -> 1, 1.5 -> 2
    assert rounding_divide_away(a, b).tolist() == [3, -3, 2, -2, 2, -2, 1, -1, 0, 0, 0, 1, -1, 2, -2]


def pool_graph(k=(2, 2), s=(2, 2), pads=(0, 0, 0, 0), ceil=False, shape=(1, 3, 7, 8), rounding=AWAY) -> Graph:
    g = Graph("avg")
    x = g.add_input("x", F32, shape)
    op = g.add_op("AveragePool", [x], {"kernel": k, "strides": s, "pads": pads, "ceil_mode": ceil,
                                       "count_include_pad": False, "rounding": rounding}, name="pool")
    g.outputs = g.outputs_of(op)
    return g


def _feeds(shape, n, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [{"x": (rng.normal(size=shape) * scale).astype(np.float32)} for _ in range(n)]


def _same_encoding(q: Graph) -> Graph:
    """Give the pool's output the input's encoding (what a TFLite int8 model has): a pure code average."""
    op = q.op("pool")
    q.outputs_of(op)[0].quant = q.inputs_of(op)[0].quant
    return q


def _tflite_codes(codes: np.ndarray, k, s, pads, out_hw, lo, hi) -> np.ndarray:
    """TFLite's reference int8 AveragePool on NCHW codes: valid pixels only, (sum +- n/2) / n truncated."""
    n_, c_, h, w = codes.shape
    out = np.zeros((n_, c_) + out_hw, np.int64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * s[0] - pads[0], ox * s[1] - pads[1]
            win = codes[:, :, max(y0, 0):min(y0 + k[0], h), max(x0, 0):min(x0 + k[1], w)].astype(np.int64)
            cnt = win.shape[2] * win.shape[3]
            acc = win.sum(axis=(2, 3))
            out[:, :, oy, ox] = np.where(acc > 0, (acc + cnt // 2) // cnt, -((-acc + cnt // 2) // cnt))
    return np.clip(out, lo, hi)


@pytest.mark.parametrize("geometry", [((2, 2), (2, 2), (0, 0, 0, 0), False),   # counts 4
                                      ((3, 3), (2, 2), (1, 1, 1, 1), False),   # SAME-like: 4, 6, 9
                                      ((2, 3), (1, 2), (0, 1, 1, 0), True),    # ceil_mode, asymmetric pads
                                      ((4, 4), (3, 3), (1, 2, 2, 1), True)])
@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
@pytest.mark.parametrize("scheme", ["asymmetric", "symmetric"])
def test_equal_encodings_give_tflites_code_average(geometry, mode, scheme):
    """Symmetric (signed, z = 0) codes take both signs: the case where the tie rule matters."""
    k, s, pads, ceil = geometry
    g = pool_graph(k, s, pads, ceil)
    feeds = _feeds((1, 3, 7, 8), 4)
    if scheme == "symmetric":  # a few large values, the rest a few codes wide: many exact ties
        feeds = [{"x": np.where(np.abs(f["x"]) > 2.5, f["x"] * 40, f["x"])} for f in feeds]
    q = _same_encoding(quantize_graph(g, feeds, precision_mode=mode, scheme=scheme))
    sim = assert_bit_exact(q, feeds)
    qx = q.inputs_of(q.op("pool"))[0].quant
    y = q.outputs_of(q.op("pool"))[0]
    for f in feeds:
        codes = np.clip(np.rint(f["x"] / qx.scale[0]) + qx.zero_point[0], qx.qmin, qx.qmax).astype(np.int64)
        expect = _tflite_codes(codes, k, s, pads, y.shape[2:], qx.qmin, qx.qmax)
        assert np.array_equal(sim.run(f)[y.name].astype(np.int64), expect)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 16), mode=st.sampled_from(["a8_w8", "a16_w16"]),
       same=st.booleans(), scheme=st.sampled_from(["asymmetric", "symmetric"]))
def test_simulator_bit_exact_with_reference(data, seed, mode, same, scheme):
    """Any geometry, any encodings (the rescale by s_in/s_out before the division), both bit widths."""
    d = data.draw
    kh, kw = d(st.integers(1, 4)), d(st.integers(1, 4))
    shape = (d(st.integers(1, 2)), d(st.integers(1, 3)), d(st.integers(4, 9)), d(st.integers(4, 9)))
    pads = (d(st.integers(0, kh - 1)), d(st.integers(0, kw - 1)), d(st.integers(0, kh - 1)), d(st.integers(0, kw - 1)))
    g = pool_graph((kh, kw), (d(st.integers(1, 3)), d(st.integers(1, 3))), pads, d(st.booleans()), shape)
    rng = np.random.default_rng(seed)
    feeds = [{"x": (rng.normal(size=shape) * rng.uniform(0.05, 3) + rng.uniform(-1, 1)).astype(np.float32)}
             for _ in range(3)]
    q = quantize_graph(g, feeds, precision_mode=mode, scheme=scheme)
    assert_bit_exact(_same_encoding(q) if same else q, feeds)


def test_half_up_is_still_the_default_and_differs_on_negative_ties():
    feeds = [{"x": np.where(np.abs(f["x"]) > 2.5, f["x"] * 40, f["x"])} for f in _feeds((1, 3, 7, 8), 3)]
    outs = {}
    for rounding in ("half_up", AWAY):
        q = _same_encoding(quantize_graph(pool_graph(rounding=rounding), feeds, scheme="symmetric"))
        assert_bit_exact(q, feeds)
        outs[rounding] = run_quantized(q, feeds[0], dequantize=False)[q.outputs[0].name].astype(np.int64)
        params = decode(binary_of(q)).layer_params(decode(binary_of(q)).layers[-1])
        assert ("rounding" in params) == (rounding == AWAY)  # half up stores no parameter (old binaries)
    diff = outs[AWAY] - outs["half_up"]
    assert np.all(diff <= 0) and np.any(diff == -1)  # only ties, only towards -inf


def _pool_layer(program):
    return next(l for l in program.layers if l.kind == "AveragePool")


def test_binary_round_trip_keeps_rounding_and_divisors():
    g = pool_graph((3, 3), (2, 2), (1, 1, 1, 1))
    q = quantize_graph(g, _feeds((1, 3, 7, 8), 3))
    data = binary_of(q)
    back = decode(data)
    assert emit(back) == data
    layer = _pool_layer(back)
    assert layer.attrs["rounding"] == AWAY
    params = back.layer_params(layer)
    assert params["rounding"].tolist() == [1]
    assert params["divisor"].shape == (4, 4) and sorted(set(params["divisor"].ravel().tolist())) == [4, 6, 9]
    assert params["multiplier"].shape == (1,)
    assert to_graph(back).op(layer.name).attrs["rounding"] == AWAY
    assert to_text(to_graph(back)) == to_text(to_graph(decode(emit(lower(q)))))


def _with_param(data: bytes, name: str, value) -> bytes:
    program = decode(data)
    pid = _pool_layer(program).params[name]
    program.params[pid] = (program.params[pid][0], np.asarray(value, np.int64))
    return emit(program)


@pytest.mark.parametrize("name, value, message", [
    ("rounding", [7], "'rounding' has values in"),
    ("rounding", [2], "'rounding' is 2 but the layer's rounding attribute"),
    ("rounding", [0], "'rounding' is 0 but the layer's rounding attribute"),
    ("divisor", np.zeros((4, 4)), "'divisor' has values in"),
    ("divisor", np.ones(5), "5 divisors for 16 output positions"),
    ("shift", [70], "'shift' has values in"),
])
def test_simulator_validates_rounding_parameters(name, value, message):
    data = binary_of(quantize_graph(pool_graph((3, 3), (2, 2), (1, 1, 1, 1)), _feeds((1, 3, 7, 8), 2)))
    bad = decode(_with_param(data, name, value))  # the file itself is well formed
    with pytest.raises(BinaryFormatError, match=message):
        Simulator(bad)


def test_decode_rejects_an_unknown_rounding_attribute():
    data = binary_of(quantize_graph(pool_graph(), _feeds((1, 3, 7, 8), 2)))
    program = decode(data)
    layer = _pool_layer(program)
    layer.attrs["rounding"] = "half_even"
    with pytest.raises(BinaryFormatError, match="rounding must be one of"):
        decode(emit(program))


# ------------------------------------------------------------------ ReduceMean: TFLite's MEAN kernels
def mean_graph(shape, axes, keep, rounding) -> Graph:
    g = Graph("mean")
    x = g.add_input("x", F32, shape)
    op = g.add_op("ReduceMean", [x], {"axes": axes, "keepdims": keep, "rounding": rounding}, name="mean")
    g.outputs = g.outputs_of(op)
    return g


def test_tflite_multiply_by_hand():
    from npuc.backends.reference.integer_kernels.pooling import tflite_multiply
    # m = 0.5 (M = 2**30, n = 0): srdhm alone, ties towards +inf (gemmlowp's nudge 1 - 2**30 below zero)
    assert tflite_multiply(np.array([3, -3, 5, -5, 4]), 1 << 30, 0).tolist() == [2, -1, 3, -2, 2]
    # m = 0.25 as 2**30 * 2**-32 (n = 1): srdhm (ties up) then a shift by 1 (ties away from zero):
    # 1/4 -> 1/2 -> 1, -1/4 -> 0, -2/4 -> -1/2 -> -1, 6/4 -> 3/2 -> 2
    assert tflite_multiply(np.array([1, -1, 2, -2, 6]), 1 << 30, 1).tolist() == [1, 0, 1, -1, 2]
    # left shift (n = -2); the input and the shifted input saturate to int32
    assert tflite_multiply(np.array([3, 1 << 40]), 1 << 30, -2).tolist() == [6, 1 << 30]


@settings(max_examples=200, deadline=None, database=None)
@given(x=st.integers(-(1 << 33), 1 << 33), M=st.integers(0, (1 << 31) - 1), n=st.integers(-30, 62))
def test_tflite_multiply_simulator_equals_reference(x, M, n):
    from npuc.backends.npu.sim.pooling import tflite_multiply as sim_multiply
    from npuc.backends.reference.integer_kernels.pooling import tflite_multiply
    assert int(sim_multiply(np.int64(x), np.int64(M), np.int64(n))) == int(tflite_multiply(np.array([x]), M, n)[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 16), same=st.booleans(),
       rounding=st.sampled_from(["tflite_mean", "tflite_mean_hw"]))
def test_tflite_mean_simulator_bit_exact_with_reference(data, seed, same, rounding):
    d = data.draw
    shape = (d(st.integers(1, 2)), d(st.integers(1, 5)), d(st.integers(1, 6)), d(st.integers(1, 6)))
    axes = (2, 3) if rounding == "tflite_mean_hw" else d(st.sampled_from([None, (1,), (2, 3), (-1,), (1, 3)]))
    keep = True if rounding == "tflite_mean_hw" else d(st.booleans())
    g = mean_graph(shape, axes, keep, rounding)
    rng = np.random.default_rng(seed)
    feeds = [{"x": (rng.normal(size=shape) * rng.uniform(0.05, 3) + rng.uniform(-1, 1)).astype(np.float32)}
             for _ in range(3)]
    q = quantize_graph(g, feeds, scheme=d(st.sampled_from(["asymmetric", "symmetric"])))
    if same:
        op = q.op("mean")
        q.outputs_of(op)[0].quant = q.inputs_of(op)[0].quant
    assert_bit_exact(q, feeds)
    params = decode(binary_of(q)).layer_params(decode(binary_of(q)).layers[-1])
    assert params["rounding"].tolist() == [2]


def _mean_with_param(data: bytes, name: str, value) -> bytes:
    program = decode(data)
    layer = next(l for l in program.layers if l.kind == "ReduceMean")
    pid = layer.params[name]
    program.params[pid] = (program.params[pid][0], np.asarray(value, np.int64))
    return emit(program)


@pytest.mark.parametrize("name, value, message", [
    ("rounding", [1], "'rounding' is 1 but the layer's rounding attribute is 'tflite_mean'"),
    ("rounding", [3], "'rounding' has values in"),
    ("sum_offset", [1 << 50], "'sum_offset' has values in"),
    ("sum_offset", [1, 2], "'sum_offset' has shape"),
])
def test_simulator_validates_tflite_mean_parameters(name, value, message):
    g = mean_graph((1, 3, 4, 5), (1,), False, "tflite_mean")
    data = binary_of(quantize_graph(g, _feeds((1, 3, 4, 5), 2)))
    with pytest.raises(BinaryFormatError, match=message):
        Simulator(decode(_mean_with_param(data, name, value)))


def test_rounding_parameter_on_another_kind_is_rejected():
    g = Graph("gap")
    x = g.add_input("x", F32, (1, 3, 4, 5))
    g.outputs = g.outputs_of(g.add_op("GlobalAveragePool", [x], name="gap"))
    program = decode(binary_of(quantize_graph(g, _feeds((1, 3, 4, 5), 2))))
    layer = program.layers[-1]
    program.params.append((layer.name + "/rounding", np.array([1], np.int64)))
    layer.params["rounding"] = len(program.params) - 1
    with pytest.raises(BinaryFormatError, match="defined for AveragePool and ReduceMean only"):
        Simulator(decode(emit(program)))
