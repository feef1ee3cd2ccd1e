"""Program -> bytes of a .npub binary (format in docs/binary-format.md). No pickle; deterministic."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from npuc.backends.npu.isa import (COMMAND, FORMAT_VERSION, HEADER, KIND_TO_OPCODE, MAGIC,
                                   SECTION_ENTRY, Opcode, Section, align)
from npuc.backends.npu.program import Program
from npuc.backends.npu.serialization import attr_to_json, quant_to_json


def _pack_arrays(arrays: list[np.ndarray]) -> tuple[bytes, list[tuple[int, int]]]:
    """Concatenate little-endian arrays, each starting aligned; return bytes and (offset, nbytes)."""
    out = bytearray()
    spans = []
    for arr in arrays:
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        out.extend(b"\0" * (align(len(out)) - len(out)))
        spans.append((len(out), len(raw)))
        out.extend(raw)
    return bytes(out), spans


def compact(values: np.ndarray) -> np.ndarray:
    """Integer parameters are stored in the narrowest signed type holding them (decode widens them to int64)."""
    arr = np.ascontiguousarray(values)
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return arr
    lo, hi = int(arr.min()), int(arr.max())
    for dt in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dt)
    return arr


def _json_bytes(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def emit(program: Program) -> bytes:
    """Serialise a program. The same program always gives the same bytes."""
    const_ids = sorted(program.constants)
    weights, weight_spans = _pack_arrays([program.constants[i] for i in const_ids])
    const_span = dict(zip(const_ids, weight_spans))
    stored = [compact(arr) for _, arr in program.params]
    qparams, param_spans = _pack_arrays(stored)

    tensors = []
    for e in program.tensors:
        offset, nbytes = const_span.get(e.id, (e.offset, e.nbytes))
        tensors.append({
            "id": e.id, "name": e.name, "dtype": e.dtype.value, "shape": list(e.shape), "role": e.role,
            "quant": quant_to_json(e.quant), "layout": e.layout, "offset": offset, "nbytes": nbytes,
        })
    header = {
        "format": "npub", "name": program.name, "arena_bytes": program.arena_bytes,
        "inputs": program.inputs, "outputs": program.outputs, "tensors": tensors,
        "layers": [{"name": l.name, "kind": l.kind, "origin": list(l.origin),
                    "attrs": {k: attr_to_json(v) for k, v in sorted(l.attrs.items())}} for l in program.layers],
        "params": [{"name": name, "dtype": arr.dtype.str.lstrip("<>|="), "shape": list(arr.shape),
                    "offset": off, "nbytes": nb}
                   for (name, _), arr, (off, nb) in zip(program.params, stored, param_spans)],
    }
    commands = bytearray()
    for layer in program.layers:
        opcode = KIND_TO_OPCODE.get(layer.kind, Opcode.EXTENSION)
        pids = [layer.params[k] for k in sorted(layer.params)]
        commands += COMMAND.pack(int(opcode), len(layer.inputs), len(layer.outputs), len(pids))
        commands += np.asarray(list(layer.inputs) + list(layer.outputs) + pids, dtype="<i4").tobytes()
    sections = [
        (Section.HEADER_JSON, _json_bytes(header)),
        (Section.COMMANDS, bytes(commands)),
        (Section.WEIGHTS, weights),
        (Section.QUANT_PARAMS, qparams),
        (Section.METADATA, _json_bytes(program.metadata)),
    ]
    table_end = HEADER.size + SECTION_ENTRY.size * len(sections)
    body = bytearray()
    entries = []
    cursor = align(table_end)
    for kind, data in sections:
        entries.append(SECTION_ENTRY.pack(int(kind), 0, cursor, len(data)))
        body += data + b"\0" * (align(len(data)) - len(data))
        cursor += align(len(data))
    total = align(table_end) + len(body) + 32
    head = HEADER.pack(MAGIC, FORMAT_VERSION[0], FORMAT_VERSION[1], 0, total, len(sections), 0)
    blob = head + b"".join(entries) + b"\0" * (align(table_end) - table_end) + bytes(body)
    return blob + hashlib.sha256(blob).digest()


def write_binary(program: Program, path: str | Path) -> Path:
    """Write atomically: a partial file never replaces a good one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(emit(program))
    tmp.replace(path)
    return path
