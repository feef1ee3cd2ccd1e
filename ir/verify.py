"""The IR verifier: checks every invariant and reports all problems at once."""
from __future__ import annotations

import networkx as nx

from npuc.errors import GraphVerificationError
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor


def find_problems(graph: Graph) -> list[str]:
    """Every broken invariant, as human-readable lines (empty when the graph is sound)."""
    problems: list[str] = []
    g = graph.nx
    if not nx.is_directed_acyclic_graph(g):
        problems.append("the graph has a cycle: " + " -> ".join(
            getattr(n, "name", "?") for n, *_ in nx.find_cycle(g)[:8]))
        return problems
    input_ids = {id(t) for t in graph.inputs}
    for t in graph.inputs:
        if graph.producer(t) is not None:
            problems.append(f"graph input '{t.name}' is produced by an op")
        if t.is_const:
            problems.append(f"graph input '{t.name}' holds constant data")
    if not graph.outputs:
        problems.append("the graph has no outputs")
    for t in graph.outputs:
        if not graph.has_tensor(t.name) or graph.tensor(t.name) is not t:
            problems.append(f"graph output '{t.name}' is not in the graph")
    for node in g.nodes:
        if isinstance(node, Tensor):
            producers = list(g.predecessors(node))
            if len(producers) > 1:
                problems.append(f"tensor '{node.name}' has {len(producers)} producers")
            if not producers and not node.is_const and id(node) not in input_ids and g.out_degree(node):
                problems.append(f"tensor '{node.name}' is read but nothing produces it (not an input or constant)")
            if producers and node.is_const:
                problems.append(f"constant tensor '{node.name}' is also produced by op '{producers[0].name}'")
            if node.is_const and node.data.dtype != node.dtype.numpy:
                problems.append(f"constant '{node.name}' stores {node.data.dtype} but is typed {node.dtype}")
    for op in graph.ops():
        problems.extend(f"{op.kind} '{op.name}': {p}" for p in _op_problems(graph, op))
    return problems


def _op_problems(graph: Graph, op: Op) -> list[str]:
    if op.kind not in graph.registry:
        return [f"unknown op kind '{op.kind}'"]
    spec = graph.spec(op)
    problems: list[str] = []
    unknown = sorted(set(op.attrs) - set(spec.attrs))
    if unknown:
        problems.append(f"unknown attribute(s) {unknown}")
    ins = graph.inputs_of(op)
    for port, t in enumerate(ins):
        required = port < len(spec.inputs) and not spec.inputs[port].endswith("?")
        if t is None and (required or spec.variadic):
            problems.append(f"required input '{spec.input_name(port)}' (port {port}) is missing")
    n_in = len(ins)
    if n_in < spec.min_inputs:
        problems.append(f"has {n_in} input(s), needs at least {spec.min_inputs}")
    if spec.max_inputs is not None and n_in > spec.max_inputs:
        problems.append(f"has {n_in} inputs, takes at most {spec.max_inputs}")
    outs = graph.outputs_of(op)
    if problems:
        return problems
    try:
        types = spec.infer(op, ins)
    except Exception as exc:  # shape inference reports a user-level problem
        return [f"shape inference failed: {exc}"]
    if len(types) != len(outs):
        problems.append(f"has {len(outs)} outputs, kind infers {len(types)}")
    for t, (shape, dtype) in zip(outs, types):
        if tuple(shape) != t.shape or dtype != t.dtype:
            problems.append(
                f"output '{t.name}' is {t.dtype}[{t.shape}] but inference gives {dtype}[{tuple(shape)}]")
    if spec.verify is not None:
        problems.extend(spec.verify(op, ins))
    return problems


def verify(graph: Graph, where: str = "") -> None:
    """Raise GraphVerificationError listing every problem, if there are any."""
    problems = find_problems(graph)
    if problems:
        raise GraphVerificationError(problems, where)
