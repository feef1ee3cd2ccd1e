"""Continue the float model from replaced activations: only the ops downstream of them run.

For "only layer n quantized" the float model is re-run from layer n's outputs
on, reading every other input from the cached float activations of the sample.
Plans (which ops, when each value is last used) are built once per layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from npuc.backends.reference.executor import ops_feeding
from npuc.backends.reference.kernels import Kernel, kernel_failure, prepared_kernel
from npuc.ir.graph import Graph
from npuc.ir.op import Op


@dataclass(frozen=True)
class SuffixPlan:
    """The ops to re-run for a set of replaced tensors, in graph order."""

    steps: tuple[tuple[Op, tuple[str | None, ...], tuple[str, ...], tuple[str, ...]], ...]  # op, ins, outs, free
    outputs: tuple[str, ...]  # graph outputs the replaced tensors reach


class SuffixRunner:
    """Runs downstream parts of a float graph against cached activations."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._ops = graph.ops()
        self._order = {id(op): i for i, op in enumerate(self._ops)}
        self._outputs = [t.name for t in graph.outputs]
        self._feeds_outputs = ops_feeding(graph, graph.outputs)
        self._consts = {t.name: t.data for t in graph.tensors() if t.is_const}
        # adjacency once: networkx lookups per plan would dominate on large models
        self._io: dict[int, tuple[tuple[str | None, ...], tuple[str, ...]]] = {}
        self._consumers: dict[str, list[Op]] = {}
        # the executor's specialised kernels (weights re-laid-out once), prepared once for every plan
        self._kernels: dict[int, Kernel] = {id(op): prepared_kernel(op, graph.inputs_of(op)) for op in self._ops}
        for op in self._ops:
            ins = tuple(None if t is None else t.name for t in graph.inputs_of(op))
            self._io[id(op)] = (ins, tuple(t.name for t in graph.outputs_of(op)))
            for n in ins:
                if n is not None:
                    self._consumers.setdefault(n, []).append(op)
        self._plans: dict[frozenset[str], SuffixPlan] = {}

    def plan(self, replaced: frozenset[str]) -> SuffixPlan:
        """Plan for tensors `replaced` (cached)."""
        got = self._plans.get(replaced)
        if got is not None:
            return got
        ops: set[int] = set()
        reached: set[str] = set(replaced)
        stack = list(replaced)
        while stack:
            t = stack.pop()
            for op in self._consumers.get(t, ()):
                if id(op) in ops or id(op) not in self._feeds_outputs:
                    continue
                ops.add(id(op))
                for o in self._io[id(op)][1]:
                    reached.add(o)
                    stack.append(o)
        chosen = sorted((op for op in self._ops if id(op) in ops), key=lambda o: self._order[id(o)])
        outputs = tuple(n for n in self._outputs if n in reached)
        produced = set(replaced)
        last_use: dict[str, int] = {}
        io = []
        for i, op in enumerate(chosen):
            ins, outs = self._io[id(op)]
            io.append((op, ins, outs))
            produced.update(outs)
            for n in ins:
                if n is not None:
                    last_use[n] = i
        frees: list[list[str]] = [[] for _ in chosen]
        for n, i in last_use.items():
            if n in produced and n not in outputs:
                frees[i].append(n)
        steps = tuple((op, ins, outs, tuple(frees[i])) for i, (op, ins, outs) in enumerate(io))
        got = self._plans[replaced] = SuffixPlan(steps, outputs)
        return got

    def run(self, replaced: Mapping[str, np.ndarray], cache: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Graph outputs reached from `replaced` ({tensor: new value}); other values come from `cache`."""
        plan = self.plan(frozenset(replaced))
        local: dict[str, np.ndarray] = dict(replaced)
        consts, kernels = self._consts, self._kernels
        with np.errstate(all="ignore"):
            for op, ins_n, outs_n, free in plan.steps:
                ins = []
                for n in ins_n:
                    if n is None:
                        ins.append(None)
                    elif n in local:
                        ins.append(local[n])
                    elif n in consts:
                        ins.append(consts[n])
                    else:
                        ins.append(cache[n])
                try:
                    outs = kernels[id(op)](op, ins)
                except Exception as exc:  # noqa: BLE001 - reported with the op's name and shapes
                    raise kernel_failure(op, ins, exc) from exc
                for n, v in zip(outs_n, outs):
                    local[n] = v
                for n in free:
                    local.pop(n, None)
        return {n: local[n] for n in plan.outputs}
