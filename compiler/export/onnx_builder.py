"""A small helper that collects ONNX nodes, initializers and value names while a graph is exported."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npuc import __version__

#: One opset for every export: 21 is the first with int16/uint16 (and int4) Quantize/DequantizeLinear.
OPSET = 21

_ELEM = {
    np.dtype("float32"): TensorProto.FLOAT,
    np.dtype("float16"): TensorProto.FLOAT16,
    np.dtype("int8"): TensorProto.INT8,
    np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("int16"): TensorProto.INT16,
    np.dtype("uint16"): TensorProto.UINT16,
    np.dtype("int32"): TensorProto.INT32,
    np.dtype("int64"): TensorProto.INT64,
    np.dtype("bool"): TensorProto.BOOL,
}


def elem_type(dtype: np.dtype | type) -> int:
    """The ONNX element type of a numpy dtype."""
    return _ELEM[np.dtype(dtype)]


class OnnxBuilder:
    """Accumulates one ONNX graph. Value names are kept unique; node names follow the IR op names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._names: set[str] = set()
        self._node_names: set[str] = set()

    def fresh(self, base: str) -> str:
        """A value name not used yet, `base` itself when free."""
        name, i = base, 1
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact value name (graph input/output names must not change)."""
        if name in self._names:
            raise ValueError(f"ONNX value name '{name}' is used twice")
        self._names.add(name)
        return name

    def const(self, base: str, value: Any, dtype: np.dtype | type | None = None) -> str:
        """Add an initializer and return its name."""
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
        name = self.fresh(base)
        # np.array, not np.ascontiguousarray: a 0-d value (per-tensor scale, Clip bound) stays a scalar
        self.initializers.append(numpy_helper.from_array(np.array(arr, order="C"), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | None = None,
             name: str | None = None, **attrs: Any) -> list[str]:
        """Add a node; outputs default to one fresh value named after the node. Returns the output names."""
        base = name or op_type
        node_name, i = base, 1
        while node_name in self._node_names:
            node_name = f"{base}_{i}"
            i += 1
        self._node_names.add(node_name)
        outs = list(outputs) if outputs is not None else [self.fresh(node_name)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=node_name, **attrs))
        return outs

    def add_input(self, name: str, dtype: np.dtype | type, shape: Sequence[int]) -> None:
        self.inputs.append(helper.make_tensor_value_info(self.reserve(name), elem_type(dtype), list(shape)))

    def add_output(self, name: str, dtype: np.dtype | type, shape: Sequence[int]) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem_type(dtype), list(shape)))

    def model(self, doc: str = "", metadata: dict[str, str] | None = None) -> onnx.ModelProto:
        """The finished model (opset OPSET, IR version the opset needs)."""
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="npuc", producer_version=__version__, doc_string=doc)
        model.ir_version = 10  # opset 21 needs IR version >= 10
        for key, value in (metadata or {}).items():
            helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key: str(value)})
        return model
