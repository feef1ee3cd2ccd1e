"""Float32 requantization of MAC layers (docs/numerics.md section 6a): the numpy definition, the numba
kernels bit for bit against it (ties included), every requantization loop of the simulator against the
reference executor, the binary's parameter and its validation."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.sim import Simulator
from npuc.backends.npu.sim.mac import _requant_channels
from npuc.errors import BinaryFormatError, QuantizationError
from npuc.ir.verify import find_problems
from npuc.quantization.fixed_point import requantize
from npuc.quantization.float32_requantization import (encode_float32_multiplier, float32_multiplier,
                                                      float32_scale_below, multiplier_float32, requantize_float32)
from sim_helpers import assert_bit_exact, binary_of, quantize_graph
from test_per_channel_clamp import GEOMETRIES, _feeds, _layer, channel_clip_graph


def _m(value: float):
    return encode_float32_multiplier(np.float32(value))


@pytest.mark.parametrize("acc, m, expected", [
    (3, 0.5, 2), (5, 0.5, 2), (7, 0.5, 4), (-3, 0.5, -2), (-5, 0.5, -2),  # ties to even
    (24, 2.0 ** -4, 2), (-24, 2.0 ** -4, -2), (-1000, 2.0 ** -4, -62),    # -62.5 -> -62 (even)
    (2 ** 24 + 1, 1.0, 2 ** 24),   # float32(acc) rounds first (2**24 + 1 is not a float32)
    (2 ** 24 + 3, 1.0, 2 ** 24 + 4),
])
def test_hand_examples(acc, m, expected):
    M, n = _m(m)
    assert int(requantize_float32(np.int64(acc), M, n, 0, -2 ** 31, 2 ** 31 - 1)) == expected


def test_differs_from_the_integer_rule_exactly_on_ties_and_float32_rounding():
    """Half up (integer) vs half even (float32) on a grid of ties; equal elsewhere."""
    M, n = _m(0.5)
    acc = np.arange(-9, 10, dtype=np.int64)
    f32 = requantize_float32(acc, M, n, 0, -128, 127)
    q31 = requantize(acc, M, n, 0, -128, 127)
    odd = acc % 2 == 1
    assert np.array_equal(f32[~odd], q31[~odd])
    assert np.array_equal(f32[odd] % 2, np.zeros(odd.sum()))  # ties land on even codes
    assert not np.array_equal(f32, q31)


def test_multiplier_is_onnxruntime_formula_and_stored_exactly():
    rng = np.random.default_rng(0)
    sx, sy = 0.0173, 0.731
    sw = rng.uniform(1e-4, 1e-2, 64)
    m32 = float32_multiplier(sx, sw, sy)
    # the scales a QDQ file holds, multiplied and divided in float32 as onnxruntime does
    sx32, sw32, sy32 = (float32_scale_below(np.atleast_1d(v)) for v in (sx, sw, sy))
    assert np.array_equal(m32, ((sx32 * sw32) / sy32).astype(np.float32))
    M, n = encode_float32_multiplier(m32)
    assert np.all((M >= 2 ** 30) & (M < 2 ** 31))
    assert np.array_equal(multiplier_float32(M, n), m32)


def test_a_multiplier_that_is_not_a_float32_is_refused():
    with pytest.raises(QuantizationError, match="not exactly a float32"):
        multiplier_float32(np.int64(2 ** 30 + 1), np.int64(0))


@pytest.mark.parametrize("m", [0.5, 0.25, 2.0 ** -7, 0.3, 1.7, 3e-5])
def test_numba_kernel_equals_the_numpy_definition(m):
    """The simulator's requantization loop (float32 branch) == requantize_float32, on ties and on random
    accumulators up to 2**40 (float32(acc) rounds), with a zero point and a clamp."""
    rng = np.random.default_rng(1)
    M, n = _m(m)
    ties = np.arange(-4000, 4000, dtype=np.int64)
    wide = rng.integers(-2 ** 40, 2 ** 40, 4000, dtype=np.int64)
    acc = np.concatenate([ties, wide, rng.integers(-2 ** 20, 2 ** 20, 4000)]).reshape(1, 1, -1)
    out = np.empty(acc.shape, np.int64)
    one = np.ones(1, np.int64)
    _requant_channels(acc, np.zeros(1, np.int64), one * M, one * n, multiplier_float32(one * M, one * n), True,
                      np.int64(-7), one * -128, one * 127, out)
    expected = requantize_float32(acc, M, n, -7, -128, 127)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("mode", ["a8_w8", "a16_w16"])
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_simulator_equals_reference(geometry, mode):
    g = channel_clip_graph(geometry, lower_bounds=mode == "a16_w16")
    feeds = _feeds(g, 4)
    q = quantize_graph(g, feeds, precision_mode=mode, requantization="float32")
    assert q.op("layer").attrs["requantization"] == "float32"
    assert_bit_exact(q, feeds + _feeds(g, 2, seed=9))
    program = decode(binary_of(q))
    params = program.layer_params(_layer(program))
    assert params["requantization"].tolist() == [1]
    # the stored multipliers are float32 values (24 significant bits), not 31-bit ones
    assert np.array_equal(multiplier_float32(params["multiplier"], params["shift"]).astype(np.float64),
                          params["multiplier"] * 2.0 ** -(31 + params["shift"]))


def test_default_layers_store_no_parameter():
    g = channel_clip_graph("pointwise")
    q = quantize_graph(g, _feeds(g, 2))
    assert q.op("layer").attrs["requantization"] == "integer"
    program = decode(binary_of(q))
    assert "requantization" not in program.layer_params(_layer(program))


def test_float16_layers_keep_the_default():
    from npuc.quantization.config import QuantConfig

    g = channel_clip_graph("gemm")
    cfg = QuantConfig()
    cfg.set_precision_mode(["layer"], "float16")
    q = quantize_graph(g, _feeds(g, 2), cfg, requantization="float32")
    assert q.op("layer").attrs["requantization"] == "integer"


def _float32_binary() -> bytes:
    g = channel_clip_graph("taps")
    return binary_of(quantize_graph(g, _feeds(g, 2), requantization="float32"))


def _with_param(data: bytes, name: str, value) -> bytes:
    program = decode(data)
    layer = _layer(program)
    pid = layer.params[name]
    program.params[pid] = (program.params[pid][0], np.asarray(value, np.int64))
    return emit(program)


def test_simulator_refuses_a_parameter_that_disagrees_with_the_attribute():
    bad = decode(_with_param(_float32_binary(), "requantization", [0]))
    with pytest.raises(BinaryFormatError, match="'requantization' is 0 but the layer's requantization attribute "
                                                "is 'float32'"):
        Simulator(bad)


def test_simulator_refuses_a_multiplier_that_is_not_a_float32():
    data = _float32_binary()
    params = decode(data).layer_params(_layer(decode(data)))
    M = params["multiplier"].copy()
    M[0] += 1  # 25 significant bits
    with pytest.raises(BinaryFormatError, match=r"layer 'layer' \(Conv\).*not exactly a float32"):
        Simulator(decode(_with_param(data, "multiplier", M)))


def test_unknown_requantization_attribute_is_a_graph_problem():
    g = channel_clip_graph("pointwise")
    g.op("layer").attrs["requantization"] = "float16"
    assert any("requantization must be one of" in p for p in find_problems(g))


def test_unknown_requantization_setting_is_refused():
    g = channel_clip_graph("pointwise")
    with pytest.raises(QuantizationError, match="requantization='fp32' is not one of integer, float32"):
        quantize_graph(g, _feeds(g, 2), requantization="fp32")
