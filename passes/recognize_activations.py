"""recognize_activations: turn exported activation idioms into single ops.

* x * sigmoid(x)                                   -> SiLU(x)
* x * clip(x + 3, 0, 6) / 6, (x * relu6(x + 3)) * (1/6), x * (relu6(x + 3) / 6),
  x * HardSigmoid(x, alpha=1/6, beta=0.5)          -> HardSwish(x)
* clip(x + 3, 0, 6) / 6 on its own                 -> HardSigmoid(x, alpha=1/6, beta=0.5)
* clip(x * a + b, 0, 1)                            -> HardSigmoid(x, alpha=a, beta=b)

Operands of Add/Mul may come in either order; constants may be any tensor of
equal values that does not enlarge the shape. Every intermediate value must
have no reader outside the pattern.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.rewrite import is_close, only_read_by, producer_of, replace_ops, scalar_value, sole_reader


class Match(NamedTuple):
    x: Tensor
    ops: list[Op]  # in data-flow order; the last produces the result


def _operand_pairs(graph: Graph, op: Op):
    ins = graph.inputs_of(op)
    if len(ins) != 2 or ins[0] is None or ins[1] is None:
        return []
    a, b = ins
    return [(a, b), (b, a)] if op.kind in ("Add", "Mul") else [(a, b)]


def _relu6_plus3(graph: Graph, t: Tensor) -> Match | None:
    """t = clip(x + 3, 0, 6)"""
    clip = producer_of(graph, t, "Clip")
    if clip is None or not (is_close(clip.attrs["min"], 0.0) and is_close(clip.attrs["max"], 6.0)):
        return None
    add = producer_of(graph, graph.inputs_of(clip)[0], "Add")
    if add is None:
        return None
    for x, c in _operand_pairs(graph, add):
        if is_close(scalar_value(c), 3.0) and not x.is_const:
            return Match(x, [add, clip])
    return None


def _hard_sigmoid_sixth(graph: Graph, t: Tensor) -> Match | None:
    """t = hard_sigmoid(x) with slope 1/6: HardSigmoid(x, 1/6, 0.5), relu6(x + 3) / 6 or relu6(x + 3) * (1/6)."""
    op = graph.producer(t)
    if op is None:
        return None
    if op.kind == "HardSigmoid":
        if is_close(op.attrs["alpha"], 1 / 6) and is_close(op.attrs["beta"], 0.5):
            return Match(graph.inputs_of(op)[0], [op])
        return None
    for a, c in _operand_pairs(graph, op) if op.kind in ("Div", "Mul") else []:
        k = scalar_value(c)
        if (op.kind == "Div" and is_close(k, 6.0)) or (op.kind == "Mul" and is_close(k, 1 / 6)):
            m = _relu6_plus3(graph, a)
            if m is not None:
                return Match(m.x, m.ops + [op])
    return None


def _x_times_relu6(graph: Graph, t: Tensor) -> Match | None:
    """t = x * relu6(x + 3)"""
    mul = producer_of(graph, t, "Mul")
    if mul is None:
        return None
    for x, r in _operand_pairs(graph, mul):
        m = _relu6_plus3(graph, r)
        if m is not None and m.x is x:
            return Match(x, m.ops + [mul])
    return None


def match_hard_swish(graph: Graph, op: Op) -> Match | None:
    if op.kind not in ("Mul", "Div"):
        return None
    for a, b in _operand_pairs(graph, op):
        if op.kind == "Mul":
            m = _hard_sigmoid_sixth(graph, b)
            if m is not None and m.x is a:
                return Match(a, m.ops + [op])
        k = scalar_value(b)
        if (op.kind == "Div" and is_close(k, 6.0)) or (op.kind == "Mul" and is_close(k, 1 / 6)):
            m = _x_times_relu6(graph, a)
            if m is not None:
                return Match(m.x, m.ops + [op])
    return None


def match_silu(graph: Graph, op: Op) -> Match | None:
    if op.kind != "Mul":
        return None
    for x, s in _operand_pairs(graph, op):
        sig = producer_of(graph, s, "Sigmoid")
        if sig is not None and graph.inputs_of(sig)[0] is x:
            return Match(x, [sig, op])
    return None


def match_hard_sigmoid(graph: Graph, op: Op) -> tuple[Match, float, float] | None:
    if op.kind in ("Div", "Mul"):
        m = _hard_sigmoid_sixth(graph, graph.outputs_of(op)[0])
        return (m, 1 / 6, 0.5) if m is not None and m.ops[-1] is op else None
    if op.kind != "Clip" or not (is_close(op.attrs["min"], 0.0) and is_close(op.attrs["max"], 1.0)):
        return None
    add = producer_of(graph, graph.inputs_of(op)[0], "Add")
    if add is None:
        return None
    for s, bt in _operand_pairs(graph, add):
        beta = scalar_value(bt)
        mul = producer_of(graph, s, "Mul")
        if beta is None or mul is None:
            continue
        for x, at in _operand_pairs(graph, mul):
            alpha = scalar_value(at)
            if alpha is not None and not x.is_const:
                return Match(x, [mul, add, op]), alpha, beta
    return None


def _valid(graph: Graph, m: Match) -> bool:
    """Every value inside the pattern stays inside it, and nothing broadcasts past x's shape."""
    if not m.x.dtype.is_float:
        return False
    for op in m.ops:
        out = graph.outputs_of(op)
        if len(out) != 1 or out[0].shape != m.x.shape:
            return False
        if op is not m.ops[-1] and not only_read_by(graph, out[0], m.ops):
            return False
    return True


