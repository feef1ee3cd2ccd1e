"""ONNX front-end: read an .onnx file and lower it into npuc's IR.

Steps, each failing with a one-paragraph ModelImportError a user can act on:
read and sanity-check the file; order the nodes; choose the outputs (parse
end) and keep only the nodes they need; report every unsupported operator at
once; fix dynamic input dims from `input_shapes`; decide which values are
needed as IR tensors and which only as import-time values (Reshape targets,
Slice bounds, ...); then walk the nodes once, evaluating static values with
numpy and lowering the rest through the rules in onnx_ops.py.
"""
from __future__ import annotations

import difflib
import heapq
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from npuc.errors import ModelImportError, UnsupportedOpsError
from npuc.frontends.input_shapes import parse_input_shapes  # noqa: F401  (re-exported for callers)
from npuc.frontends.onnx_context import ImportContext
from npuc.frontends.onnx_node import NodeView, array_from_tensor, dtype_from_onnx, onnx_type_name
from npuc.frontends.onnx_ops import LOWERINGS
from npuc.frontends.onnx_static_values import SHAPE_ONLY_OPS, STATIC_EVALUATORS, evaluate
from npuc.frontends.onnx_support import DEFAULT_DOMAINS, find_unsupported
from npuc.frontends.summary import Dim, ModelSummary, ValueSummary, unsupported_message
from npuc.ir.graph import Graph

log = logging.getLogger(__name__)

#: opsets the importer is written and tested for
SUPPORTED_OPSETS = range(11, 22)

ModelSource = str | Path | onnx.ModelProto


# ---------------------------------------------------------------------- reading
def read_onnx(source: ModelSource) -> tuple[onnx.ModelProto, str]:
    """The parsed model and a label for messages; every failure is a ModelImportError."""
    if isinstance(source, onnx.ModelProto):
        _check_is_model(source, "the given ONNX model")
        return source, f"ONNX model '{source.graph.name or 'model'}'"
    path = Path(source)
    label = f"'{path}'"
    if not path.exists():
        raise ModelImportError(f"cannot read model {label}: no such file.")
    if path.is_dir():
        raise ModelImportError(f"cannot read model {label}: it is a directory, not an .onnx file.")
    try:
        head = path.open("rb").read(8)
    except OSError as exc:
        raise ModelImportError(f"cannot read model {label}: {exc.strerror or exc}.") from None
    if not head:
        raise ModelImportError(f"cannot read model {label}: the file is empty (0 bytes), not an ONNX model.")
    if head[4:8] == b"TFL3":
        raise ModelImportError(f"{label} is a TFLite flatbuffer, not an ONNX model; give it a .tflite name.")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, missing external data, ...: never a traceback
        raise ModelImportError(
            f"cannot read model {label}: it is not a valid ONNX file ({type(exc).__name__}: "
            f"{_first_line(exc)}). Check that the file is complete and really an ONNX model "
            "(e.g. not a truncated download or a different format).") from None
    _check_is_model(model, label)
    return model, label


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"


def _check_is_model(model: onnx.ModelProto, label: str) -> None:
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ModelImportError(
            f"cannot read model {label}: the file parsed but contains no ONNX model (no IR version or graph); "
            "it is probably not an ONNX file.")
    if not model.graph.output:
        raise ModelImportError(f"cannot read model {label}: the ONNX graph declares no outputs.")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # real exporters trip the checker for benign reasons: warn, do not reject
        log.warning("onnx checker complains about %s (importing anyway): %s", label, _first_line(exc))


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return int(imp.version)
    return 1


# ---------------------------------------------------------------------- structure
@dataclass
class _Model:
    """A parsed ONNX graph: nodes in topological order with unique names, plus its values."""

    proto: onnx.ModelProto
    label: str
    opset: int
    nodes: list[NodeView]
    initializers: dict[str, onnx.TensorProto]
    inputs: list[onnx.ValueInfoProto]  # real inputs (initializers excluded)
    outputs: list[str]
    producer: dict[str, NodeView]

    def value_names(self) -> list[str]:
        names = [i.name for i in self.inputs] + list(self.initializers)
        names += [o for n in self.nodes for o in n.outputs if o]
        return names


