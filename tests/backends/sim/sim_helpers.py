"""Shared helpers of the simulator tests: float graph -> quantized graph -> binary -> simulator."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from npuc.backends.npu.decode import decode
from npuc.backends.npu.emit import emit
from npuc.backends.npu.lower import lower
from npuc.backends.npu.sim import Simulator
from npuc.backends.reference.quantized_executor import run_quantized
from npuc.ir.graph import Graph
from npuc.quantization.config import QuantConfig

sys.path.insert(0, str(Path(__file__).parents[2] / "quantization_passes"))
from quant_testing import quantize_graph as _quantize_graph  # noqa: E402


def quantize_graph(graph: Graph, feeds: Iterable[Mapping[str, np.ndarray]], config: QuantConfig | None = None,
                   **options) -> Graph:
    """Calibrate (real statistics code, minmax), quantize and insert conversions on a copy of `graph`."""
    return _quantize_graph(graph, [dict(f) for f in feeds], config, **options)


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
