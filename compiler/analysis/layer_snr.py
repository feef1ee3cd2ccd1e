"""SNR of each layer's own output with all layers quantized (and at the model outputs).

The quantized graph runs in integer arithmetic; every activation a layer
produces is dequantized as it appears and compared with the float tensor of the
same name (the same origin) from the sample's float run. The same hook feeds
the output histograms and scatter samples of `histograms.py`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from npuc.analysis.histograms import LayerHistogram
from npuc.analysis.layers import AnalysisLayer
from npuc.analysis.single_layer import to_float
from npuc.analysis.snr import SnrStats, channel_axis
from npuc.backends.reference.quantized_executor import QuantizedExecutor
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor


class LayerSnrCollector:
    """Accumulates per-layer-output SNR, histograms and scatter samples over samples."""

    def __init__(self, q: Graph, layers: list[AnalysisLayer], seed: int = 0) -> None:
        self.q = q
        self._executor = QuantizedExecutor(q)
        self.stats: dict[str, SnrStats] = {}  # tensor name -> SNR of that output
        self.histograms: dict[str, LayerHistogram] = {}
        self.output_stats: dict[str, SnrStats] = {t.name: SnrStats() for t in q.outputs}
        for i, layer in enumerate(layers):
            for name in layer.outputs:
                t = q.tensor(name)
                axis = channel_axis(t.shape, t.layout)
                self.stats[name] = SnrStats(t.shape[axis] if axis is not None else None, axis)
                self.histograms[name] = LayerHistogram(t, axis, seed + i)

    def add_sample(self, feeds: Mapping[str, np.ndarray], float_values: Mapping[str, np.ndarray]) -> None:
        """Run the quantized graph on `feeds` and compare every layer output with `float_values`."""
        stats, hists = self.stats, self.histograms

        def compare(tensor: Tensor, value: np.ndarray) -> None:
            s = stats.get(tensor.name)
            if s is None:
                return
            ref = float_values[tensor.name]
            test = to_float(value, tensor)
            s.add(ref, test)
            hists[tensor.name].add(ref, test)

        outs = self._executor.run(feeds, dequantize=True, on_tensor=compare)
        for name, value in outs.items():
            self.output_stats[name].add(float_values[name], value)