def _parse(model: onnx.ModelProto, label: str) -> _Model:
    g = model.graph
    opset = default_opset(model)
    if opset not in SUPPORTED_OPSETS:
        log.warning("%s uses opset %d; npuc is tested with opsets %d to %d", label, opset,
                    SUPPORTED_OPSETS.start, SUPPORTED_OPSETS.stop - 1)
    inits = {t.name: t for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    taken: set[str] = set()
    views: list[NodeView] = []
    for index, node in enumerate(g.node):
        base = node.name or f"{node.op_type}_{index}"
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        views.append(NodeView(node, name, opset))
    sources = set(inits) | {i.name for i in inputs}
    made: dict[str, str] = {}
    for v in views:
        for o in v.outputs:
            if o and (o in made or o in sources):
                first = made.get(o, "a model input or initializer")
                raise ModelImportError(f"{label} is malformed: value '{o}' is produced twice "
                                       f"(by {first} and by node '{v.name}').")
            if o:
                made[o] = f"node '{v.name}'"
    ordered = _topological(views, sources, label)
    producer = {o: n for n in ordered for o in n.outputs if o}
    return _Model(model, label, opset, ordered, inits, inputs, [o.name for o in g.output], producer)


def _topological(nodes: list[NodeView], available: set[str], label: str) -> list[NodeView]:
    """Nodes in dependency order, file order breaking ties; dangling reads and cycles are errors."""
    made_by = {o: i for i, n in enumerate(nodes) for o in n.outputs if o}
    missing = sorted({(n.name, v) for n in nodes for v in n.inputs if v and v not in available and v not in made_by})
    if missing:
        listing = ", ".join(f"'{node}' reads '{value}'" for node, value in missing[:5])
        raise ModelImportError(f"{label} is malformed: {len(missing)} node input(s) are neither model inputs, "
                               f"initializers nor node outputs ({listing}).")
    waiting = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        deps = {made_by[v] for v in n.inputs if v and v in made_by and v not in available}
        waiting[i] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[NodeView] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for u in users.get(i, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        stuck = [nodes[i].name for i, w in enumerate(waiting) if w > 0][:5]
        raise ModelImportError(f"{label} is malformed: its graph has a cycle (through nodes {stuck}).")
    return order


def _select_outputs(m: _Model, outputs: Sequence[str] | None) -> list[str]:
    if not outputs:
        return list(dict.fromkeys(m.outputs))
    known = set(m.value_names())
    unknown = [o for o in outputs if o not in known]
    if unknown:
        parts = []
        for o in unknown:
            close = difflib.get_close_matches(o, sorted(known), n=3)
            parts.append(f"'{o}'" + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""))
        raise ModelImportError(
            f"{m.label} has no tensor named {', '.join(parts)}. Outputs are ONNX value names; "
            f"the model's own outputs are {m.outputs}.")
    return list(dict.fromkeys(outputs))


def _needed_nodes(m: _Model, outputs: Sequence[str]) -> list[NodeView]:
    """The nodes the chosen outputs depend on, in topological order."""
    needed: set[str] = set()
    stack = list(outputs)
    seen_values: set[str] = set()
    while stack:
        v = stack.pop()
        if v in seen_values:
            continue
        seen_values.add(v)
        node = m.producer.get(v)
        if node is not None and node.name not in needed:
            needed.add(node.name)
            stack.extend(i for i in node.inputs if i)
    return [n for n in m.nodes if n.name in needed]


def _dynamic_values(m: _Model, nodes: Sequence[NodeView]) -> set[str]:
    """Values that depend on a model input at run time (Shape/Size outputs do not)."""
    dynamic = {i.name for i in m.inputs}
    for n in nodes:
        if n.op_type not in SHAPE_ONLY_OPS and any(i in dynamic for i in n.inputs if i):
            dynamic.update(o for o in n.outputs if o)
    return dynamic


# ---------------------------------------------------------------------- input shapes
def declared_dims(vi: onnx.ValueInfoProto) -> tuple[Dim, ...] | None:
    """Dims as written in the file: ints, symbolic names, '?' for unknown; None for unknown rank."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims: list[Dim] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value) if d.dim_value > 0 else "?")
        else:
            dims.append(d.dim_param or "?")
    return tuple(dims)


def _placeholder(dims: tuple[Dim, ...] | None) -> str:
    if dims is None:
        return "D0,D1,..."
    letters = ("N", "C", "H", "W") if len(dims) == 4 else tuple(f"D{i}" for i in range(len(dims)))
    return ",".join(str(d) if isinstance(d, int) else ("1" if i == 0 else letters[i]) for i, d in enumerate(dims))


def _fixed_input_shapes(m: _Model, input_shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    given = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    names = [i.name for i in m.inputs]
    unknown = [k for k in given if k not in names]
    if unknown:
        hints = {k: difflib.get_close_matches(k, names, n=2) for k in unknown}
        listing = ", ".join(f"'{k}'" + (f" (did you mean '{hints[k][0]}'?)" if hints[k] else "") for k in unknown)
        raise ModelImportError(f"--input-shape names {listing}, but the model's inputs are {names}.")
    shapes: dict[str, tuple[int, ...]] = {}
    problems: list[str] = []
    for vi in m.inputs:
        dims = declared_dims(vi)
        declared = f"{vi.name}: {_dims_text(dims)}"
        if vi.name in given:
            shape = given[vi.name]
            if any(d <= 0 for d in shape):
                problems.append(f"the shape given for input '{vi.name}' {list(shape)} has non-positive dims")
            elif dims is not None and len(dims) != len(shape):
                problems.append(f"input '{vi.name}' has rank {len(dims)} ({declared}) but the given shape "
                                f"{list(shape)} has rank {len(shape)}")
            elif dims is not None and any(isinstance(d, int) and d != s for d, s in zip(dims, shape)):
                problems.append(f"the shape given for input '{vi.name}' {list(shape)} contradicts its static dims "
                                f"({declared})")
            else:
                shapes[vi.name] = shape
        elif dims is None or not all(isinstance(d, int) for d in dims):
            problems.append(f"input '{vi.name}' has dynamic dimensions ({declared}); fix them with "
                            f"--input-shape {vi.name}={_placeholder(dims)}")
        else:
            shapes[vi.name] = tuple(int(d) for d in dims)
    if problems:
        raise ModelImportError(f"{m.label}: " + "; ".join(problems) + ". npuc compiles static shapes only.")
    return shapes


def _dims_text(dims: tuple[Dim, ...] | None) -> str:
    return "[unknown rank]" if dims is None else "[" + ", ".join(str(d) for d in dims) + "]"


# ---------------------------------------------------------------------- import
def load_onnx(
    path_or_model: ModelSource,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
) -> Graph:
    """Import an ONNX model (opsets 11-21) into an IR Graph with static shapes.

    input_shapes: fixes dynamic input dims ({'x': (1, 3, 48, 192)}).
    outputs: ONNX value names to keep as outputs (parse end); what only feeds
    other outputs is not imported.
    Raises ModelImportError (unreadable model, unfixed dims, ...) or
    UnsupportedOpsError (listing every unsupported operator) before building anything.
    """
    model, label = read_onnx(path_or_model)
    m = _parse(model, label)
    keep = _select_outputs(m, outputs)
    nodes = _needed_nodes(m, keep)
    dynamic = _dynamic_values(m, nodes)
    unsupported = find_unsupported(nodes, dynamic)
    if unsupported:
        raise UnsupportedOpsError(unsupported_message(label, unsupported))
    shapes = _fixed_input_shapes(m, input_shapes)
    return _Importer(m, keep, nodes, dynamic, shapes, path_or_model).run()


class _Importer:
    """One import: demand analysis, then a single forward walk over the needed nodes."""

    def __init__(self, m: _Model, outputs: list[str], nodes: list[NodeView], dynamic: set[str],
                 shapes: dict[str, tuple[int, ...]], source: ModelSource) -> None:
        self.m, self.outputs, self.nodes, self.shapes = m, outputs, nodes, shapes
        name = m.proto.graph.name or (Path(source).stem if not isinstance(source, onnx.ModelProto) else "model")
        self.graph = Graph(name)
        self.ctx = ImportContext(self.graph, m.opset, m.value_names(), [n.name for n in m.nodes])
        self.ctx.dynamic = dynamic
        self.source = source

    def run(self) -> Graph:
        lowered, evaluated = self._demand()
        self._add_inputs()
        used = {i for n in self.nodes for i in n.inputs if i} | set(self.outputs)
        for name, proto in self.m.initializers.items():
            if name in used:
                self.ctx.static[name] = array_from_tensor(proto, f"{self.m.label}: initializer '{name}'")
        for node in self.nodes:
            for o in node.outputs:
                if o:
                    self.ctx.producers[o] = node.describe()
            if node.name in evaluated:
                self._evaluate(node)
            if node.name in lowered:
                self._lower(node)
        self.graph.outputs = [self.ctx.tensor(o) for o in self.outputs]
        self._remove_dead_ops()
        self._set_meta()
        log.info("imported %s: %d ops, %d tensors", self.m.label, len(self.graph), len(self.graph.tensors()))
        return self.graph

    def _lower(self, node: NodeView) -> None:
        try:
            LOWERINGS[node.op_type].fn(self.ctx, node)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:
            # inconsistent attributes or operands the rule cannot make sense of: name the node, no traceback
            log.debug("lowering %s failed", node.describe(), exc_info=True)
            shapes = {i: list(self.ctx.shape_of(i)) for i in node.inputs if i and
                      (i in self.ctx.values or i in self.ctx.static)}
            raise node.error(f"cannot be imported: its attributes or inputs {shapes} are inconsistent "
                             f"({type(exc).__name__}: {exc})") from None

    def _demand(self) -> tuple[set[str], set[str]]:
        """Which nodes become IR ops and which are evaluated at import (walking back from the outputs)."""
        need_tensor = set(self.outputs)
        need_static: set[str] = set()
        lowered: set[str] = set()
        evaluated: set[str] = set()
        for node in reversed(self.nodes):
            outs = [o for o in node.outputs if o]
            as_tensor = any(o in need_tensor for o in outs)
            as_static = any(o in need_static for o in outs)
            if not (as_tensor or as_static):
                continue
            op = node.op_type
            if op in SHAPE_ONLY_OPS:
                evaluated.add(node.name)
                need_tensor.add(node.inputs[0])  # its shape is read from the IR tensor
                continue
            dynamic = any(i in self.ctx.dynamic for i in node.inputs if i)
            rule = LOWERINGS.get(op)
            if as_tensor and rule is not None:
                lowered.add(node.name)
                for port, name in enumerate(node.inputs):
                    if not name or port in rule.ignored_ports:
                        continue
                    (need_static if port in rule.static_ports else need_tensor).add(name)
            if (as_static or rule is None) and not dynamic:
                evaluated.add(node.name)
                need_static.update(i for i in node.inputs if i)
        return lowered, evaluated

    def _add_inputs(self) -> None:
        for vi in self.m.inputs:
            if vi.name not in self.shapes:
                continue
            shape = self.shapes[vi.name]
            dtype = dtype_from_onnx(vi.type.tensor_type.elem_type, f"{self.m.label}: input '{vi.name}'")
            t = self.graph.add_input(vi.name, dtype, shape, layout="NCHW" if len(shape) == 4 else None)
            self.ctx.values[vi.name] = t

    def _evaluate(self, node: NodeView) -> None:
        ctx = self.ctx
        if node.op_type not in STATIC_EVALUATORS:
            reason = f"it is computed by {node.describe()}, which npuc does not evaluate at import time"
            ctx.not_static.update({o: reason for o in node.outputs if o})
            return
        args: list[np.ndarray | None] = []
        for name in node.inputs:
            if not name:
                args.append(None)
            elif name in ctx.static:
                args.append(ctx.static[name])
            elif node.op_type in SHAPE_ONLY_OPS and name in ctx.values:
                t = ctx.values[name]
                args.append(np.broadcast_to(np.zeros((), t.dtype.numpy), t.shape))
            else:
                reason = ctx.not_static.get(name) or f"it depends on the model's inputs (via {node.describe()})"
                ctx.not_static.update({o: reason for o in node.outputs if o})
                return
        for name, value in zip(node.outputs, evaluate(node, args)):
            if name:
                ctx.static[name] = value

    def _remove_dead_ops(self) -> None:
        """Drop ops whose results nobody reads (e.g. activations only measured by a folded Shape)."""
        g = self.graph
        for op in reversed(g.ops()):
            if not any(g.consumers(t) or g.is_output(t) for t in g.outputs_of(op)):
                g.remove_op(op)
        g.remove_unused_tensors()

    def _set_meta(self) -> None:
        proto = self.m.proto
        self.graph.meta.update({
            "source_format": "onnx",
            "source_file": Path(self.source).name if not isinstance(self.source, onnx.ModelProto) else "",
            "opset": self.m.opset,
            "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
            "source_input_shapes": {vi.name: list(declared_dims(vi) or ()) for vi in self.m.inputs},
        })


# ---------------------------------------------------------------------- inspection
def inspect_onnx(path_or_model: ModelSource) -> ModelSummary:
    """Declared inputs/outputs, op histogram and unsupported ops, without importing (for `npuc check`)."""
    model, label = read_onnx(path_or_model)
    m = _parse(model, label)
    nodes = _needed_nodes(m, m.outputs)
    declared_out = {vi.name: vi for vi in model.graph.output}

    def summary(vi: onnx.ValueInfoProto) -> ValueSummary:
        return ValueSummary(vi.name, onnx_type_name(vi.type.tensor_type.elem_type), declared_dims(vi))

    hist = Counter(n.op_type if n.proto.domain in DEFAULT_DOMAINS else f"{n.proto.domain}:{n.op_type}"
                   for n in m.nodes)
    return ModelSummary(
        path=label,
        format="onnx",
        details={"opset": m.opset, "producer": f"{model.producer_name} {model.producer_version}".strip(),
                 "ir_version": model.ir_version, "nodes": len(m.nodes)},
        inputs=[summary(vi) for vi in m.inputs],
        outputs=[summary(declared_out[o]) for o in m.outputs],
        op_histogram=dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        unsupported=find_unsupported(nodes, _dynamic_values(m, nodes)),
    )
