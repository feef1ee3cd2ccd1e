"""The three emulation modes of the reference executor (docs/quantized-ir.md).

* ``native``: the float model as imported;
* ``fp_optimized``: the float model after every float rewrite (must match native within float noise);
* ``quantized``: the quantized IR in integer arithmetic (docs/numerics.md); outputs dequantized on request.

`prepare_emulation` builds the three graphs from an imported model: it runs the
float rewrites, calibrates on the given feeds with the real `calibrate` statistics,
quantizes with a `QuantConfig` and inserts the conversions.
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from npuc.backends.reference.executor import Executor
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.errors import NpucError
from npuc.ir.graph import Graph
from npuc.quantization.config import QuantConfig

log = logging.getLogger(__name__)

#: float rewrites run for fp_optimized (and before calibration)


class EmulationMode(str, enum.Enum):
    NATIVE = "native"
    FP_OPTIMIZED = "fp_optimized"
    QUANTIZED = "quantized"


@dataclass
class Emulator:
    """The graphs of every mode that is available; `run(mode, feeds)` runs one."""

    native: Graph
    fp_optimized: Graph | None = None
    quantized: Graph | None = None

    def graph(self, mode: EmulationMode | str) -> Graph:
        m = EmulationMode(mode)
        g = {EmulationMode.NATIVE: self.native, EmulationMode.FP_OPTIMIZED: self.fp_optimized,
             EmulationMode.QUANTIZED: self.quantized}[m]
        if g is None:
            raise NpucError(f"emulation mode '{m.value}' is not prepared (quantized needs calibration data)")
        return g

    def run(self, mode: EmulationMode | str, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None,
            dequantize: bool = True) -> dict[str, np.ndarray]:
        """Outputs of `mode` by tensor name (quantized: float32 when `dequantize`, else integer codes)."""
        g = self.graph(mode)
        if EmulationMode(mode) is EmulationMode.QUANTIZED:
            return QuantizedExecutor(g).run(feeds, outputs, dequantize)
        return Executor(g).run(feeds, outputs)


def run_float_passes(graph: Graph, names: Sequence[str] | None = None) -> Graph:
    """A copy of `graph` after the float rewrites (default: the cleanup pipeline `npuc compile` runs)."""
    from npuc.passes.manager import DEFAULT_CLEANUP, PassManager, build_pipeline

    out = graph.copy()
    PassManager(build_pipeline(list(names or DEFAULT_CLEANUP))).run(out)
    return out


def quantize_for_emulation(fp_graph: Graph, calibration_feeds: Iterable[Mapping[str, np.ndarray]],
                           config: QuantConfig | None = None, method: str = "minmax",
                           **quantize_options) -> Graph:
    """A quantized copy of a float graph: calibrate (method) -> quantize -> insert_dtype_conversions."""
    from npuc.calibration.statistics import ObserverConfig, collect_statistics
    from npuc.passes.base import PassContext
    from npuc.passes.calibrate import CalibrationSummary
    from npuc.passes.insert_dtype_conversions import InsertDtypeConversions
    from npuc.passes.manager import PassManager
    from npuc.passes.quantize import CONFIG_KEY, Quantize

    q = fp_graph.copy()
    items = [(f"item{i}", dict(f)) for i, f in enumerate(calibration_feeds)]
    if not items:
        raise NpucError("quantized emulation needs at least one calibration item")
    collector = collect_statistics(q, items, ObserverConfig(method, 99.99, False))
    n = collector.attach(q)
    ctx = PassContext()
    ctx.set("calibration", CalibrationSummary(method, 99.99, False, len(items), n, "emulation", None))
    if config is not None:
        ctx.set(CONFIG_KEY, config)
    PassManager([Quantize(**quantize_options), InsertDtypeConversions()]).run(q, ctx)
    return q


def prepare_emulation(graph: Graph, calibration_feeds: Iterable[Mapping[str, np.ndarray]] | None = None,
                      config: QuantConfig | None = None, method: str = "minmax", **quantize_options) -> Emulator:
    """Emulator with native, fp_optimized and (given calibration feeds) quantized graphs."""
    fp = run_float_passes(graph)
    quantized = None
    if calibration_feeds is not None:
        quantized = quantize_for_emulation(fp, calibration_feeds, config, method, **quantize_options)
    return Emulator(graph, fp, quantized)
