"""Activation statistics: run the float executor item by item and feed per-tensor observers.

Every float activation (graph inputs and op outputs; constants and tensors
with fixed encodings excepted) gets an observer from
`npuc.quantization.observers.make_observer`. The executor calls back with
each value as it is computed; the observer folds it into fixed-size state and
keeps no reference, and the executor frees the value after its last use, so
memory does not depend on the number of items.

Items run at batch 1, one at a time: calibration needs the model at batch 1
(SPEC), a graph imported at batch 1 often hard-codes it (Reshape shapes), and
every observer aggregates the same way whether it sees one item or a stack.
`batch_size` is the number of items decoded together, one batch ahead on a
background thread while the executor works on the current one (pillow
releases the GIL while decoding and resizing).

Collectors are mergeable (`merge`), like their observers: two halves of a set
collected separately and merged give the statistics of the whole.

Values nobody reads are not observed (`consumer_bounds`). A tensor that is not
a graph output and whose every reader is a ReLU (or a Clip with constant
bounds, all readers the same) is observed after that clamp: the negative half
of a residual ``Add`` feeding a ``Relu`` is thrown away by the Relu, so giving
it grid steps only coarsens the values that survive. With the clamped range
the producer's integer kernel saturates at the bound exactly as the ReLU
would (an asymmetric grid [0, hi] has zero point 0), so nothing is lost, and
the ReLU's input and output get the same encoding. On MediaPipe's BlazeFace the
add-then-ReLU tensors of the residual blocks use ~2x finer grids this way.

Per-layer methods: `LayerObserverConfig` entries (the script's
``calibration(layers, method=..., ...)``) give the output tensors of the layers
they name another method / percentile / per_channel than the global
`ObserverConfig`; `resolve_layer_configs` maps them to tensor names (later
entries win, field by field; a field an entry does not set keeps the global
value), and the collector builds each tensor's observer from its own config.
"""
from __future__ import annotations

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from npuc.calibration.dataset import Feeds
from npuc.errors import CalibrationError, QuantizationError
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor
from npuc.quantization.observers import METHODS, Observer, make_observer

log = logging.getLogger(__name__)

#: Tensor.meta key of the per-tensor observer (the quantizer's input, docs/quantized-ir.md).
OBSERVER = "observer"
#: Tensor.meta key of the per-channel observer (axis 1) kept when calibrating with per_channel=True.
OBSERVER_PER_CHANNEL = "observer_per_channel"
#: Tensor.meta keys of encodings fixed by overrides (never observed, never overwritten).
FIXED_KEYS = ("fixed_quant", "fixed_dtype")
#: Channel axis of activations (the IR is NCHW / (N, features) like ONNX).
CHANNEL_AXIS = 1

T = TypeVar("T")


@dataclass(frozen=True)
class ObserverConfig:
    """Which range algorithm the observers implement."""

    method: str = "minmax"
    percentile: float = 99.99
    per_channel: bool = False
    #: observe a tensor after the clamp all its readers apply (ReLU, Clip; see the module docstring)
    reader_clamp: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CalibrationError(f"unknown calibration method '{self.method}' (use one of {', '.join(METHODS)})")
        make_observer(self.method, None, self.percentile)  # validates the percentile early

    def make(self, axis: int | None = None) -> Observer:
        return make_observer(self.method, axis, self.percentile)

    def describe(self) -> str:
        return f"percentile {self.percentile:g}" if self.method == "percentile" else self.method


@dataclass(frozen=True)
class LayerObserverConfig:
    """Another range algorithm for the output tensors of some layers; None fields keep the global setting."""

    layers: tuple[str, ...]
    method: str | None = None
    percentile: float | None = None
    per_channel: bool | None = None
    #: where it was asked for ("model.alls:3"), for messages
    source: str = ""

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise CalibrationError(f"{self.source + ': ' if self.source else ''}unknown calibration method "
                                   f"'{self.method}' (use one of {', '.join(METHODS)})")

    def apply(self, base: ObserverConfig) -> ObserverConfig:
        """`base` with the fields this entry sets replaced."""
        changes = {k: v for k, v in (("method", self.method), ("percentile", self.percentile),
                                     ("per_channel", self.per_channel)) if v is not None}
        return replace(base, **changes) if changes else base


