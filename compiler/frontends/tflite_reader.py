"""Read a .tflite flatbuffer into plain Python records (no lowering here).

Everything is read eagerly, inside one guard, with the `tflite` package's
generated flatbuffer accessors: a truncated or corrupt file fails here with a
ModelImportError instead of somewhere deep in the lowering. Sparse constant
tensors (the DENSIFY input format) are expanded to dense arrays.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from npuc.errors import ModelImportError

log = logging.getLogger(__name__)

#: TFLite TensorType code -> (name, numpy storage type or None when npuc cannot hold it)
TENSOR_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("FLOAT32", "<f4"), 1: ("FLOAT16", "<f2"), 2: ("INT32", "<i4"), 3: ("UINT8", "u1"),
    4: ("INT64", "<i8"), 5: ("STRING", None), 6: ("BOOL", "?"), 7: ("INT16", "<i2"),
    8: ("COMPLEX64", None), 9: ("INT8", "i1"), 10: ("FLOAT64", "<f8"), 11: ("COMPLEX128", None),
    12: ("UINT64", "<u8"), 13: ("RESOURCE", None), 14: ("VARIANT", None), 15: ("UINT32", "<u4"),
    16: ("UINT16", "<u2"), 17: ("INT4", None), 18: ("BFLOAT16", None),
}


@dataclass
class TflQuant:
    """A tensor's quantization: real = scale * (q - zero_point), per tensor or along `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass
class TflTensor:
    """One tensor of the main subgraph. `data` is set for constants (dense, typed, shaped)."""

    index: int
    name: str
    type_name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    data: np.ndarray | None = None
    quant: TflQuant | None = None
    is_variable: bool = False

    @property
    def is_const(self) -> bool:
        return self.data is not None


@dataclass
class TflOperator:
    """One operator: its builtin name (or CUSTOM), inputs/outputs (-1 = absent), options as a dict."""

    index: int
    opcode: str
    custom_code: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return f"CUSTOM({self.custom_code})" if self.opcode == "CUSTOM" else self.opcode


