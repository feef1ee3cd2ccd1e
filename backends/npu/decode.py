"""bytes -> Program, validating every offset, size, shape, dtype and opcode before anything runs.

Numba kernels do no bounds checks, so nothing in a binary is trusted: a
truncated, bit-flipped or spliced file ends in a BinaryFormatError naming what
is wrong, never in a crash.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from npuc.backends.npu.isa import (ALIGNMENT, CHECKSUM_SIZE, COMMAND, FORMAT_VERSION, HEADER, KIND_TO_OPCODE,
                                   MAGIC, MAX_IO_PER_LAYER, MAX_LAYERS, MAX_RANK, MAX_TENSOR_ELEMENTS,
                                   MAX_TENSORS, OPCODE_TO_KIND, SECTION_ENTRY, Opcode, Section)
from npuc.backends.npu.program import ROLES, LayerEntry, Program, TensorEntry
from npuc.backends.npu.serialization import attr_from_json, quant_from_json
from npuc.errors import BinaryFormatError
from npuc.ir.dtypes import DType
import npuc.ir.ops  # noqa: F401  (registers the built-in op kinds)
from npuc.ir.op_spec import OPS


#: element types layer parameters may have (numpy names, as emit writes them)
PARAM_DTYPES = frozenset({"i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"})


class _Bad(Exception):
    """Internal: one validation failure (turned into BinaryFormatError with the file name)."""


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise _Bad(message)


def _int(value: Any, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    _need(isinstance(value, int) and not isinstance(value, bool), f"{what} is not an integer ({value!r})")
    _need(lo <= value <= hi, f"{what} = {value} outside [{lo}, {hi}]")
    return value


def _sections(data: bytes) -> dict[Section, bytes]:
    _need(len(data) >= HEADER.size + CHECKSUM_SIZE, f"file is {len(data)} bytes, too short for an npub header")
    magic, major, minor, _flags, size, count, _ = HEADER.unpack_from(data, 0)
    _need(magic == MAGIC, "not an npuc binary (bad magic bytes)")
    _need(major == FORMAT_VERSION[0],
          f"format version {major}.{minor} is not supported by this npuc (reads {FORMAT_VERSION[0]}.x)")
    _need(size == len(data), f"file is {len(data)} bytes but its header says {size}: truncated or padded")
    digest = hashlib.sha256(data[:-CHECKSUM_SIZE]).digest()
    _need(digest == data[-CHECKSUM_SIZE:], "checksum mismatch: the file is corrupted")
    _need(1 <= count <= 64, f"implausible section count {count}")
    table_end = HEADER.size + count * SECTION_ENTRY.size
    _need(table_end <= len(data) - CHECKSUM_SIZE, "section table runs past the end of the file")
    found: dict[Section, bytes] = {}
    spans = []
    for i in range(count):
        kind, _, offset, length = SECTION_ENTRY.unpack_from(data, HEADER.size + i * SECTION_ENTRY.size)
        try:
            section = Section(kind)
        except ValueError:
            raise _Bad(f"unknown section kind {kind}") from None
        _need(section not in found, f"section {section.name} appears twice")
        _need(offset % ALIGNMENT == 0, f"section {section.name} is not aligned")
        _need(table_end <= offset and offset + length <= len(data) - CHECKSUM_SIZE,
              f"section {section.name} [{offset}, {offset + length}) lies outside the file body")
        spans.append((offset, offset + length, section.name))
        found[section] = data[offset:offset + length]
    spans.sort()
    for (a0, a1, an), (b0, _, bn) in zip(spans, spans[1:]):
        _need(a1 <= b0, f"sections {an} and {bn} overlap")
    for section in Section:
        _need(section in found, f"section {section.name} is missing")
    return found


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Bad(f"{what} is not valid JSON: {exc}") from None


def _dtype(name: Any, what: str) -> DType:
    _need(isinstance(name, str), f"{what}: dtype is not a string")
    try:
        return DType(name)
    except ValueError:
        raise _Bad(f"{what}: unknown dtype '{name}'") from None


def _shape(value: Any, what: str) -> tuple[int, ...]:
    _need(isinstance(value, list) and len(value) <= MAX_RANK, f"{what}: bad shape {value!r}")
    shape = tuple(_int(d, f"{what}: dimension", 0, MAX_TENSOR_ELEMENTS) for d in value)
    _need(int(np.prod(shape, dtype=np.float64)) <= MAX_TENSOR_ELEMENTS, f"{what}: shape {shape} is too large")
    return shape


def _array(section: bytes, offset: Any, nbytes: Any, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    offset = _int(offset, f"{what}: offset")
    nbytes = _int(nbytes, f"{what}: size")
    _need(offset % ALIGNMENT == 0, f"{what}: data offset {offset} is not aligned")
    _need(offset + nbytes <= len(section), f"{what}: data [{offset}, {offset + nbytes}) runs past its section")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    _need(nbytes == expected, f"{what}: holds {nbytes} bytes, shape {shape} of {dtype} needs {expected}")
    arr = np.frombuffer(section, dtype=dtype.newbyteorder("<"), count=expected // max(dtype.itemsize, 1),
                        offset=offset).reshape(shape)
    return arr.astype(dtype, copy=True)


def _tensors(header: dict, weights: bytes) -> tuple[list[TensorEntry], dict[int, np.ndarray]]:
    raw = header.get("tensors")
    _need(isinstance(raw, list) and len(raw) <= MAX_TENSORS, "tensor table missing or too large")
    arena = _int(header.get("arena_bytes"), "arena size")
    entries, constants = [], {}
    for i, t in enumerate(raw):
        _need(isinstance(t, dict), f"tensor #{i} is not an object")
        what = f"tensor #{i} ({t.get('name')!r})"
        _need(t.get("id") == i, f"{what}: id {t.get('id')!r} out of order")
        _need(isinstance(t.get("name"), str) and t["name"], f"{what}: bad name")
        dtype = _dtype(t.get("dtype"), what)
        shape = _shape(t.get("shape"), what)
        role = t.get("role")
        _need(role in ROLES, f"{what}: unknown role {role!r}")
        try:
            quant = quant_from_json(t.get("quant"))
        except (ValueError, TypeError) as exc:
            raise _Bad(f"{what}: {exc}") from None
        if quant is not None and quant.axis is not None:
            _need(-len(shape) <= quant.axis < len(shape) and shape[quant.axis] == len(quant.scale),
                  f"{what}: per-channel axis {quant.axis} does not match shape {shape}")
        layout = t.get("layout")
        _need(layout is None or isinstance(layout, str), f"{what}: bad layout")
        elements = int(np.prod(shape, dtype=np.int64))
        nbytes = elements * dtype.numpy.itemsize
        offset = _int(t.get("offset"), f"{what}: offset")
        _need(t.get("nbytes") == nbytes, f"{what}: size {t.get('nbytes')!r} != {nbytes} for {dtype}{list(shape)}")
        if role == "constant":
            constants[i] = _array(weights, offset, nbytes, dtype.numpy, shape, what)
        elif role == "activation":
            _need(offset + nbytes <= arena, f"{what}: buffer [{offset}, {offset + nbytes}) outside arena of {arena}")
        entries.append(TensorEntry(i, t["name"], dtype, shape, role, quant, layout, offset, nbytes))
    return entries, constants


def _params(header: dict, section: bytes) -> list[tuple[str, np.ndarray]]:
    raw = header.get("params")
    _need(isinstance(raw, list), "parameter table missing")
    out = []
    for i, p in enumerate(raw):
        _need(isinstance(p, dict) and isinstance(p.get("name"), str), f"parameter #{i} is malformed")
        what = f"parameter #{i} ({p['name']})"
        _need(p.get("dtype") in PARAM_DTYPES, f"{what}: unsupported dtype {p.get('dtype')!r}")
        dtype = np.dtype(p["dtype"])
        arr = _array(section, p.get("offset"), p.get("nbytes"), dtype, _shape(p.get("shape"), what), what)
        _need(dtype != np.uint64 or not arr.size or int(arr.max()) < (1 << 63), f"{what}: values do not fit int64")
        out.append((p["name"], arr.astype(np.int64) if dtype.kind in "iu" else arr))  # stored narrow, used wide
    return out


def _layers(header: dict, commands: bytes, n_tensors: int, n_params: int) -> list[LayerEntry]:
    raw = header.get("layers")
    _need(isinstance(raw, list) and len(raw) <= MAX_LAYERS, "layer table missing or too large")
    layers, pos = [], 0
    for i, meta in enumerate(raw):
        _need(isinstance(meta, dict), f"layer #{i} is not an object")
        kind, name = meta.get("kind"), meta.get("name")
        what = f"layer #{i} ({name!r})"
        _need(isinstance(kind, str) and isinstance(name, str), f"{what}: bad name or kind")
        _need(pos + COMMAND.size <= len(commands), f"{what}: command table is truncated")
        opcode, n_in, n_out, n_par = COMMAND.unpack_from(commands, pos)
        pos += COMMAND.size
        expected = KIND_TO_OPCODE.get(kind, Opcode.EXTENSION)
        _need(opcode == int(expected),
              f"{what}: opcode {opcode} ({OPCODE_TO_KIND.get(opcode, 'unknown')}) does not match kind {kind}")
        _need(kind in OPS, f"{what}: op kind '{kind}' is not known to this npuc (missing plugin?)")
        _need(n_in <= MAX_IO_PER_LAYER and 1 <= n_out <= MAX_IO_PER_LAYER, f"{what}: bad operand counts")
        count = n_in + n_out + n_par
        _need(pos + 4 * count <= len(commands), f"{what}: command table is truncated")
        ids = np.frombuffer(commands, dtype="<i4", count=count, offset=pos).astype(np.int64)
        pos += 4 * count
        ins, outs, pids = ids[:n_in], ids[n_in:n_in + n_out], ids[n_in + n_out:]
        _need(all(-1 <= t < n_tensors for t in ins), f"{what}: input tensor id out of range")
        _need(all(0 <= t < n_tensors for t in outs), f"{what}: output tensor id out of range")
        _need(all(0 <= p < n_params for p in pids), f"{what}: parameter id out of range")
        attrs_raw = meta.get("attrs")
        _need(isinstance(attrs_raw, dict), f"{what}: attributes missing")
        try:
            attrs = {k: attr_from_json(v) for k, v in attrs_raw.items()}
            attrs = OPS.get(kind).with_defaults(attrs)
        except (ValueError, TypeError) as exc:
            raise _Bad(f"{what}: {exc}") from None
        origin = meta.get("origin", [])
        _need(isinstance(origin, list) and all(isinstance(o, str) for o in origin), f"{what}: bad origin")
        layers.append(LayerEntry(i, name, kind, tuple(origin), attrs, tuple(int(t) for t in ins),
                                 tuple(int(t) for t in outs), {}))
        layers[-1] = LayerEntry(i, name, kind, tuple(origin), attrs, layers[-1].inputs, layers[-1].outputs,
                                {"#" + str(j): int(p) for j, p in enumerate(pids)})
    _need(pos == len(commands), f"command table has {len(commands) - pos} trailing bytes")
    return layers


def _name_params(layers: list[LayerEntry], params: list[tuple[str, np.ndarray]]) -> list[LayerEntry]:
    """Parameter ids in commands are positional; names come from the parameter table ('layer/name')."""
    named = []
    for layer in layers:
        mapping = {}
        for pid in layer.params.values():
            full = params[pid][0]
            prefix = layer.name + "/"
            _need(full.startswith(prefix), f"layer '{layer.name}' points at parameter '{full}' of another layer")
            mapping[full[len(prefix):]] = pid
        named.append(LayerEntry(layer.index, layer.name, layer.kind, layer.origin, layer.attrs,
                                layer.inputs, layer.outputs, mapping))
    return named


def decode(data: bytes, source: str = "<bytes>") -> Program:
    """Parse and fully validate a binary. Every problem is a BinaryFormatError naming `source`."""
    try:
        sections = _sections(data)
        header = _json(sections[Section.HEADER_JSON], "header")
        metadata = _json(sections[Section.METADATA], "metadata")
        _need(isinstance(header, dict) and header.get("format") == "npub", "header is not an npub header")
        _need(isinstance(metadata, dict), "metadata is not an object")
        tensors, constants = _tensors(header, sections[Section.WEIGHTS])
        params = _params(header, sections[Section.QUANT_PARAMS])
        layers = _name_params(_layers(header, sections[Section.COMMANDS], len(tensors), len(params)), params)
        ins, outs = header.get("inputs"), header.get("outputs")
        _need(isinstance(ins, list) and isinstance(outs, list) and outs, "inputs/outputs missing")
        for tid in ins + outs:
            _int(tid, "input/output tensor id", 0, len(tensors) - 1)
        name = header.get("name")
        _need(isinstance(name, str), "model name missing")
        program = Program(name, tensors, layers, constants, params, list(ins), list(outs),
                          header["arena_bytes"], metadata)
        _check_against_ir(program)
        return program
    except _Bad as exc:
        raise BinaryFormatError(f"{source}: {exc}") from None


def _check_against_ir(program: Program) -> None:
    """Rebuild the IR graph and run the verifier: shapes, arities and producers must all agree."""
    from npuc.backends.npu.lower import to_graph
    from npuc.ir.verify import find_problems

    declared = {e.name: (e.shape, e.dtype) for e in program.tensors}
    try:
        graph = to_graph(program)
    except Exception as exc:  # shape inference on untrusted attributes may fail in any way
        raise _Bad(f"layers are inconsistent: {type(exc).__name__}: {exc}") from None
    try:
        problems = find_problems(graph)
    except Exception as exc:  # the verifier itself must not turn a corrupt file into a traceback
        raise _Bad(f"layers are inconsistent: {type(exc).__name__}: {exc}") from None
    for t in graph.tensors():
        if declared.get(t.name) != (t.shape, t.dtype):
            problems.append(f"tensor '{t.name}' declared {declared.get(t.name)} but layers give {(t.shape, t.dtype)}")
    _need(not problems, "layers are inconsistent: " + "; ".join(problems[:5]))


def read_binary(path: str | Path) -> Program:
    """Read and validate a binary file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BinaryFormatError(f"cannot read '{path}': {exc.strerror}") from None
    return decode(data, str(path))
