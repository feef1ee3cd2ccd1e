"""Fuzzing real compiled binaries: truncation, bit flips (checksum re-signed), splices.

Every case must end in a BinaryFormatError (from decode or from the simulator's
checking wrappers) or in a correct run: outputs of the declared shapes and dtypes,
identical to the reference executor run on the same decoded program and its stored
parameters whenever that reference run succeeds. Never a segfault, a hang or
another exception type. Cases are drawn with a fixed seed so failures reproduce.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from npuc.backends.npu.decode import decode
from npuc.backends.npu.isa import CHECKSUM_SIZE, HEADER, SECTION_ENTRY, Section
from npuc.backends.npu.lower import to_graph
from npuc.backends.npu.sim import Simulator
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

sys.path.insert(0, str(Path(__file__).parent / "sim"))
from sim_helpers import binary_of, quantize_graph  # noqa: E402

F32 = DType.FLOAT32


def _model(mode: str) -> bytes:
    """A small model touching most kernel families, compiled for real."""
    rng = np.random.default_rng(0)
    g = Graph(f"fuzz_{mode}")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    w = g.add_const("w", rng.normal(size=(8, 3, 3, 3)).astype(np.float32) * 0.3)
    b = g.add_const("b", rng.normal(size=8).astype(np.float32))
    c = g.outputs_of(g.add_op("Conv", [x, w, b], {"pads": (1, 1, 1, 1), "activation": "relu"}, name="conv"))[0]
    dw = g.add_const("dw", rng.normal(size=(8, 1, 3, 3)).astype(np.float32) * 0.3)
    d = g.outputs_of(g.add_op("Conv", [c, dw], {"pads": (1, 1, 1, 1), "group": 8, "strides": (2, 2)}, name="dw"))[0]
    s = g.outputs_of(g.add_op("Sigmoid", [d], name="sig"))[0]
    m = g.outputs_of(g.add_op("Mul", [d, s], name="mul"))[0]
    p = g.outputs_of(g.add_op("GlobalAveragePool", [m], name="gap"))[0]
    a = g.outputs_of(g.add_op("Add", [m, p], name="add"))[0]
    mp = g.outputs_of(g.add_op("MaxPool", [a], {"kernel": (2, 2), "strides": (2, 2)}, name="pool"))[0]
    cat = g.outputs_of(g.add_op("Concat", [mp, mp], {"axis": 1}, name="cat"))[0]
    r = g.outputs_of(g.add_op("Reshape", [cat], {"shape": (1, 64)}, name="flat"))[0]
    fw = g.add_const("fw", rng.normal(size=(10, 64)).astype(np.float32) * 0.2)
    f = g.outputs_of(g.add_op("Gemm", [r, fw], name="fc"))[0]
    sm = g.outputs_of(g.add_op("Softmax", [f], name="prob"))[0]
    g.outputs = [sm, a]
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    return binary_of(quantize_graph(g, feeds, precision_mode=mode))


@pytest.fixture(scope="module")
def binaries() -> dict[str, bytes]:
    return {mode: _model(mode) for mode in ("a8_w8", "a16_w16")}


def resign(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-CHECKSUM_SIZE])
    return body + hashlib.sha256(body).digest()


def sections(data: bytes) -> dict[Section, tuple[int, int]]:
    count = HEADER.unpack_from(data, 0)[5]
    out = {}
    for i in range(count):
        kind, _, off, size = SECTION_ENTRY.unpack_from(data, HEADER.size + i * SECTION_ENTRY.size)
        out[Section(kind)] = (off, size)
    return out


class _StoredParams(QuantizedExecutor):
    """The reference executor fed with the parameters stored in the binary (not re-derived)."""

    def __init__(self, program) -> None:
        super().__init__(to_graph(program))
        self._stored = {layer.name: program.layer_params(layer) for layer in program.layers}

    def params(self, op):
        return self._stored[op.name]


FEED = {"x": np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)}


def outcome(data: bytes, compare: bool) -> str:
    """'rejected' or 'ran'; raises on anything else."""
    try:
        program = decode(data, "fuzz.npub")
        sim = Simulator(program, "fuzz.npub")
    except BinaryFormatError:
        return "rejected"
    feeds = {program.tensors[i].name: np.resize(FEED["x"], program.tensors[i].shape).astype(np.float32)
             for i in program.inputs}
    try:
        got = sim.run(feeds)
    except BinaryFormatError:
        return "rejected"
    for e in sim.output_entries:
        assert got[e.name].shape == e.shape and got[e.name].dtype == e.dtype.numpy
    if compare:
        try:
            with np.errstate(all="ignore"):
                ref = _StoredParams(program).run(feeds, dequantize=False)
        except Exception:  # noqa: BLE001 - the reference is not hardened against corrupt parameters
            return "ran"
        for name, value in ref.items():
            assert np.array_equal(np.asarray(value), got[name]), name
    return "ran"


def test_unmodified_binaries_run_and_match(binaries):
    for data in binaries.values():
        assert outcome(data, compare=True) == "ran"


def test_truncations(binaries):
    rng = np.random.default_rng(2)
    counts = {"rejected": 0, "ran": 0}
    for data in binaries.values():
        lengths = set(range(0, 200)) | set(rng.integers(0, len(data), 400).tolist())
        for n in sorted(lengths):
            counts[outcome(data[:n], compare=False)] += 1
            counts[outcome(resign(data[:n] + bytes(CHECKSUM_SIZE)), compare=False)] += 1
    assert counts["ran"] == 0 and counts["rejected"] > 1000


def test_bit_flips_resigned(binaries):
    """Flips land everywhere, weighted towards the JSON header, commands and parameters."""
    rng = np.random.default_rng(3)
    counts = {"rejected": 0, "ran": 0}
    for data in binaries.values():
        spans = sections(data)
        targets = [(0, len(data) - CHECKSUM_SIZE)] + [spans[s] for s in (Section.HEADER_JSON, Section.COMMANDS,
                                                                           Section.QUANT_PARAMS, Section.WEIGHTS)]
        for i in range(400):
            off, size = targets[i % len(targets)]
            buf = bytearray(data)
            for _ in range(1 + int(rng.integers(0, 3))):
                pos = off + int(rng.integers(0, max(size, 1)))
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            counts[outcome(resign(buf), compare=i % 10 == 0)] += 1
        for _ in range(100):  # without re-signing the checksum catches every flip
            buf = bytearray(data)
            buf[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
            assert outcome(bytes(buf), compare=False) == "rejected"
    assert counts["rejected"] > 200 and counts["ran"] > 50, counts


def test_splices(binaries):
    """Byte ranges of one model copied into the other (same offset or shifted), and sections swapped."""
    rng = np.random.default_rng(4)
    a, b = binaries["a8_w8"], binaries["a16_w16"]
    counts = {"rejected": 0, "ran": 0}
    for i in range(600):
        dst, src = (a, b) if i % 2 else (b, a)
        n = int(rng.integers(1, 256))
        s0 = int(rng.integers(0, len(src) - n))
        d0 = s0 if i % 3 == 0 else int(rng.integers(0, len(dst) - n))
        buf = bytearray(dst)
        end = min(len(buf) - CHECKSUM_SIZE, d0 + n)
        buf[d0:end] = src[s0:s0 + end - d0]
        counts[outcome(resign(buf), compare=i % 4 == 0)] += 1
    for dst, src in ((a, b), (b, a)):
        ds, ss = sections(dst), sections(src)
        for sec in Section:
            (d0, dn), (s0, sn) = ds[sec], ss[sec]
            buf = bytearray(dst)
            k = min(dn, sn)
            buf[d0:d0 + k] = src[s0:s0 + k]
            counts[outcome(resign(buf), compare=True)] += 1
    assert counts["rejected"] > 100, counts
