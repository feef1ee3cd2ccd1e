"""Helpers for pass tests: build small graphs, run one pass under the PassManager, compare outputs."""
from __future__ import annotations

import numpy as np


from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult
from npuc.passes.manager import PassManager

F32 = DType.FLOAT32


def kinds(graph: Graph) -> list[str]:
    return [op.kind for op in graph.ops()]


def random_feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.standard_normal(t.shape).astype(t.dtype.numpy) * 3 for t in graph.inputs}


def run_outputs(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from npuc.backends.reference.executor import run_graph

    res = run_graph(graph, feeds)
    return [res[t.name] for t in graph.outputs]


def apply(graph: Graph, pass_: Pass, ctx: PassContext | None = None) -> PassResult:
    """Run one pass through the PassManager (so the verifier checks the result)."""
    return PassManager([pass_]).run(graph, ctx).records[0].result


def assert_preserves(graph: Graph, pass_: Pass, rtol: float = 1e-5, seeds=(0, 1, 2)) -> PassResult:
    """Run `pass_` on `graph` in place and check the outputs on random inputs did not change."""
    before = graph.copy()
    names = [t.name for t in graph.outputs]
    res = apply(graph, pass_)
    assert [t.name for t in graph.outputs] == names, "graph output names changed"
    for seed in seeds:
        feeds = random_feeds(before, seed)
        for a, b in zip(run_outputs(before, feeds), run_outputs(graph, feeds)):
            scale = max(float(np.max(np.abs(a))), 1e-6)
            assert a.shape == b.shape
            assert float(np.max(np.abs(a.astype(np.float64) - b))) <= rtol * scale
    return res





