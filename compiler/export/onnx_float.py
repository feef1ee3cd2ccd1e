"""A float IR graph (as imported, or after the float rewrites) -> a standard float ONNX model.

`npuc compile --export-onnx-float` writes the graph after folding, pruning and
cross-layer equalization, so users can diff npuc's float rewrites against their
original model in onnxruntime or Netron. Fused activations are written back as
Relu/Clip nodes; quantization parameters are ignored.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto

from npuc.export.errors import ExportError
from npuc.export.onnx_builder import OnnxBuilder, elem_type
from npuc.export.onnx_ops import emit_op, supported
from npuc.ir.graph import Graph


def export_float_onnx(graph: Graph) -> onnx.ModelProto:
    """`graph` (a float IR graph) as an ONNX model (opset 21). Raises ExportError for kinds without ONNX form."""
    bad = sorted({op.kind for op in graph.ops() if not supported(op.kind) and op.kind != "Cast"})
    if bad:
        raise ExportError(f"cannot export '{graph.name}' as float ONNX: no ONNX form for op kind(s) "
                          f"{', '.join(bad)} (a quantized graph is exported with export_qdq_onnx / --onnx)")
    b = OnnxBuilder(graph.name)
    vals: dict[int, str] = {}
    for t in graph.inputs:
        b.add_input(t.name, t.dtype.numpy, t.shape)
        vals[id(t)] = t.name
    for op in graph.ops():
        ins: list[str | None] = []
        for t in graph.inputs_of(op):
            if t is None:
                ins.append(None)
            elif id(t) not in vals:  # constants, written on first use
                vals[id(t)] = b.const(t.name, np.asarray(t.data))
                ins.append(vals[id(t)])
            else:
                ins.append(vals[id(t)])
        outs_t = graph.outputs_of(op)
        outs = [b.fresh(t.name) for t in outs_t]
        if op.kind == "Cast":
            b.node("Cast", ins[:1], outs, name=op.name, to=elem_type(op.attrs["to"].numpy))
        else:
            weight = graph.inputs_of(op)[1] if len(graph.inputs_of(op)) > 1 else None
            emit_op(b, op, ins, outs, weight_shape=None if weight is None else weight.shape)
        for t, name in zip(outs_t, outs):
            vals[id(t)] = name
    for t in graph.outputs:
        value = vals[id(t)]
        if value != t.name:
            value = b.node("Identity", [value], [b.fresh(f"{t.name}_out")], name=f"{t.name}/output")[0]
        b.add_output(value, t.dtype.numpy if t.dtype is not None else TensorProto.FLOAT, t.shape)
    meta = {"npuc_export": "float"}
    if "io_layouts" in graph.meta:
        meta["io_layouts"] = json.dumps(graph.meta["io_layouts"], sort_keys=True, default=str)
    return b.model(doc=f"float export of the npuc graph '{graph.name}'", metadata=meta)
