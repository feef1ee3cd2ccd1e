"""Binary storage of the integer PRelu and bilinear Resize parameters: round trip, and the simulator rejects
parameters its numba kernels would misuse (docs/binary-format.md)."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.sim import Simulator
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from sim_helpers import assert_bit_exact, binary_of, quantize_graph


def _graph(kind: str) -> Graph:
    g = Graph(kind)
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 5))
    if kind == "PRelu":
        slope = g.add_const("slope", np.array([0.2, -0.7, 0.0], np.float32).reshape(3, 1, 1))
        op = g.add_op("PRelu", [x, slope], name="layer")
    else:
        op = g.add_op("Resize", [x], {"size": (1, 3, 7, 9), "mode": "linear"}, name="layer")
    g.outputs = g.outputs_of(op)
    return g


def _binary(kind: str, mode: str = "a8_w8") -> bytes:
    g = _graph(kind)
    feeds = [{"x": np.random.default_rng(i).normal(size=(1, 3, 4, 5)).astype(np.float32)} for i in range(3)]
    q = quantize_graph(g, feeds, precision_mode=mode)
    assert_bit_exact(q, feeds)
    return binary_of(q)


def _with_param(data: bytes, name: str, value) -> bytes:
    program = decode(data)
    layer = next(lay for lay in program.layers if lay.name == "layer")
    pid = layer.params[name]
    program.params[pid] = (program.params[pid][0], np.asarray(value, np.int64))
    return emit(program)


@pytest.mark.parametrize("kind", ["PRelu", "Resize"])
def test_round_trip_keeps_the_parameters(kind):
    program = decode(_binary(kind))
    layer = next(lay for lay in program.layers if lay.name == "layer")
    params = program.layer_params(layer)
    if kind == "PRelu":
        assert params["negative_multiplier"].shape == (1, 3, 1, 1)
        assert params["negative_sign"].reshape(-1).tolist() == [1, -1, 1]
    else:
        assert int(params["frac_bits"][0]) == 22
        assert params["row_index"].shape == (2, 7) and params["col_weight"].shape == (9,)


@pytest.mark.parametrize("name, value, message", [
    ("negative_sign", [[[[1]], [[0]], [[1]]]], "other than -1 and 1"),
    ("negative_multiplier", [1 << 30, 1 << 30], "do not broadcast"),
    ("negative_shift", [[[[70]], [[0]], [[0]]]], "allowed"),
])
def test_simulator_validates_prelu_parameters(name, value, message):
    with pytest.raises(BinaryFormatError, match=message):
        Simulator(decode(_with_param(_binary("PRelu"), name, value)))


@pytest.mark.parametrize("name, value, message", [
    ("row_index", [[0] * 7, [0, 1, 2, 3, 4, 5, 4]], r"row_index' has values in \[0, 5\]"),
    ("col_index", [[0] * 8, [0] * 8], r"expected \(2, 9\)"),
    ("row_weight", [0, (1 << 22) + 1, 0, 0, 0, 0, 0], "allowed"),
    ("frac_bits", [23], "allowed"),
])
def test_simulator_validates_resize_parameters(name, value, message):
    with pytest.raises(BinaryFormatError, match=message):
        Simulator(decode(_with_param(_binary("Resize"), name, value)))


def test_sixteen_bit_resize_uses_22_fractional_bits():
    program = decode(_binary("Resize", "a16_w16"))
    layer = next(lay for lay in program.layers if lay.name == "layer")
    assert int(program.layer_params(layer)["frac_bits"][0]) == 22


@pytest.mark.parametrize("scheme", ["asymmetric", "symmetric"])
@pytest.mark.parametrize("coords", ["half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("size", [(8, 10), (9, 13), (2, 3), (1, 1)])
def test_tflite_bilinear_rounding_is_bit_exact(scheme, coords, size):
    """rounding="tflite_bilinear" (TFLite's taps, raw-code sum rounded half away from zero): simulator ==
    reference, on uint8 and int8 codes (negative raw sums round away from zero)."""
    g = Graph("tfl")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 5))
    op = g.add_op("Resize", [x], {"size": (1, 3, *size), "mode": "linear", "coordinate_transformation_mode": coords,
                                  "rounding": "tflite_bilinear"}, name="layer")
    g.outputs = g.outputs_of(op)
    rng = np.random.default_rng(7)
    feeds = [{"x": (rng.normal(size=(1, 3, 4, 5)) * 3 - 1).astype(np.float32)} for _ in range(4)]
    q = quantize_graph(g, feeds, scheme=scheme)
    program = assert_bit_exact(q, feeds).program
    layer = next(lay for lay in program.layers if lay.name == "layer")
    params = program.layer_params(layer)
    assert int(params["rounding"][0]) == 1 and int(params["frac_bits"][0]) == 10


def test_tflite_bilinear_rounding_must_agree_with_the_attribute():
    g = Graph("tfl")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 5))
    op = g.add_op("Resize", [x], {"size": (1, 3, 7, 9), "mode": "linear", "rounding": "tflite_bilinear"},
                  name="layer")
    g.outputs = g.outputs_of(op)
    feeds = [{"x": np.random.default_rng(0).normal(size=(1, 3, 4, 5)).astype(np.float32)}]
    data = binary_of(quantize_graph(g, feeds))
    with pytest.raises(BinaryFormatError, match="disagrees"):
        Simulator(decode(_with_param(data, "rounding", [0])))
    with pytest.raises(BinaryFormatError, match="allowed"):
        Simulator(decode(_with_param(data, "rounding", [2])))
