"""Binary format: lower -> emit -> decode round trip, determinism, and validation of damaged files."""
import hashlib
import json
import struct

import numpy as np
import pytest

from npuc.backends.npu.decode import decode, read_binary
from npuc.backends.npu.emit import emit, write_binary
from npuc.backends.npu.isa import CHECKSUM_SIZE, HEADER, SECTION_ENTRY, Section
from npuc.backends.npu.lower import lower, to_graph
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.printer import to_text
from npuc.ir.quant_params import QuantParams


def no_params(graph, op):
    return {"scale_demo": np.array([3, 1 << 20], np.int32)} if op.kind == "Conv" else {}


def quantized_net() -> Graph:
    g = Graph("qnet_with_a_long_name_that_leaves_room_for_edits")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 16, 16), layout="NCHW")
    q = g.add_op("Identity", [x], name="copy")
    xq = g.outputs_of(q)[0]
    w = g.add_const("w", (np.arange(8 * 3 * 9) % 11 - 5).astype(np.float32).reshape(8, 3, 3, 3))
    w.quant = QuantParams.per_channel([0.01 * (i + 1) for i in range(8)], [0] * 8, axis=0)
    conv = g.add_op("Conv", [xq, w], {"pads": (1, 1, 1, 1), "activation": "relu"}, name="conv", origin=["Conv_0"])
    c = g.outputs_of(conv)[0]
    c.quant = QuantParams.per_tensor(0.05, -128)
    r = g.add_op("Reshape", [c], {"shape": (1, 8 * 256)}, name="flat")
    s = g.add_op("Sigmoid", g.outputs_of(r), name="sig")
    g.outputs = g.outputs_of(s)
    g.meta["source"] = "test"
    return g


def test_round_trip_rebuilds_the_same_graph():
    g = quantized_net()
    program = lower(g, no_params)
    data = emit(program)
    back = decode(data)
    assert to_text(to_graph(back)) == to_text(g)
    assert back.layers[1].params.keys() == {"scale_demo"}
    np.testing.assert_array_equal(back.layer_params(back.layers[1])["scale_demo"], [3, 1 << 20])
    assert emit(back) == data  # decode -> emit is the identity
    assert emit(lower(quantized_net(), no_params)) == data  # deterministic


def test_buffer_reuse_keeps_live_buffers_apart():
    g = Graph("chain")
    t = g.add_input("x", DType.FLOAT32, (1, 1024))
    for i in range(6):
        t = g.outputs_of(g.add_op("Relu", [t], name=f"r{i}"))[0]
    g.outputs = [t]
    program = lower(g, lambda *_: {})
    acts = [e for e in program.tensors if e.role == "activation"]
    assert len(acts) == 5
    assert program.arena_bytes == 2 * 4096  # ping-pong between two buffers
    for a, b in zip(acts, acts[1:]):
        assert a.offset != b.offset  # producer and consumer never share


def test_write_binary_is_atomic(tmp_path):
    path = write_binary(lower(quantized_net(), no_params), tmp_path / "m.npub")
    assert read_binary(path).name.startswith("qnet")
    assert not (tmp_path / "m.npub.tmp").exists()


def resign(data: bytearray) -> bytes:
    body = bytes(data[:-CHECKSUM_SIZE])
    return body + hashlib.sha256(body).digest()


def header_span(data: bytes) -> tuple[int, int]:
    count = HEADER.unpack_from(data, 0)[5]
    for i in range(count):
        kind, _, off, size = SECTION_ENTRY.unpack_from(data, HEADER.size + i * SECTION_ENTRY.size)
        if kind == Section.HEADER_JSON:
            return off, size
    raise AssertionError


def with_header(data: bytes, edit) -> bytes:
    """Re-encode the JSON header after `edit`, padded to its old size so offsets stay valid."""
    off, size = header_span(data)
    doc = json.loads(data[off:off + size])
    edit(doc)
    doc["name"] = "q"  # frees room so small edits fit in place
    raw = json.dumps(doc, separators=(",", ":")).encode()
    assert len(raw) <= size, "edit made the header longer"
    out = bytearray(data)
    out[off:off + size] = raw + b" " * (size - len(raw))
    return resign(out)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["tensors"][0].update(dtype="q7"), "unknown dtype 'q7'"),
    (lambda d: d["tensors"][2].update(offset=4096), "runs past its section"),
    (lambda d: d["tensors"][2].update(shape=[8, 3, 3, 4]), "size"),
    (lambda d: d["layers"][1].update(kind="Relu"), "does not match kind Relu"),
    (lambda d: d["layers"][1]["attrs"].update(strides=[0, 1]), "bad conv geometry"),
    (lambda d: d["tensors"][3].update(shape=[1, 8, 16, 15], nbytes=1 * 8 * 16 * 15 * 4), "declared"),
    (lambda d: d.update(arena_bytes=3), "outside arena"),
    (lambda d: d["tensors"][2]["quant"].update(axis=3), "per-channel axis"),
])
def test_structured_corruption_is_named(edit, message):
    data = emit(lower(quantized_net(), no_params))
    with pytest.raises(BinaryFormatError, match=message):
        decode(with_header(data, edit))


def test_truncation_bitflips_and_bad_magic():
    data = emit(lower(quantized_net(), no_params))
    with pytest.raises(BinaryFormatError, match="truncated"):
        decode(data[:-100])
    with pytest.raises(BinaryFormatError, match="too short"):
        decode(data[:10])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(BinaryFormatError, match="checksum"):
        decode(bytes(flipped))
    with pytest.raises(BinaryFormatError, match="bad magic"):
        decode(b"PK\x03\x04" + data[4:])
    future = bytearray(data)
    struct.pack_into("<H", future, 8, 9)
    with pytest.raises(BinaryFormatError, match="version 9.0"):
        decode(resign(future))


def test_random_resigned_damage_never_escapes_as_another_exception():
    data = emit(lower(quantized_net(), no_params))
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(data) - CHECKSUM_SIZE))
            damaged[pos] = int(rng.integers(0, 256))
        try:
            decode(resign(damaged))
            outcomes["ok"] += 1
        except BinaryFormatError:
            outcomes["error"] += 1
    assert outcomes["error"] > 100
