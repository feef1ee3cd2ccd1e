"""Text (.npuir), Graphviz dot and JSON renderings of a graph. Deterministic, byte for byte."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor

#: constants with at most this many elements are printed inline
INLINE_CONST_ELEMENTS = 8


def format_value(value: Any) -> str:
    """One attribute value as text."""
    if isinstance(value, DType):
        return str(value)
    if isinstance(value, np.ndarray):
        if value.size <= INLINE_CONST_ELEMENTS:
            return format_value(value.tolist())
        return f"<array {value.dtype}{list(value.shape)}>"
    if isinstance(value, float):
        return repr(float(f"{value:.7g}"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _const_text(t: Tensor) -> str:
    if t.size <= INLINE_CONST_ELEMENTS:
        return format_value(t.data.tolist())
    return f"<{t.size} elements, {t.nbytes} B, sha256:{t.digest()}>"


def to_text(graph: Graph) -> str:
    """The .npuir dump: header, inputs, constants, one op per line, outputs."""
    lines = [f"graph {json.dumps(graph.name)} {{"]
    for key in sorted(graph.meta):
        lines.append(f"  meta {key} = {format_value(graph.meta[key])}")
    for t in graph.inputs:
        lines.append(f"  input %{t.name}: {t.type_str()}")
    ops = graph.ops()
    seen: set[int] = set()
    for op in ops:
        for t in graph.inputs_of(op):
            if t is not None and t.is_const and id(t) not in seen:
                seen.add(id(t))
                lines.append(f"  const %{t.name}: {t.type_str()} = {_const_text(t)}")
    for op in ops:
        ins = ", ".join("_" if t is None else f"%{t.name}" for t in graph.inputs_of(op))
        outs = ", ".join(f"%{t.name}: {t.type_str()}" for t in graph.outputs_of(op))
        attrs = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(op.attrs.items()) if v is not None)
        line = f"  {outs} = {op.kind}({ins})"
        if attrs:
            line += f" {{{attrs}}}"
        line += f"  # {op.name}"
        if op.origin and op.origin != (op.name,):
            line += f" <- {', '.join(op.origin)}"
        lines.append(line)
    for t in graph.outputs:
        note = f"  # layout {t.layout}" if t.layout else ""
        lines.append(f"  output %{t.name}: {t.type_str()}{note}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph) -> str:
    """Graphviz dot: ops as boxes, activations as edges labelled with their type."""
    lines = [f"digraph {json.dumps(graph.name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=Helvetica];"]
    for t in graph.inputs:
        lines.append(f"  {json.dumps('in:' + t.name)} [shape=ellipse, label={json.dumps(t.name + chr(10) + t.type_str())}];")
    for op in graph.ops():
        label = f"{op.kind}\n{op.name}"
        lines.append(f"  {json.dumps('op:' + op.name)} [label={json.dumps(label)}];")
    for t in graph.outputs:
        lines.append(f"  {json.dumps('out:' + t.name)} [shape=ellipse, label={json.dumps(t.name)}];")
    for op in graph.ops():
        for t in graph.inputs_of(op):
            if t is None or t.is_const:
                continue
            prod = graph.producer(t)
            src = f"op:{prod.name}" if prod else f"in:{t.name}"
            lines.append(f"  {json.dumps(src)} -> {json.dumps('op:' + op.name)} [label={json.dumps(t.type_str())}];")
    for t in graph.outputs:
        prod = graph.producer(t)
        src = f"op:{prod.name}" if prod else f"in:{t.name}"
        lines.append(f"  {json.dumps(src)} -> {json.dumps('out:' + t.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _tensor_json(t: Tensor) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name, "dtype": str(t.dtype), "shape": list(t.shape)}
    if t.quant is not None:
        q = t.quant
        d["quant"] = {"scale": list(q.scale), "zero_point": list(q.zero_point), "bits": q.bits,
                      "signed": q.signed, "axis": q.axis}
    if t.layout:
        d["layout"] = t.layout
    if t.is_const:
        d["sha256"] = t.digest()
    return d


def _json_value(v: Any) -> Any:
    if isinstance(v, DType):
        return str(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v


def to_json(graph: Graph) -> str:
    doc = {
        "name": graph.name,
        "inputs": [_tensor_json(t) for t in graph.inputs],
        "outputs": [_tensor_json(t) for t in graph.outputs],
        "ops": [
            {
                "name": op.name,
                "kind": op.kind,
                "origin": list(op.origin),
                "attrs": {k: _json_value(v) for k, v in sorted(op.attrs.items())},
                "inputs": [None if t is None else t.name for t in graph.inputs_of(op)],
                "outputs": [_tensor_json(t) for t in graph.outputs_of(op)],
            }
            for op in graph.ops()
        ],
    }
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"
