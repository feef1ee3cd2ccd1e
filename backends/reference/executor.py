"""The float reference executor: runs any IR graph with numpy, the oracle later stages are checked against.

`Executor(graph)` plans once per set of requested outputs: which ops are needed
(in the graph's deterministic topological order), which kernel each uses, where
every tensor's value lives (an integer slot), and after which step each
intermediate is last used so it is released at once. Peak memory is therefore
the live set, not every activation of the model. When a step owns its first
input exclusively (last use, produced by this run, no other reference to the
array, same shape and dtype as the output), an elementwise kernel writes its
result in place.

Threads: during a run BLAS is single-threaded in this thread (multi-threaded
OpenBLAS syncs its threads several times per call: on small matmuls that costs
more than the arithmetic, and on shared cores every sync waits a scheduler
slice); the thread count the environment configured for BLAS is used instead
by the big conv kernels, which split an op into independent chunks shared with
worker threads (parallel.py).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from npuc.backends.reference import blas_threads, parallel
from npuc.backends.reference.kernels import (
    FLOAT_KERNELS,
    INPLACE_KERNELS,
    Kernel,
    describe_inputs,
    kernel_failure,
    prepared_kernel,
)
from npuc.errors import ExecutionError
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

OnTensor = Callable[[Tensor, np.ndarray], None]


def ops_feeding(graph: Graph, tensors: Sequence[Tensor]) -> set[int]:
    """ids of the ops `tensors` depend on: their producers, transitively."""
    needed: set[int] = set()
    stack = list(tensors)
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        op = graph.producer(t)
        if op is not None and id(op) not in needed:
            needed.add(id(op))
            stack.extend(i for i in graph.inputs_of(op) if i is not None)
    return needed


@dataclass(frozen=True)
class _Step:
    """One op of a plan."""

    op: Op
    kernel: Kernel
    inplace: Kernel | None  # in-place variant, only set when input 0 may be overwritten at this step
    ins: tuple[int | None, ...]  # slot per input port (None = absent optional input)
    outs: tuple[int, ...]
    out_tensors: tuple[Tensor, ...]
    out_types: tuple[tuple[tuple[int, ...], np.dtype], ...]
    free_after: tuple[int, ...]  # slots whose last use is this step


@dataclass(frozen=True)
class _Plan:
    steps: tuple[_Step, ...]
    outputs: tuple[Tensor, ...]
    free_inputs: tuple[int, ...]  # graph inputs no step needs: released right after on_tensor


class Executor:
    """Runs an IR graph in float (each tensor in its own dtype) with the registered reference kernels."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._ops = graph.ops()
        tensors = graph.tensors()
        self._slot: dict[str, int] = {t.name: i for i, t in enumerate(tensors)}
        self._tensors = tensors
        self._consts: list[tuple[int, np.ndarray]] = [(self._slot[t.name], t.data) for t in tensors if t.is_const]
        self._const_slots = frozenset(s for s, _ in self._consts)
        self._input_slots = {self._slot[t.name]: t for t in graph.inputs}
        missing = sorted({op.kind for op in self._ops if op.kind not in FLOAT_KERNELS})
        if missing:
            bad = [op for op in self._ops if op.kind in missing]
            raise ExecutionError(
                "no float reference kernel for op kind(s) " + ", ".join(f"'{k}'" for k in missing)
                + " used by op(s) " + ", ".join(f"'{op.name}' ({op.kind})" for op in bad[:10])
                + (" ..." if len(bad) > 10 else "")
            )
        self._plans: dict[tuple[str, ...], _Plan] = {}

    # ------------------------------------------------------------------ plan
    def _plan(self, outputs: Sequence[str] | None) -> _Plan:
        key = tuple(t.name for t in self.graph.outputs) if outputs is None else tuple(outputs)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._build_plan(key)
        return plan

    def _build_plan(self, names: tuple[str, ...]) -> _Plan:
        graph = self.graph
        unknown = [n for n in names if n not in self._slot]
        if unknown:
            raise ExecutionError(f"requested output(s) {unknown} are not tensors of graph '{graph.name}'")
        wanted = [graph.tensor(n) for n in names]
        # ops needed for the requested outputs, in graph order
        needed = ops_feeding(graph, wanted)
        ops = [op for op in self._ops if id(op) in needed]
        keep = {self._slot[n] for n in names} | self._const_slots
        last_use: dict[int, int] = {}
        inputs_per_op = []
        for i, op in enumerate(ops):
            ins = tuple(None if t is None else self._slot[t.name] for t in graph.inputs_of(op))
            inputs_per_op.append(ins)
            for s in ins:
                if s is not None:
                    last_use[s] = i
        frees: list[list[int]] = [[] for _ in ops]
        steps = []
        for i, op in enumerate(ops):
            out_tensors = tuple(graph.outputs_of(op))
            outs = tuple(self._slot[t.name] for t in out_tensors)
            ins = inputs_per_op[i]
            for s in set(s for s in ins if s is not None):
                if last_use[s] == i and s not in keep:
                    frees[i].append(s)
            for s in outs:  # produced but never read again and not requested
                if s not in last_use and s not in keep:
                    frees[i].append(s)
            inplace = INPLACE_KERNELS.get(op.kind)
            first = ins[0] if ins else None
            if inplace is not None and not (
                first is not None
                and first in frees[i]
                and first not in self._input_slots
                and ins.count(first) == 1
                and len(out_tensors) == 1
                and self._tensors[first].shape == out_tensors[0].shape
                and self._tensors[first].dtype == out_tensors[0].dtype
            ):
                inplace = None
            steps.append(_Step(
                op=op,
                kernel=prepared_kernel(op, graph.inputs_of(op)),
                inplace=inplace,
                ins=ins,
                outs=outs,
                out_tensors=out_tensors,
                out_types=tuple((t.shape, t.dtype.numpy) for t in out_tensors),
                free_after=tuple(sorted(frees[i])),
            ))
        free_inputs = tuple(s for s in self._input_slots if s not in last_use and s not in keep)
        return _Plan(tuple(steps), tuple(wanted), free_inputs)

    # ------------------------------------------------------------------- run
    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> list[tuple[int, np.ndarray]]:
        graph = self.graph
        names = {t.name for t in graph.inputs}
        unknown = sorted(set(feeds) - names)
        if unknown:
            raise ExecutionError(
                f"unknown input name(s) {unknown} for graph '{graph.name}'; its inputs are "
                + ", ".join(f"'{t.name}' {t.type_str()}" for t in graph.inputs)
            )
        missing = [t for t in graph.inputs if t.name not in feeds]
        if missing:
            raise ExecutionError(
                "missing input(s): " + ", ".join(f"'{t.name}' {t.type_str()}" for t in missing)
            )
        checked = []
        for t in graph.inputs:
            value = feeds[t.name]
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            if tuple(value.shape) != t.shape:
                raise ExecutionError(
                    f"input '{t.name}' has shape {tuple(value.shape)}, the graph expects {t.shape}"
                )
            if value.dtype != t.dtype.numpy:
                raise ExecutionError(
                    f"input '{t.name}' has dtype {value.dtype}, the graph expects {t.dtype.numpy} "
                    f"(convert with .astype(np.{t.dtype.numpy}))"
                )
            checked.append((self._slot[t.name], value))
        return checked

    def run(
        self,
        feeds: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
        on_tensor: OnTensor | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the graph on `feeds` (one array per graph input).

        outputs: tensor names to return (default: the graph outputs); only the
        ops they need run, and every other intermediate is released after its
        last use. on_tensor(tensor, value) is called once for every fed graph
        input and every tensor an op computes (not for constants); the value is
        read-only by convention, and a callback that keeps a reference gets a
        stable array (the executor never overwrites an array someone else holds).
        """
        plan = self._plan(outputs)
        values: list[np.ndarray | None] = [None] * len(self._tensors)
        for slot, data in self._consts:
            values[slot] = data
        for slot, value in self._check_feeds(feeds):
            values[slot] = value
            if on_tensor is not None:
                on_tensor(self._input_slots[slot], value)
        for slot in plan.free_inputs:
            values[slot] = None
        set_threads = blas_threads.blas_threads_control()
        # BLAS we cannot control keeps its own threading: no chunk workers on top of it
        configured = blas_threads.configured_blas_threads() or 1
        if set_threads is not None:
            set_threads(1)
        try:
            with parallel.threads(configured):
                self._run_steps(plan, values, on_tensor)
        finally:
            if set_threads is not None:
                set_threads(configured)
        return {t.name: values[self._slot[t.name]] for t in plan.outputs}

    def _run_steps(self, plan: _Plan, values: list, on_tensor: OnTensor | None) -> None:
        getrefcount = sys.getrefcount
        with np.errstate(all="ignore"):
            for step in plan.steps:
                ins = [None if s is None else values[s] for s in step.ins]
                fn = step.kernel
                if step.inplace is not None:
                    first = ins[0]
                    # references: values[], ins, `first`, getrefcount's argument; anything more
                    # (a view, a caller's copy, an alias) forbids overwriting.
                    if (first.base is None and first.flags.writeable
                            and getrefcount(first) <= _EXCLUSIVE_REFS):
                        fn = step.inplace
                    del first
                try:
                    outs = fn(step.op, ins)
                except Exception as exc:  # noqa: BLE001 - reported with the op's name, kind, origin, shapes
                    raise kernel_failure(step.op, ins, exc) from exc
                if len(outs) != len(step.outs):
                    raise _bad_output_count(step, outs)
                for slot, value, tensor, (shape, dtype) in zip(step.outs, outs, step.out_tensors, step.out_types):
                    if getattr(value, "shape", None) != shape or getattr(value, "dtype", None) != dtype:
                        raise _bad_output(step, tensor, value, ins)
                    values[slot] = value
                    if on_tensor is not None:
                        on_tensor(tensor, value)
                outs = value = None  # drop these references so the next step may own the array
                for s in step.free_after:
                    values[s] = None


def _bad_output_count(step: _Step, outs: Sequence) -> ExecutionError:
    op = step.op
    return ExecutionError(
        f"kernel of {op.kind} op '{op.name}' returned {len(outs)} output(s), the op has {len(step.outs)}"
    )


def _bad_output(step: _Step, tensor: Tensor, value, ins: list) -> ExecutionError:
    op = step.op
    shape, dtype = tensor.shape, tensor.dtype.numpy
    got = f"{getattr(value, 'dtype', type(value).__name__)}{list(np.shape(value))}"
    return ExecutionError(
        f"kernel of {op.kind} op '{op.name}' produced {got} for tensor '{tensor.name}', "
        f"the graph declares {dtype}{list(shape)} (inputs {describe_inputs(ins)})"
    )


def _exclusive_refs() -> int:
    """getrefcount of an array referenced only by the executor's list, the inputs list and one local."""
    values = [np.empty(1)]
    ins = [values[0]]
    first = ins[0]
    return sys.getrefcount(first)


_EXCLUSIVE_REFS = _exclusive_refs()


def run_graph(
    graph: Graph,
    feeds: Mapping[str, np.ndarray],
    outputs: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run `graph` once on `feeds` and return the requested tensors (default: the graph outputs)."""
    return Executor(graph).run(feeds, outputs)
