"""Text, dot and JSON dumps are readable and deterministic."""
import json

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.printer import to_dot, to_json, to_text
from npuc.ir.quant_params import QuantParams


def build() -> Graph:
    g = Graph("net")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8), layout="NCHW")
    w = g.add_const("w", np.arange(4 * 3 * 9, dtype=np.float32).reshape(4, 3, 3, 3))
    b = g.add_const("b", np.array([1, 2, 3, 4], np.float32))
    conv = g.add_op("Conv", [x, w, b], {"pads": (1, 1, 1, 1), "activation": "relu"}, name="conv",
                    origin=["Conv_0", "Relu_1"])
    out = g.outputs_of(conv)[0]
    out.quant = QuantParams.per_tensor(0.05, -3)
    g.outputs = [out]
    return g


def test_text_dump_content():
    text = to_text(build())
    assert 'graph "net" {' in text
    assert "input %x: f32[1x3x8x8] NCHW" in text
    assert "const %b: f32[4] = [1.0, 2.0, 3.0, 4.0]" in text
    assert "const %w: f32[4x3x3x3] = <108 elements, 432 B, sha256:" in text
    assert "Conv(%x, %w, %b) {activation=\"relu\"" in text
    assert "q(i8 s=0.05 zp=-3)" in text
    assert "# conv <- Conv_0, Relu_1" in text


def test_dumps_are_byte_identical_across_builds():
    assert to_text(build()) == to_text(build())
    assert to_dot(build()) == to_dot(build())
    assert to_json(build()) == to_json(build())


def test_json_and_dot_are_well_formed():
    doc = json.loads(to_json(build()))
    assert doc["ops"][0]["kind"] == "Conv"
    assert doc["outputs"][0]["quant"]["zero_point"] == [-3]
    dot = to_dot(build())
    assert dot.startswith('digraph "net"') and '"in:x" -> "op:conv"' in dot