@dataclass
class TflModel:
    """The main subgraph of a TFLite model, read into plain records."""

    tensors: list[TflTensor]
    operators: list[TflOperator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""
    num_subgraphs: int = 1
    schema_version: int = 3


def _tflite():
    try:
        import tflite  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise ModelImportError(
            "reading .tflite files needs the 'tflite' package: pip install tflite"
        ) from None
    return tflite


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _str(b: bytes | None) -> str:
    return b.decode("utf-8", errors="replace") if b else ""


def _vec(obj: Any, name: str) -> np.ndarray:
    """A flatbuffer vector as a numpy array (empty when absent; the accessors return 0 then)."""
    if getattr(obj, f"{name}IsNone")():
        return np.zeros(0, dtype=np.int64)
    return np.asarray(getattr(obj, f"{name}AsNumpy")())


_OPTION_SKIP = ("Init", "GetRootAs")


def _options_dict(table: Any, type_code: int, union_names: dict[int, str]) -> dict[str, Any]:
    """Read every scalar (and numeric vector) field of a builtin-options table into a dict."""
    if table is None or type_code == 0:
        return {}
    name = union_names.get(type_code)
    if name is None:
        return {}
    module = importlib.import_module(f"tflite.{name}")
    cls = getattr(module, name)
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {"_type": name}
    for attr, fn in vars(cls).items():
        if attr.startswith("_") or attr.startswith(_OPTION_SKIP) or not callable(fn):
            continue
        if attr.endswith(("Length", "IsNone", "AsNumpy")) or "BufferHasIdentifier" in attr:
            continue
        params = list(inspect.signature(fn).parameters)
        if params == ["self"]:
            out[attr] = getattr(opts, attr)()
        elif params == ["self", "j"] and hasattr(opts, f"{attr}AsNumpy"):
            out[attr] = _vec(opts, attr).tolist()
    return out


def _index_vector(table: Any, type_code: int) -> np.ndarray:
    """A SparseIndexVector union (Int32Vector / Uint16Vector / Uint8Vector) as an int64 array."""
    names = {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"}
    if table is None or type_code not in names:
        raise ModelImportError("sparse tensor has a segment/index vector of unknown type")
    module = importlib.import_module(f"tflite.{names[type_code]}")
    vec = getattr(module, names[type_code])()
    vec.Init(table.Bytes, table.Pos)
    return _vec(vec, "Values").astype(np.int64)


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any) -> np.ndarray:
    """Expand a TFLite sparse tensor (traversal order, block map, DENSE/CSR dims) to a dense array.

    Walks the dimension levels in traversal order, vectorised over all paths at
    once: a DENSE level multiplies the paths by its size, a CSR level expands each
    path into the index range its segment array gives. Values are stored in path
    order, so the i-th surviving path holds values[i].
    """
    rank = len(shape)
    order = [int(d) for d in _vec(sparsity, "TraversalOrder")]
    block_map = [int(d) for d in _vec(sparsity, "BlockMap")]
    levels = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    if len(order) != len(levels) or len(order) != rank + len(block_map):
        raise ModelImportError("sparse tensor: traversal order and dimension metadata disagree")
    coords = np.zeros((1, len(order)), dtype=np.int64)  # one row per path, indexed by expanded dim
    pos = np.zeros(1, dtype=np.int64)  # position of each path within its level
    block_sizes: dict[int, int] = {}
    for level, dim in zip(levels, order):
        if level.Format() == 0:  # DENSE
            size = int(level.DenseSize())
            if dim >= rank:
                block_sizes[block_map[dim - rank]] = size
            rep = np.repeat(np.arange(len(pos)), size)
            local = np.tile(np.arange(size, dtype=np.int64), len(pos))
            coords = coords[rep]
            coords[:, dim] = local
            pos = pos[rep] * size + local
        else:  # SPARSE_CSR
            segs = _index_vector(level.ArraySegments(), level.ArraySegmentsType())
            idx = _index_vector(level.ArrayIndices(), level.ArrayIndicesType())
            if len(pos) and (pos.max() + 1 >= len(segs) or segs[-1] > len(idx)):
                raise ModelImportError("sparse tensor: segment array out of range")
            starts, ends = segs[pos], segs[pos + 1]
            counts = ends - starts
            rep = np.repeat(np.arange(len(pos)), counts)
            flat = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            new_pos = starts[rep] + flat
            coords = coords[rep]
            coords[:, dim] = idx[new_pos]
            pos = new_pos
    if len(pos) != values.size:
        raise ModelImportError(f"sparse tensor: {values.size} stored values for {len(pos)} positions")
    dense_idx = coords[:, :rank].copy()
    for k, dim in enumerate(block_map):
        dense_idx[:, dim] = dense_idx[:, dim] * block_sizes.get(dim, 1) + coords[:, rank + k]
    out = np.zeros(shape, dtype=values.dtype)
    if values.size:
        out[tuple(dense_idx.T)] = values.reshape(-1)
    return out


def _buffer_bytes(model: Any, index: int, raw: bytes) -> bytes | None:
    if index <= 0 or index >= model.BuffersLength():
        return None
    buf = model.Buffers(index)
    offset, size = int(buf.Offset()), int(buf.Size())
    if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
        if offset + size > len(raw):
            raise ModelImportError(f"buffer {index} points past the end of the file")
        return raw[offset:offset + size]
    if buf.DataIsNone() or buf.DataLength() == 0:
        return None
    return buf.DataAsNumpy().tobytes()


def _read_tensor(model: Any, t: Any, index: int, raw: bytes) -> TflTensor:
    code = int(t.Type())
    type_name, np_type = TENSOR_TYPES.get(code, (f"TYPE{code}", None))
    shape = tuple(int(d) for d in _vec(t, "Shape"))
    sig = tuple(int(d) for d in _vec(t, "ShapeSignature")) if not t.ShapeSignatureIsNone() else None
    quant = None
    q = t.Quantization()
    if q is not None and not q.ScaleIsNone() and q.ScaleLength() > 0:
        scale = _vec(q, "Scale").astype(np.float64)
        zp = _vec(q, "ZeroPoint").astype(np.int64)
        if zp.size == 0:
            zp = np.zeros_like(scale, dtype=np.int64)
        quant = TflQuant(scale, zp, int(q.QuantizedDimension()))
    data = None
    payload = _buffer_bytes(model, int(t.Buffer()), raw)
    if payload is not None:
        if np_type is None:
            raise ModelImportError(f"constant tensor '{_str(t.Name())}' has type {type_name}, which npuc cannot read")
        values = np.frombuffer(payload, dtype=np.dtype(np_type))
        sparsity = t.Sparsity()
        if sparsity is not None:
            data = densify(values, shape, sparsity)
        else:
            if values.size != int(np.prod(shape, dtype=np.int64)):
                raise ModelImportError(
                    f"constant tensor '{_str(t.Name())}' holds {values.size} values for shape {list(shape)}"
                )
            data = values.reshape(shape)
        data = data.astype(data.dtype.newbyteorder("="), copy=False)
    return TflTensor(index, _str(t.Name()), type_name, shape, sig, data, quant, bool(t.IsVariable()))


def _parse(raw: bytes) -> TflModel:
    tfl = _tflite()
    op_names = _enum_names(tfl.BuiltinOperator)
    union_names = _enum_names(tfl.BuiltinOptions)
    model = tfl.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() < 1:
        raise ModelImportError("the model has no subgraph")
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        codes.append((op_names.get(code, f"BUILTIN_{code}"), _str(oc.CustomCode()), int(oc.Version())))
    for i in range(model.BuffersLength()):  # touch every buffer table: a cut-off tail fails here
        buf = model.Buffers(i)
        if not buf.DataIsNone() and buf.DataLength() and buf.Offset() <= 1:
            buf.DataAsNumpy()
    sg = model.Subgraphs(0)
    tensors = [_read_tensor(model, sg.Tensors(i), i, raw) for i in range(sg.TensorsLength())]
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        k = int(op.OpcodeIndex())
        if not 0 <= k < len(codes):
            raise ModelImportError(f"operator {i} uses opcode index {k}, the model defines {len(codes)}")
        name, custom, version = codes[k]
        ins = tuple(int(x) for x in _vec(op, "Inputs"))
        outs = tuple(int(x) for x in _vec(op, "Outputs"))
        for x in ins + outs:
            if not -1 <= x < len(tensors):
                raise ModelImportError(f"operator {i} ({name}) refers to tensor {x}, the model has {len(tensors)}")
        opts = _options_dict(op.BuiltinOptions(), int(op.BuiltinOptionsType()), union_names)
        ops.append(TflOperator(i, name, custom, version, ins, outs, opts))
    inputs = tuple(int(x) for x in _vec(sg, "Inputs"))
    outputs = tuple(int(x) for x in _vec(sg, "Outputs"))
    for x in inputs + outputs:
        if not 0 <= x < len(tensors):
            raise ModelImportError(f"the subgraph's inputs/outputs refer to tensor {x}, the model has {len(tensors)}")
    return TflModel(tensors, ops, inputs, outputs, _str(model.Description()), model.SubgraphsLength(),
                    int(model.Version()))


def read_tflite(source: str | Path | bytes) -> TflModel:
    """Read a .tflite file (path or bytes) into a TflModel; any malformation is a ModelImportError."""
    where = "the model bytes"
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    else:
        path = Path(source)
        where = f"'{path}'"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelImportError(f"cannot read TFLite model {where}: {exc.strerror or exc}") from None
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ModelImportError(
            f"{where} is not a TFLite model: a .tflite file starts with a flatbuffer whose identifier is 'TFL3' "
            f"(found {raw[4:8]!r} in {len(raw)} bytes)"
        )
    try:
        return _parse(raw)
    except ModelImportError as exc:
        raise ModelImportError(f"TFLite model {where} is malformed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure inside the flatbuffer reader means a bad file
        log.debug("flatbuffer read failed", exc_info=True)
        raise ModelImportError(
            f"TFLite model {where} ({len(raw)} bytes) is truncated or corrupt: reading its flatbuffer failed "
            f"({type(exc).__name__}: {exc}). Re-export or re-download the model."
        ) from None
