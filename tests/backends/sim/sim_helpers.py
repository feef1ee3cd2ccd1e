"""Shared helpers of the simulator tests: float graph -> quantized graph -> binary -> simulator."""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.lower import lower
from npuc.backends.npu.sim import Simulator
from npuc.backends.reference.quantized_executor import run_quantized
from npuc.calibration.statistics import ObserverConfig, collect_statistics
from npuc.ir.graph import Graph
from npuc.ir.verify import find_problems
from npuc.passes.base import PassContext
from npuc.passes.calibrate import CalibrationSummary
from npuc.passes.insert_dtype_conversions import InsertDtypeConversions
from npuc.passes.quantize import CONFIG_KEY, Quantize
from npuc.quantization.config import QuantConfig


def quantize_graph(graph: Graph, feeds: Iterable[Mapping[str, np.ndarray]], config: QuantConfig | None = None,
                   **options) -> Graph:
    """Calibrate (real statistics code, minmax), quantize and insert conversions on a copy of `graph`."""
    q = graph.copy()
    items = [(f"item{i}", dict(f)) for i, f in enumerate(feeds)]
    collector = collect_statistics(q, items, ObserverConfig("minmax", 99.99, False), batch_size=4)
    n = collector.attach(q)
    ctx = PassContext()
    ctx.set("calibration", CalibrationSummary("minmax", 99.99, False, len(items), n, "test", 0))
    if config is not None:
        ctx.set(CONFIG_KEY, config)
    for p in (Quantize(**options), InsertDtypeConversions()):
        p.run(q, ctx)
        for key in p.ensures:
            ctx.set(key)
    problems = find_problems(q)
    assert not problems, problems
    return q


def binary_of(qgraph: Graph) -> bytes:
    return emit(lower(qgraph))


def assert_bit_exact(qgraph: Graph, feeds_list: Iterable[Mapping[str, np.ndarray]]) -> Simulator:
    """lower -> emit -> decode -> simulate == run_quantized (integer codes, np.array_equal) on every feed."""
    sim = Simulator(decode(binary_of(qgraph), "test.npub"))
    for feeds in feeds_list:
        ref = run_quantized(qgraph, feeds, dequantize=False)
        got = sim.run(feeds)
        assert ref.keys() == got.keys()
        for name in ref:
            r, g = np.asarray(ref[name]), got[name]
            assert r.dtype == g.dtype and r.shape == g.shape, (name, r.dtype, g.dtype, r.shape, g.shape)
            if not np.array_equal(r, g, equal_nan=g.dtype.kind == "f"):
                bad = np.flatnonzero(r.reshape(-1) != g.reshape(-1))
                raise AssertionError(f"output {name}: {bad.size} of {r.size} differ, first at {bad[:5]}: "
                                     f"ref {r.reshape(-1)[bad[:5]]} sim {g.reshape(-1)[bad[:5]]}")
    return sim