def resolve_layer_configs(graph: Graph, config: ObserverConfig,
                          layer_configs: Iterable[LayerObserverConfig]) -> dict[str, ObserverConfig]:
    """Tensor name -> its observer config, for the output tensors of the layers the entries name (only those
    whose config differs from `config`). A name is an op (its outputs) or a graph input tensor; names no
    longer in the graph (removed by a float pass) are logged and skipped."""
    out: dict[str, ObserverConfig] = {}
    for entry in layer_configs:
        for name in entry.layers:
            if graph.has_op(name):
                tensors = graph.outputs_of(graph.op(name))
            elif graph.has_tensor(name):
                tensors = [graph.tensor(name)]
            else:
                log.warning("%scalibration: layer '%s' is no longer in the graph; its method is not applied",
                            entry.source + ": " if entry.source else "", name)
                continue
            for t in tensors:
                out[t.name] = entry.apply(out.get(t.name, config))
    return {name: c for name, c in out.items() if c != config}


def observed_tensors(graph: Graph) -> list[Tensor]:
    """The activations calibration observes: float, not constant, without a fixed encoding, in graph order."""
    seen: set[int] = set()
    out: list[Tensor] = []
    candidates = list(graph.inputs) + [t for op in graph.ops() for t in graph.outputs_of(op)]
    for t in candidates:
        if id(t) in seen or t.is_const or not t.dtype.is_float or any(k in t.meta for k in FIXED_KEYS):
            continue
        seen.add(id(t))
        out.append(t)
    return out


def consumer_bounds(graph: Graph, tensors: Iterable[Tensor]) -> dict[str, tuple[float | None, float | None]]:
    """(lo, hi) clamps that every reader of a tensor applies first (see the module docstring), by tensor name.

    Only tensors that are not graph outputs and whose readers all are ``Relu`` ([0, inf)) or the same
    ``Clip`` with constant bounds; the others are absent.
    """
    out: dict[str, tuple[float | None, float | None]] = {}
    for t in tensors:
        if graph.is_output(t):
            continue
        readers = graph.consumers(t)
        bounds = {_reader_clamp(graph, op, port) for op, port in readers}
        if readers and len(bounds) == 1 and None not in bounds:
            out[t.name] = bounds.pop()
    return out


def _reader_clamp(graph: Graph, op, port: int) -> tuple[float | None, float | None] | None:
    if port != 0:
        return None
    if op.kind == "Relu":
        return (0.0, None)
    if op.kind == "Clip":
        ins = graph.inputs_of(op)
        lo, hi = op.attrs.get("min"), op.attrs.get("max")
        for i, name in ((1, "lo"), (2, "hi")):
            if len(ins) > i and ins[i] is not None:
                if not ins[i].is_const or np.size(ins[i].data) != 1:
                    return None
                v = float(np.asarray(ins[i].data).reshape(-1)[0])
                lo, hi = (v, hi) if name == "lo" else (lo, v)
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
        return None if lo is None and hi is None else (lo, hi)
    return None


