"""calibrate: stream the calibration set through the float executor and store range observers on activations.

Where the data comes from (first found):
* ``ctx.state["calibration_set"]``: a `npuc.calibration.CalibrationSet`, or a
  spec (folder, glob, file or list) opened with
  ``ctx.state.get("preprocessing")`` (a `Preprocessing`, default: from the
  model input);
* ``ctx.options["calibration_data"]`` (+ ``ctx.options["preprocessing"]``):
  the same, as set by the driver from ``--calib``.

Afterwards every observed activation has ``tensor.meta["observer"]`` (and
``tensor.meta["observer_per_channel"]`` with per_channel=True), and
``ctx.state["calibration"]`` holds a `CalibrationSummary`. Tensors with fixed
encodings (overrides) are skipped: their encodings win and are left untouched.
``layer_methods`` (the script's ``calibration(layers, method=...)``) give the
output tensors of some layers another method than the pass's own.
See `npuc.calibration.statistics` for why items run at batch 1.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from npuc.calibration.dataset import CalibrationSet, open_calibration_set
from npuc.calibration.statistics import LayerObserverConfig, ObserverConfig, collect_statistics
from npuc.errors import CalibrationError
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, option

log = logging.getLogger(__name__)

#: PassContext keys.
SET_KEY = "calibration_set"
PREPROCESSING_KEY = "preprocessing"
DATA_OPTION = "calibration_data"
SUMMARY_KEY = "calibration"


@dataclass(frozen=True)
class CalibrationSummary:
    """What calibration did (kept in ctx.state['calibration'] for later passes and reports)."""

    method: str
    percentile: float
    per_channel: bool
    items: int
    tensors: int
    source: str
    seed: int | None
    #: tensor name -> method ("mse", "percentile 99.9", ...) where a per-layer setting differs from `method`
    layer_methods: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Calibrate(Pass):
    """Collect activation ranges over the calibration set (streaming, seeded, memory flat in the set size)."""

    name: ClassVar[str] = "calibrate"
    ensures: ClassVar[tuple[str, ...]] = (SUMMARY_KEY,)

    method: Literal["minmax", "percentile", "mse", "kl"] = option(
        "minmax", "range algorithm: minmax, percentile, mse (clips long tails), kl (entropy)")
    percentile: float = option(99.99, "for method=percentile: the percentile kept, in (50, 100]")
    per_channel: bool = option(False, "also keep per-channel observers (axis 1) on activations")
    batch_size: int = option(8, "items decoded together (loaded one batch ahead while the model runs)")
    calibset_size: int | None = option(None, "items to use (a seeded sample); none = the whole set")
    seed: int | None = option(0, "seed of the sample of calibset_size items; none = the first items")
    layer_methods: tuple[LayerObserverConfig, ...] = option(
        (), "per-layer methods (the script's calibration(layers, method=...)): these layers' output tensors "
            "use their own method, percentile or per_channel; later entries win")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.calibset_size is not None and self.calibset_size < 1:
            raise ValueError(f"calibset_size must be >= 1, got {self.calibset_size}")
        if any(not isinstance(c, LayerObserverConfig) for c in self.layer_methods):
            raise ValueError("layer_methods takes LayerObserverConfig entries; in a script write "
                             "calibration(layers, method=...)")

    def check(self, graph: Graph, ctx: PassContext) -> list[str]:
        if _data_spec(ctx) is None:
            return ["no calibration data: give --calib (ctx.options['calibration_data']) "
                    "or put a CalibrationSet in ctx.state['calibration_set']"]
        return []

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        config = ObserverConfig(self.method, self.percentile, self.per_channel)
        calib = _open(graph, ctx).select(self.calibset_size, self.seed)
        _check_inputs(calib, graph)
        items = ((ref.label(), feeds) for ref, feeds in calib.iter_items())
        with _progress(len(calib), f"calibrating ({self.method})") as advance:
            collector = collect_statistics(graph, items, config, self.batch_size, advance, self.layer_methods)
        if collector.items == 0:
            raise CalibrationError(f"calibration set '{calib.source}' gave no items")
        attached = collector.attach(graph)
        ctx.set(SUMMARY_KEY, CalibrationSummary(
            self.method, self.percentile, self.per_channel, collector.items, attached, calib.source, self.seed,
            {name: c.describe() + (" per-channel" if c.per_channel else "")
             for name, c in collector.tensor_configs.items()}))
        stats = {"items": collector.items, "tensors": attached}
        if collector.tensor_configs:
            stats["per_layer_method_tensors"] = len(collector.tensor_configs)
        return PassResult(True, stats)


def _data_spec(ctx: PassContext) -> Any:
    spec = ctx.get(SET_KEY)
    return spec if spec is not None else ctx.options.get(DATA_OPTION)


def _open(graph: Graph, ctx: PassContext) -> CalibrationSet:
    spec = _data_spec(ctx)
    if isinstance(spec, CalibrationSet):
        return spec
    pre = ctx.get(PREPROCESSING_KEY) or ctx.options.get(PREPROCESSING_KEY)
    return open_calibration_set(spec, graph, pre)


def _check_inputs(calib: CalibrationSet, graph: Graph) -> None:
    """The set must feed exactly the graph's inputs at their shapes (it may predate a graph rewrite)."""
    have = {i.name: i.shape for i in calib.inputs}
    want = {t.name: tuple(t.shape) for t in graph.inputs}
    if have != want:
        raise CalibrationError(
            f"calibration set '{calib.source}' feeds {have} but model '{graph.name}' takes {want}")


class _progress:
    """A rich progress bar on a terminal (stderr), nothing otherwise; yields an advance(n) callback."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self._bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
