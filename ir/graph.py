"""The IR graph: Op and Tensor nodes on a private networkx MultiDiGraph.

`Graph` is the only way to change the IR. Edges carry the port number:
tensor -> op edges are inputs, op -> tensor edges are outputs. A MultiDiGraph
is used because `Mul(x, x)` has two edges from one tensor to one op.
Iteration is deterministic: creation order breaks ties in topological order.
"""
from __future__ import annotations

import copy as _copy
import itertools
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.op import Op
from npuc.ir.op_spec import OPS, OpRegistry
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor

Node = Op | Tensor


class Graph:
    """A model in npuc's IR."""

    def __init__(self, name: str = "model", registry: OpRegistry | None = None) -> None:
        import npuc.ir.ops  # noqa: F401  (registers the built-in op kinds)

        self.name = name
        self.registry = registry or OPS
        self._g = nx.MultiDiGraph()
        self._seq = itertools.count()
        self._tensors: dict[str, Tensor] = {}
        self._ops: dict[str, Op] = {}
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        #: model-level facts saved with the model (source format, pruned layouts, ...)
        self.meta: dict[str, Any] = {}
        self._topo_cache: list[Op] | None = None

    # ------------------------------------------------------------------ views
    @property
    def nx(self) -> nx.MultiDiGraph:
        """Read-only view of the underlying networkx graph (for analyses)."""
        return self._g.copy(as_view=True)

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self._ops)} ops, {len(self._tensors)} tensors)"

    # ------------------------------------------------------------------ names
    def _unique(self, base: str, taken: Mapping[str, Any]) -> str:
        base = base or "t"
        if base not in taken:
            return base
        for i in itertools.count(1):
            cand = f"{base}_{i}"
            if cand not in taken:
                return cand
        raise AssertionError("unreachable")

    def unique_tensor_name(self, base: str) -> str:
        return self._unique(base, self._tensors)

    def unique_op_name(self, base: str) -> str:
        return self._unique(base, self._ops)

    # --------------------------------------------------------------- creation
    def _add_node(self, node: Node) -> None:
        self._g.add_node(node, seq=next(self._seq))
        self._topo_cache = None

    def add_tensor(
        self,
        name: str,
        dtype: DType,
        shape: Sequence[int],
        data: np.ndarray | None = None,
        quant: QuantParams | None = None,
        layout: str | None = None,
        unique: bool = False,
    ) -> Tensor:
        """Add a tensor node. With unique=True a taken name gets a numeric suffix."""
        if unique:
            name = self.unique_tensor_name(name)
        elif name in self._tensors:
            raise ValueError(f"tensor name '{name}' is already used")
        t = Tensor(name, dtype, tuple(shape), data=data, quant=quant, layout=layout)
        self._tensors[name] = t
        self._add_node(t)
        return t

    def add_const(self, name: str, value: Any, dtype: DType | None = None, unique: bool = True) -> Tensor:
        """Add a constant tensor holding a copy of `value` (stored read-only)."""
        arr = np.array(value, copy=True)
        if dtype is not None:
            arr = arr.astype(dtype.numpy)
        else:
            if arr.dtype == np.float64:  # python floats: the IR computes in float32
                arr = arr.astype(np.float32)
            dtype = DType.from_numpy(arr.dtype)
        arr.flags.writeable = False
        return self.add_tensor(name, dtype, arr.shape, data=arr, unique=unique)

    def add_input(self, name: str, dtype: DType, shape: Sequence[int], layout: str | None = None) -> Tensor:
        t = self.add_tensor(name, dtype, shape, layout=layout)
        self.inputs.append(t)
        return t

    def add_op(
        self,
        kind: str,
        inputs: Sequence[Tensor | None],
        attrs: Mapping[str, Any] | None = None,
        name: str | None = None,
        origin: Iterable[str] = (),
        outputs: Sequence[Tensor | str] | None = None,
        num_outputs: int | None = None,
    ) -> Op:
        """Add an op; its output tensors are created (or checked) from the kind's shape inference.

        outputs: existing producer-less tensors, or names for new ones; by default
        one new tensor per output named after the op.
        """
        spec = self.registry.get(kind)
        op = Op(self.unique_op_name(name or kind), kind, spec.with_defaults(attrs), tuple(origin))
        ins = list(inputs)
        while ins and ins[-1] is None:
            ins.pop()
        for t in ins:
            if t is not None and self._tensors.get(t.name) is not t:
                raise ValueError(f"{kind} '{op.name}': input tensor '{t.name}' is not in this graph")
        types = spec.infer(op, ins)
        if outputs is not None and len(outputs) != len(types):
            raise ValueError(f"{kind} '{op.name}': {len(outputs)} outputs given, kind infers {len(types)}")
        self._ops[op.name] = op
        self._add_node(op)
        for port, t in enumerate(ins):
            if t is not None:
                self._g.add_edge(t, op, port=port)
        for port, (shape, dtype) in enumerate(types):
            given = outputs[port] if outputs is not None else None
            if isinstance(given, Tensor):
                if self.producer(given) is not None:
                    raise ValueError(f"tensor '{given.name}' already has a producer")
                given.shape, given.dtype = tuple(shape), dtype
                out = given
            else:
                base = given or (op.name if len(types) == 1 else f"{op.name}:{port}")
                out = self.add_tensor(base, dtype, shape, unique=True)
            self._g.add_edge(op, out, port=port)
        self._topo_cache = None
        return op

    # ---------------------------------------------------------------- queries
    def tensor(self, name: str) -> Tensor:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"no tensor named '{name}'") from None

    def op(self, name: str) -> Op:
        try:
            return self._ops[name]
        except KeyError:
            raise KeyError(f"no op named '{name}'") from None

    def has_tensor(self, name: str) -> bool:
        return name in self._tensors

    def has_op(self, name: str) -> bool:
        return name in self._ops

    def tensors(self) -> list[Tensor]:
        """All tensors in creation order."""
        return list(self._tensors.values())

    def constants(self) -> list[Tensor]:
        return [t for t in self._tensors.values() if t.is_const]

    def ops(self) -> list[Op]:
        """Ops in topological order, creation order breaking ties (deterministic)."""
        if self._topo_cache is None:
            seq = nx.get_node_attributes(self._g, "seq")
            try:
                order = nx.lexicographical_topological_sort(self._g, key=lambda n: seq[n])
                self._topo_cache = [n for n in order if isinstance(n, Op)]
            except nx.NetworkXUnfeasible:
                raise ValueError("the graph has a cycle") from None
        return list(self._topo_cache)

    def inputs_of(self, op: Op) -> list[Tensor | None]:
        """Input tensors by port; None marks an absent optional input."""
        edges = sorted((d["port"], t) for t, _, d in self._g.in_edges(op, data=True))
        if not edges:
            return []
        ins: list[Tensor | None] = [None] * (edges[-1][0] + 1)
        for port, t in edges:
            ins[port] = t
        return ins

    def outputs_of(self, op: Op) -> list[Tensor]:
        return [t for _, t in sorted((d["port"], t) for _, t, d in self._g.out_edges(op, data=True))]

    def producer(self, tensor: Tensor) -> Op | None:
        preds = list(self._g.predecessors(tensor))
        return preds[0] if preds else None

    def consumers(self, tensor: Tensor) -> list[tuple[Op, int]]:
        """(op, port) pairs reading this tensor, in node creation order."""
        seq = self._g.nodes
        uses = [(op, d["port"]) for _, op, d in self._g.out_edges(tensor, data=True)]
        return sorted(uses, key=lambda u: (seq[u[0]]["seq"], u[1]))

    def is_output(self, tensor: Tensor) -> bool:
        return any(t is tensor for t in self.outputs)

    def spec(self, op: Op):
        return self.registry.get(op.kind)

    # --------------------------------------------------------------- mutation
    def set_input(self, op: Op, port: int, tensor: Tensor | None) -> None:
        """Connect `tensor` to input `port` of `op` (None disconnects it)."""
        for u, v, key, d in list(self._g.in_edges(op, keys=True, data=True)):
            if d["port"] == port:
                self._g.remove_edge(u, v, key)
        if tensor is not None:
            self._g.add_edge(tensor, op, port=port)
        self._topo_cache = None

    def replace_uses(self, old: Tensor, new: Tensor, skip: Iterable[Op] = ()) -> None:
        """Make every reader of `old` (and the graph outputs) read `new` instead."""
        skip_ids = {id(o) for o in skip}
        for op, port in self.consumers(old):
            if id(op) not in skip_ids:
                self.set_input(op, port, new)
        self.outputs = [new if t is old else t for t in self.outputs]

    def remove_op(self, op: Op, remove_outputs: bool = True) -> None:
        """Remove an op; its output tensors go too unless still used or remove_outputs is False."""
        outs = self.outputs_of(op)
        self._g.remove_node(op)
        del self._ops[op.name]
        if remove_outputs:
            for t in outs:
                if not self.consumers(t) and not self.is_output(t):
                    self.remove_tensor(t)
        self._topo_cache = None

    def remove_tensor(self, tensor: Tensor) -> None:
        if self._g.degree(tensor):
            raise ValueError(f"tensor '{tensor.name}' is still connected")
        self._g.remove_node(tensor)
        del self._tensors[tensor.name]
        self.inputs = [t for t in self.inputs if t is not tensor]
        self.outputs = [t for t in self.outputs if t is not tensor]

    def rename_tensor(self, tensor: Tensor, new_name: str) -> None:
        if new_name in self._tensors and self._tensors[new_name] is not tensor:
            raise ValueError(f"tensor name '{new_name}' is already used")
        del self._tensors[tensor.name]
        tensor.name = new_name
        self._tensors[new_name] = tensor

    def remove_unused_tensors(self) -> int:
        """Drop tensors nobody produces, reads, or exposes (e.g. dead constants)."""
        dead = [
            t for t in self._tensors.values()
            if self._g.degree(t) == 0 and not self.is_output(t) and not any(t is i for i in self.inputs)
        ]
        for t in dead:
            self.remove_tensor(t)
        return len(dead)

    def reinfer(self, op: Op) -> None:
        """Re-run shape inference of `op` after its inputs or attributes changed."""
        types = self.spec(op).infer(op, self.inputs_of(op))
        for t, (shape, dtype) in zip(self.outputs_of(op), types):
            t.shape, t.dtype = tuple(shape), dtype

    def copy(self) -> "Graph":
        """Deep copy; constant arrays are shared (they are read-only)."""
        memo: dict[int, Any] = {}
        for t in self._tensors.values():
            if t.data is not None:
                memo[id(t.data)] = t.data
        memo[id(self.registry)] = self.registry
        return _copy.deepcopy(self, memo)
