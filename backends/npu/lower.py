"""Lowering: a (quantized) IR graph -> a Program (layer list, tensor table, buffer plan, parameters)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from npuc.backends.npu.buffer_plan import Interval, plan_buffers
from npuc.backends.npu.isa import KIND_TO_OPCODE
from npuc.backends.npu.program import LayerEntry, Program, TensorEntry
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor

ParamsFn = Callable[[Graph, Op], dict[str, np.ndarray]]


def default_params_fn() -> ParamsFn:
    """The one derivation of integer layer constants (docs/quantized-ir.md)."""
    from npuc.quantization.op_params import derive_op_params

    return derive_op_params


def _nbytes(t: Tensor) -> int:
    return t.size * t.dtype.numpy.itemsize


def lower(graph: Graph, params_fn: ParamsFn | None = None, metadata: dict | None = None) -> Program:
    """Turn `graph` into a Program. Layer order = graph.ops() (deterministic)."""
    params_fn = params_fn or default_params_fn()
    ops = graph.ops()
    ids: dict[int, int] = {}
    order: list[Tensor] = []

    def visit(t: Tensor) -> None:
        if id(t) not in ids:
            ids[id(t)] = len(order)
            order.append(t)

    for t in graph.inputs:
        visit(t)
    for op in ops:
        for t in graph.inputs_of(op):
            if t is not None:
                visit(t)
        for t in graph.outputs_of(op):
            visit(t)
    for t in graph.outputs:
        visit(t)

    in_ids = {id(t) for t in graph.inputs}
    out_ids = {id(t) for t in graph.outputs}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        for t in graph.outputs_of(op):
            first.setdefault(id(t), i)
            last.setdefault(id(t), i)
        for t in graph.inputs_of(op):
            if t is not None:
                last[id(t)] = i
    intervals = [
        Interval(ids[id(t)], _nbytes(t), first[id(t)], last[id(t)])
        for t in order
        if not t.is_const and id(t) not in in_ids and id(t) not in out_ids and id(t) in first
    ]
    offsets, arena = plan_buffers(intervals)

    tensors: list[TensorEntry] = []
    constants: dict[int, np.ndarray] = {}
    for tid, t in enumerate(order):
        if t.is_const:
            role = "constant"
            constants[tid] = np.ascontiguousarray(t.data)
        elif id(t) in in_ids:
            role = "input"
        elif id(t) in out_ids:
            role = "output"
        else:
            role = "activation"
        tensors.append(TensorEntry(tid, t.name, t.dtype, tuple(t.shape), role, t.quant, t.layout,
                                   offsets.get(tid, 0), _nbytes(t)))

    layers: list[LayerEntry] = []
    params: list[tuple[str, np.ndarray]] = []
    for i, op in enumerate(ops):
        layer_params = {}
        for pname, value in sorted(params_fn(graph, op).items()):
            layer_params[pname] = len(params)
            params.append((f"{op.name}/{pname}", np.ascontiguousarray(value)))
        layers.append(LayerEntry(
            i, op.name, op.kind, tuple(op.origin), dict(op.attrs),
            tuple(-1 if t is None else ids[id(t)] for t in graph.inputs_of(op)),
            tuple(ids[id(t)] for t in graph.outputs_of(op)),
            layer_params,
        ))
    meta = {"graph_meta": _json_safe(graph.meta), "opcodes": sorted({op.kind for op in ops} - set(KIND_TO_OPCODE))}
    meta.update(metadata or {})
    return Program(graph.name, tensors, layers, constants, params,
                   [ids[id(t)] for t in graph.inputs], [ids[id(t)] for t in graph.outputs], arena, meta)


def _json_safe(value):
    """Model-level metadata reduced to JSON types (unknown objects become their text)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def to_graph(program: Program) -> Graph:
    """Rebuild the IR graph a program was lowered from (used to verify decoded binaries and to profile them)."""
    g = Graph(program.name)
    tensors: dict[int, Tensor] = {}
    for e in program.tensors:
        data = program.constants.get(e.id) if e.role == "constant" else None
        t = g.add_tensor(e.name, e.dtype, e.shape, data=data, quant=e.quant, layout=e.layout)
        tensors[e.id] = t
    g.inputs = [tensors[i] for i in program.inputs]
    for layer in program.layers:
        g.add_op(layer.kind, [None if i < 0 else tensors[i] for i in layer.inputs], layer.attrs,
                 name=layer.name, origin=layer.origin, outputs=[tensors[i] for i in layer.outputs])
    g.outputs = [tensors[i] for i in program.outputs]
    g.meta = dict(program.metadata.get("graph_meta", {}))
    return g
