"""Helpers for the quantize / insert_dtype_conversions / quantized executor tests."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pytest

from npuc.backends.reference.executor import Executor
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.calibration.statistics import ObserverConfig, collect_statistics
from npuc.ir.graph import Graph
from npuc.ir.verify import find_problems
from npuc.passes.base import PassContext
from npuc.passes.calibrate import CalibrationSummary
from npuc.passes.insert_dtype_conversions import InsertDtypeConversions
from npuc.passes.quantize import CONFIG_KEY, Quantize
from npuc.quantization.config import QuantConfig

from npuc_testing import snr_db  # noqa: F401 - re-exported to the tests of this folder


def calibrate(graph: Graph, feeds: Iterable[dict[str, np.ndarray]], method: str = "minmax") -> PassContext:
    """Attach observers with the real calibration statistics code; returns a ctx ready for quantize."""
    items = [(f"item{i}", f) for i, f in enumerate(feeds)]
    collector = collect_statistics(graph, items, ObserverConfig(method, 99.99, False), batch_size=4)
    n = collector.attach(graph)
    ctx = PassContext()
    ctx.set("calibration", CalibrationSummary(method, 99.99, False, len(items), n, "test", 0))
    return ctx


def quantize_graph(graph: Graph, feeds: list[dict[str, np.ndarray]], config: QuantConfig | None = None, method: str = "minmax",
                   **options) -> Graph:
    """float graph -> calibrated, quantized graph with conversions (a copy; verified)."""
    q = graph.copy()
    ctx = calibrate(q, feeds, method)
    if config is not None:
        ctx.set(CONFIG_KEY, config)
    for p in (Quantize(**options), InsertDtypeConversions()):
        for key in p.requires:
            assert ctx.has(key), key
        p.run(q, ctx)
        for key in p.ensures:
            ctx.set(key)
        problems = find_problems(q)
        assert not problems, problems
    return q


def compare(graph: Graph, qgraph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    """SNR (dB) of each output of the quantized graph against the float graph."""
    ref = Executor(graph).run(feeds)
    out = QuantizedExecutor(qgraph).run(feeds)
    return {name: snr_db(ref[name], out[name]) for name in ref}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


GraphBuilder = Callable[..., Graph]
