"""State shared by the ONNX lowering rules while one model is imported.

Every ONNX value is either an IR tensor (an activation, a graph input, a
constant) or an import-time numpy value (initializers, Constant nodes and
everything the importer folded, e.g. Shape chains), or both. Lowering rules ask
for `tensor(name)` when an IR op reads the value and `static_input(...)` when
an IR attribute needs it; constants are materialised in the IR only on demand.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Container, Iterable, Mapping, Sequence

import numpy as np

from npuc.errors import ModelImportError
from npuc.frontends.onnx_node import NodeView, StaticGetter
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor


class ImportContext:
    """The IR graph under construction plus the ONNX value -> IR tensor / static value maps."""

    def __init__(self, graph: Graph, opset: int, value_names: Iterable[str], node_names: Iterable[str]) -> None:
        self.graph = graph
        self.opset = opset
        #: ONNX value name -> IR tensor
        self.values: dict[str, Tensor] = {}
        #: ONNX value name -> numpy value known at import time
        self.static: dict[str, np.ndarray] = {}
        #: ONNX value name -> why it has no import-time value (for error messages)
        self.not_static: dict[str, str] = {}
        #: ONNX value name -> description of the node that produces it
        self.producers: dict[str, str] = {}
        #: ONNX values that depend on a model input at run time (not computable at import)
        self.dynamic: set[str] = set()
        self._reserved_values = set(value_names)
        self._reserved_ops = set(node_names)

    # ----------------------------------------------------------------- reads
    def tensor(self, name: str) -> Tensor:
        """The IR tensor for ONNX value `name`; an import-time value becomes a constant now."""
        t = self.values.get(name)
        if t is not None:
            return t
        if name in self.static:
            t = self.graph.add_const(name, self.static[name], unique=False)
            self.values[name] = t
            return t
        if name in self.not_static:
            raise ModelImportError(f"value '{name}' cannot be imported: {self.not_static[name]}")
        raise ModelImportError(
            f"value '{name}' is read by the model but never produced"
            + (f" (its producer {self.producers[name]} does not provide it)" if name in self.producers else ""))

    def input_tensor(self, node: NodeView, port: int) -> Tensor | None:
        """IR tensor of input `port` of `node`, None when the optional input is absent."""
        name = node.input(port)
        return None if name is None else self.tensor(name)

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name in self.values:
            return self.values[name].shape
        if name in self.static:
            return tuple(self.static[name].shape)
        return self.tensor(name).shape

    def static_input(self, node: NodeView, port: int, what: str) -> np.ndarray | None:
        """Import-time value of input `port` (None when absent); a run-time value is a user error."""
        name = node.input(port)
        if name is None:
            return None
        if name in self.static:
            return self.static[name]
        reason = self.not_static.get(name, "it is computed from the model's activations")
        raise node.error(
            f"its {what} (input {port}, value '{name}') must be known when the model is imported, but {reason}. "
            "npuc compiles static shapes only; fix the input shapes with --input-shape or export the model "
            "with constant arguments.")

    def getter(self, node: NodeView, what: str) -> StaticGetter:
        """A port -> static value function for the shared argument rules."""
        return lambda port: self.static_input(node, port, f"{what} argument")

    def is_dynamic(self, name: str | None) -> bool:
        """True when the value depends on a model input (an activation, not a weight)."""
        return name is not None and name in self.dynamic

    def is_const(self, name: str | None) -> bool:
        """True when the value is an import-time constant (initializer, Constant, folded chain)."""
        return name is not None and name in self.static

    # ---------------------------------------------------------------- writes
    def _fresh(self, base: str, taken: Container[str], reserved: set[str]) -> str:
        if base not in taken and base not in reserved:
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in taken and cand not in reserved:
                return cand
        raise AssertionError("unreachable")

    def fresh_tensor_name(self, base: str) -> str:
        """A tensor name free in the graph and used by no ONNX value."""
        return self._fresh(base, _Names(self.graph.has_tensor), self._reserved_values)

    def const(self, base: str, value: Any, dtype: DType | None = None) -> Tensor:
        """A new helper constant (e.g. a transposed weight) with a name no ONNX value uses."""
        return self.graph.add_const(self.fresh_tensor_name(base), value, dtype=dtype, unique=False)

    def emit(
        self,
        node: NodeView,
        kind: str,
        inputs: Sequence[Tensor | None],
        attrs: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        suffix: str | None = None,
    ) -> list[Tensor]:
        """Add one IR op for `node`. `outputs` are ONNX value names (bound to the new tensors);
        without them the outputs are fresh intermediates. `suffix` marks a helper op (its name is
        `<node>/<suffix>`); the op without suffix carries the node's own name."""
        if suffix is None:
            op_name = node.name
        else:
            op_name = self._fresh(f"{node.name}/{suffix}", _Names(self.graph.has_op), self._reserved_ops)
        if outputs is None:
            names = None
        else:
            names = [n if n else self.fresh_tensor_name(f"{node.name}/unused{i}") for i, n in enumerate(outputs)]
        try:
            op = self.graph.add_op(kind, inputs, attrs, name=op_name, origin=(node.name,), outputs=names)
        except ValueError as exc:
            shapes = [None if t is None else t.shape for t in inputs]
            raise node.error(f"cannot be lowered to {kind} on inputs of shapes {shapes}: {exc}") from None
        if names is None:
            for t in self.graph.outputs_of(op):
                if t.name in self._reserved_values:  # add_op named it after the op: keep ONNX names free
                    self.graph.rename_tensor(t, self.fresh_tensor_name(f"{op.name}:out"))
        outs = self.graph.outputs_of(op)
        if outputs is not None:
            for onnx_name, t in zip(outputs, outs):
                if onnx_name:
                    self.values[onnx_name] = t
        return outs

    def emit_one(self, node: NodeView, kind: str, inputs: Sequence[Tensor | None],
                 attrs: Mapping[str, Any] | None = None, suffix: str | None = None, final: bool = True) -> Tensor:
        """emit() for a single-output op; `final` binds it to the node's first ONNX output."""
        outs = self.emit(node, kind, inputs, attrs, outputs=[node.outputs[0]] if final else None, suffix=suffix)
        return outs[0]


class _Names:
    """A membership view over a graph's names (what `_fresh` needs)."""

    def __init__(self, has: Callable[[str], bool]) -> None:
        self._has = has

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._has(name)
