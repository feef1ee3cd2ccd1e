"""Sensitivity: SNR at the model outputs with only layer n quantized, for every n.

Work is reused so the cost per layer is one integer op plus the float ops
downstream of it: the float activations of a sample are computed once
(`FloatCache`), layer n runs quantized on them (`SingleLayerRunner`), and the
float model continues from its outputs only (`SuffixRunner`), reading every
other value from the cache. Per sample that is about (number of layers x half
the model) op runs instead of (number of layers x the whole model).

Like the float executor, the runs use single-threaded BLAS and the executor's
own chunk threading (`npuc.backends.reference.parallel`): the work is many small
matmuls, for which BLAS worker threads cost more than they give on shared cores.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from npuc.analysis.histograms import LayerHistogram
from npuc.analysis.layers import AnalysisLayer
from npuc.analysis.single_layer import SingleLayerRunner
from npuc.analysis.snr import SnrStats
from npuc.analysis.suffix import SuffixRunner
from npuc.backends.reference import parallel
from npuc.backends.reference.blas_threads import blas_threads_control, configured_blas_threads
from npuc.ir.graph import Graph


class SensitivityCollector:
    """Accumulates, per layer and per model output it reaches, the output SNR with only that layer quantized."""

    def __init__(self, fp: Graph, q: Graph, layers: list[AnalysisLayer]) -> None:
        self.layers = layers
        self._single = SingleLayerRunner(q)
        self._suffix = SuffixRunner(fp)
        self.stats: dict[str, dict[str, SnrStats]] = {
            layer.name: {o: SnrStats() for o in self._suffix.plan(frozenset(layer.outputs)).outputs}
            for layer in layers}
        #: output tensor -> histograms of the float value vs the value with only its layer quantized
        #: (what the layer's own quantization does, without upstream error: the entropy file uses it)
        self.histograms: dict[str, LayerHistogram] = {
            name: LayerHistogram(q.tensor(name), None, scatter=False) for layer in layers for name in layer.outputs}

    def add_sample(self, float_values: Mapping[str, np.ndarray],
                   advance: Callable[[], None] | None = None) -> None:
        """Quantize each layer alone on this sample's float activations and accumulate output SNRs."""
        set_threads = blas_threads_control()
        configured = configured_blas_threads() or 1
        if set_threads is not None:
            set_threads(1)
        try:
            with parallel.threads(configured):
                self._run_layers(float_values, advance)
        finally:
            if set_threads is not None:
                set_threads(configured)

    def _run_layers(self, float_values: Mapping[str, np.ndarray], advance: Callable[[], None] | None) -> None:
        for layer in self.layers:
            per_output = self.stats[layer.name]
            replaced = self._single.run(layer, float_values)
            for name, value in replaced.items():
                self.histograms[name].add(float_values[name], value)
            if per_output:
                outs = self._suffix.run(replaced, float_values)
                for name, value in outs.items():
                    per_output[name].add(float_values[name], value)
            if advance is not None:
                advance()
