"""A read-only view of one ONNX node plus the ONNX facts the importer shares (types, padding rules).

Lowering rules (onnx_ops.py) and the import-time evaluator (onnx_static_values.py)
both read nodes through `NodeView`, so attribute defaults and opset-dependent
argument positions are decided in one place.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from npuc.errors import ModelImportError
from npuc.ir.dtypes import DType

log = logging.getLogger(__name__)

#: ONNX TensorProto element type -> IR dtype. DOUBLE is narrowed to float32 (the NPU has no f64).
_ONNX_TO_DTYPE = {
    onnx.TensorProto.FLOAT: DType.FLOAT32,
    onnx.TensorProto.FLOAT16: DType.FLOAT16,
    onnx.TensorProto.DOUBLE: DType.FLOAT32,
    onnx.TensorProto.INT8: DType.INT8,
    onnx.TensorProto.UINT8: DType.UINT8,
    onnx.TensorProto.INT16: DType.INT16,
    onnx.TensorProto.UINT16: DType.UINT16,
    onnx.TensorProto.INT32: DType.INT32,
    onnx.TensorProto.INT64: DType.INT64,
    onnx.TensorProto.UINT32: DType.INT64,
    onnx.TensorProto.UINT64: DType.INT64,
    onnx.TensorProto.BOOL: DType.BOOL,
}


def dtype_from_onnx(elem_type: int, where: str) -> DType:
    """IR dtype of an ONNX element type; an unsupported one (string, bfloat16, ...) is a user error."""
    try:
        return _ONNX_TO_DTYPE[elem_type]
    except KeyError:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        raise ModelImportError(f"{where}: element type {name} is not supported by npuc "
                               f"(supported: float32, float16, float64 (read as float32), integers, bool)") from None


def onnx_type_name(elem_type: int) -> str:
    """Lower-case ONNX element type name ('float', 'int64', ...) for reports."""
    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"type{elem_type}"


def array_from_tensor(proto: onnx.TensorProto, where: str) -> np.ndarray:
    """numpy value of an initializer / Constant tensor, in the IR's storage type."""
    try:
        arr = numpy_helper.to_array(proto)
    except Exception as exc:  # corrupt raw_data, missing external file, ...
        raise ModelImportError(f"{where}: cannot read tensor data ({type(exc).__name__}: {exc})") from None
    dtype = dtype_from_onnx(proto.data_type, where)
    return np.asarray(arr).astype(dtype.numpy, copy=False)


@dataclass(frozen=True)
class NodeView:
    """One ONNX node with its unique IR name and the model's default-domain opset."""

    proto: onnx.NodeProto
    name: str
    opset: int

    @property
    def op_type(self) -> str:
        return self.proto.op_type

    @property
    def inputs(self) -> list[str]:
        return list(self.proto.input)

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def input(self, port: int) -> str | None:
        """Name of input `port`, None when absent or given as '' (optional input skipped)."""
        if port < len(self.proto.input) and self.proto.input[port]:
            return self.proto.input[port]
        return None

    def has_attr(self, name: str) -> bool:
        return any(a.name == name for a in self.proto.attribute)

    def attr(self, name: str, default: Any = None) -> Any:
        """Attribute value as a Python value (bytes decoded, tensors as numpy), or `default`."""
        for a in self.proto.attribute:
            if a.name == name:
                value = helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    return value.decode("utf-8", "replace")
                if isinstance(value, onnx.TensorProto):
                    return array_from_tensor(value, f"node '{self.name}' attribute '{name}'")
                if isinstance(value, list) and value and isinstance(value[0], bytes):
                    return [v.decode("utf-8", "replace") for v in value]
                return value
        return default

    def ints(self, name: str, default: Sequence[int] | None = None) -> tuple[int, ...] | None:
        value = self.attr(name)
        if value is None:
            return None if default is None else tuple(int(v) for v in default)
        return tuple(int(v) for v in value)

    def describe(self) -> str:
        return f"{self.op_type} node '{self.name}'"

    def error(self, message: str) -> ModelImportError:
        """A user error about this node."""
        return ModelImportError(f"{self.describe()}: {message}")


#: How a lowering or evaluator obtains an argument that ONNX passes either as attribute or as input.
StaticGetter = Callable[[int], "np.ndarray | None"]


def attr_or_input(node: NodeView, attr: str, port: int, moved_in: int, get: StaticGetter) -> np.ndarray | None:
    """An argument given as attribute `attr` before opset `moved_in` and as input `port` from then on."""
    if node.opset < moved_in or node.has_attr(attr):
        value = node.attr(attr)
        return None if value is None else np.asarray(value)
    return get(port)


def axes_arg(node: NodeView, moved_in: int, get: StaticGetter, port: int = 1) -> tuple[int, ...] | None:
    """An `axes` argument (attribute before `moved_in`, input `port` after) as a tuple, None when absent."""
    value = attr_or_input(node, "axes", port, moved_in, get)
    return None if value is None else tuple(int(v) for v in np.asarray(value).reshape(-1))


def normalize_axes(axes: Sequence[int], rank: int, node: NodeView) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise node.error(f"axis {a} is out of range for rank {rank}")
        out.append(a % rank)
    return tuple(out)


def auto_pads(auto_pad: str, in_sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int], node: NodeView) -> tuple[int, ...] | None:
    """Explicit (begins..., ends...) pads for a forward conv/pool auto_pad mode; None for NOTSET."""
    if auto_pad in ("", "NOTSET"):
        return None
    n = len(in_sizes)
    if auto_pad == "VALID":
        return (0,) * (2 * n)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.error(f"unknown auto_pad '{auto_pad}'")
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
    return tuple(begins + ends)


def normalize_slice(dim: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice bounds for one axis rewritten so Python slice semantics select the same elements.

    ONNX clamps after adding `dim` to negatives; for a negative step an end of -1 means
    "before index 0", which Python spells as -(dim + 1).
    """
    if step == 0:
        raise ValueError("Slice step 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        return start, end, step
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return start, (-(dim + 1) if end == -1 else end), step