class StatisticsCollector:
    """Observers for a graph's activations, keyed by tensor name."""

    def __init__(self, graph: Graph, config: ObserverConfig,
                 layer_configs: Iterable[LayerObserverConfig] = ()) -> None:
        self.config = config
        self.tensors = observed_tensors(graph)
        #: tensor name -> its own config, where a per-layer entry changes it (others use `config`)
        self.tensor_configs = resolve_layer_configs(graph, config, layer_configs)
        #: clamps applied to a value before it is observed (its readers apply them first)
        self.bounds = consumer_bounds(graph, self.tensors) if config.reader_clamp else {}
        self.observers: dict[str, Observer] = {t.name: self.config_of(t.name).make() for t in self.tensors}
        self.per_channel: dict[str, Observer] = {
            t.name: self.config_of(t.name).make(CHANNEL_AXIS) for t in self.tensors
            if t.rank >= 2 and self.config_of(t.name).per_channel}
        self.items = 0
        self._current = "<item>"

    def config_of(self, name: str) -> ObserverConfig:
        """The observer config of tensor `name` (its per-layer one, else the global one)."""
        return self.tensor_configs.get(name, self.config)

    # -------------------------------------------------------------- observing
    def on_tensor(self, tensor: Tensor, value: np.ndarray) -> None:
        """Executor callback: fold one computed value into its observers (no reference is kept)."""
        obs = self.observers.get(tensor.name)
        if obs is None:
            return
        bound = self.bounds.get(tensor.name)
        if bound is not None:
            value = np.clip(value, bound[0], bound[1])
        try:
            obs.observe(value)
            pc = self.per_channel.get(tensor.name)
            if pc is not None:
                pc.observe(value)
        except QuantizationError as exc:
            raise CalibrationError(f"tensor '{tensor.name}' on calibration item '{self._current}': {exc}") from None

    def observe_item(self, executor, feeds: Feeds, label: str = "<item>") -> None:
        """Run one item (batch 1) through `executor` (a reference Executor of the graph)."""
        self._current = label
        executor.run(feeds, on_tensor=self.on_tensor)
        self.items += 1

    def merge(self, other: "StatisticsCollector") -> "StatisticsCollector":
        """Fold another collector of the same graph and config into this one; returns self."""
        if (other.config != self.config or other.tensor_configs != self.tensor_configs
                or set(other.observers) != set(self.observers)):
            raise CalibrationError("cannot merge calibration statistics of different graphs or settings")
        for name, obs in other.observers.items():
            self.observers[name].merge(obs)
        for name, obs in other.per_channel.items():
            self.per_channel[name].merge(obs)
        self.items += other.items
        return self

    # ----------------------------------------------------------------- output
    def attach(self, graph: Graph) -> int:
        """Store the observers in `tensor.meta` (replacing older ones); returns how many tensors got one."""
        for t in graph.tensors():
            t.meta.pop(OBSERVER, None)
            t.meta.pop(OBSERVER_PER_CHANNEL, None)
        attached = 0
        for name, obs in self.observers.items():
            if not graph.has_tensor(name) or obs.empty:
                continue
            tensor = graph.tensor(name)
            tensor.meta[OBSERVER] = obs
            pc = self.per_channel.get(name)
            if pc is not None and not pc.empty:
                tensor.meta[OBSERVER_PER_CHANNEL] = pc
            attached += 1
        return attached


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to `size` elements."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def prefetched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`chunks(items, size)` with the next chunk loaded on a background thread (order kept)."""
    gen = chunks(items, size)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="npuc-calib-load") as pool:
        future = pool.submit(next, gen, None)
        while True:
            chunk = future.result()
            if chunk is None:
                return
            future = pool.submit(next, gen, None)
            yield chunk


def collect_statistics(
    graph: Graph,
    items: Iterable[tuple[str, Feeds]],
    config: ObserverConfig,
    batch_size: int = 8,
    on_progress: Callable[[int], None] | None = None,
    layer_configs: Iterable[LayerObserverConfig] = (),
) -> StatisticsCollector:
    """Observe every activation of `graph` over (label, feeds) items; returns the collector (not yet attached).

    on_progress(n) is called after each batch with the number of items it held. `layer_configs` give some
    layers' output tensors another method (see the module docstring).
    """
    from npuc.backends.reference.executor import Executor

    collector = StatisticsCollector(graph, config, layer_configs)
    executor = Executor(graph)
    t0 = time.perf_counter()
    for batch in prefetched(items, batch_size):
        done = len(batch)
        batch.reverse()
        while batch:  # drop each item's input as soon as it has run
            label, feeds = batch.pop()
            collector.observe_item(executor, feeds, label)
            del feeds
        if on_progress is not None:
            on_progress(done)
    log.info("calibration: %d item(s), %d tensor(s) observed (%s%s) in %.2f s", collector.items,
             len(collector.observers), config.method,
             f"; {len(collector.tensor_configs)} with a per-layer method" if collector.tensor_configs else "",
             time.perf_counter() - t0)
    return collector