@dataclass(frozen=True)
class RecognizeActivations(Pass):
    """Replace exported activation idioms by single ops: x*sigmoid(x) -> SiLU, the hard-swish
    forms (x*clip(x+3,0,6)/6, x*HardSigmoid(x) with slope 1/6, ...) -> HardSwish, and spelled-out
    hard-sigmoids -> HardSigmoid."""

    name: ClassVar[str] = "recognize_activations"
    silu: bool = option(True, "recognize x * sigmoid(x)")
    hard_swish: bool = option(True, "recognize the hard-swish forms")
    hard_sigmoid: bool = option(True, "recognize spelled-out hard-sigmoids")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        counts = {"silu": 0, "hard_swish": 0, "hard_sigmoid": 0}
        removed: set[int] = set()
        for op in graph.ops():
            if id(op) in removed:
                continue
            found = None
            if self.hard_swish and (m := match_hard_swish(graph, op)) and _valid(graph, m):
                found = ("hard_swish", m, "HardSwish", {})
            elif self.silu and (m := match_silu(graph, op)) and _valid(graph, m):
                found = ("silu", m, "SiLU", {})
            elif (self.hard_sigmoid and (hs := match_hard_sigmoid(graph, op)) and _valid(graph, hs[0])
                  and not self._part_of_hard_swish(graph, op)):
                found = ("hard_sigmoid", hs[0], "HardSigmoid", {"alpha": hs[1], "beta": hs[2]})
            if found is None:
                continue
            key, m, kind, attrs = found
            removed.update(id(o) for o in m.ops)
            replace_ops(graph, m.ops, kind, [m.x], attrs)
            counts[key] += 1
        if any(counts.values()):
            graph.remove_unused_tensors()
        return PassResult.from_counts(**counts)

    def _part_of_hard_swish(self, graph: Graph, op: Op) -> bool:
        """A hard-sigmoid feeding x * hsig(x) is left for the hard-swish match at its reader."""
        if not self.hard_swish:
            return False
        reader = sole_reader(graph, graph.outputs_of(op)[0])
        m = match_hard_swish(graph, reader) if reader is not None else None
        return m is not None and _valid(graph, m)
