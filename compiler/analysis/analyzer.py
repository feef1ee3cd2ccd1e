"""One pass over the samples computing every analysis: float cache, all-quantized run, single-layer runs.

Per sample: the float model runs once and keeps its activations; the quantized
model runs once, comparing each layer's output with the float tensor of the
same name; then each layer is quantized alone and the float model continues
from it (sensitivity). Memory holds one sample's activations, not the set's.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np

from npuc.analysis.entropy import EntropyEntry, kl_divergence, sorted_entries, weight_kl
from npuc.analysis.float_cache import FloatCache
from npuc.analysis.layer_snr import LayerSnrCollector
from npuc.analysis.layers import AnalysisLayer, find_layers
from npuc.analysis.report import AnalysisReport, LayerResult
from npuc.analysis.sensitivity import SensitivityCollector
from npuc.analysis.snr import FLAG_THRESHOLD_DB
from npuc.errors import NpucError
from npuc.ir.graph import Graph

log = logging.getLogger(__name__)

Feeds = Mapping[str, np.ndarray]
#: worst channels listed per layer output
WORST_CHANNELS = 8


@dataclass(frozen=True)
class AnalysisOptions:
    """What to compute."""

    sensitivity: bool = True  # only-layer-n-quantized SNR at the outputs (the costly part)
    threshold_db: float = FLAG_THRESHOLD_DB
    seed: int = 0


def _layer_result(layer: AnalysisLayer, fp: Graph, q: Graph, sens: SensitivityCollector | None,
                  own: LayerSnrCollector) -> LayerResult:
    sensitivity = {o: s.db for o, s in sens.stats[layer.name].items()} if sens is not None else {}
    layer_snr, worst, kl = {}, {}, {}
    for k, name in enumerate(layer.outputs):
        st = own.stats[name]
        layer_snr[name] = st.db
        if st.channel_signal.size:
            ch = st.channel_db()
            order = np.argsort(ch, kind="stable")[:WORST_CHANNELS]
            worst[name] = [(int(c), float(ch[c])) for c in order]
        h = sens.histograms[name] if sens is not None else own.histograms[name]
        kl[f"out{k}"] = kl_divergence(h.float_counts, h.quant_counts)
    if layer.weight is not None and layer.float_weight is not None:
        kl["weight"] = weight_kl(fp.tensor(layer.float_weight), q.tensor(layer.weight))
    return LayerResult(name=layer.name, kind=layer.kind, origin=list(layer.origin), index=layer.index,
                       dtype=layer.dtype, sensitivity_db=sensitivity, layer_snr_db=layer_snr,
                       worst_channels=worst, kl=kl)


def analyze(fp: Graph, q: Graph, samples: Iterable[Feeds], options: AnalysisOptions = AnalysisOptions(),
            progress: Callable[[str, int], None] | None = None, model_name: str | None = None) -> AnalysisReport:
    """Analyse quantized graph `q` against its float graph `fp` on `samples` (feeds of `fp`'s inputs).

    progress(stage, steps) is called as work is done ("sample": once per sample;
    "layer": once per layer of the sensitivity analysis).
    """
    layers = find_layers(fp, q)
    seconds = {"float": 0.0, "all_quantized": 0.0, "sensitivity": 0.0}
    cache = FloatCache(fp)
    own = LayerSnrCollector(q, layers, options.seed)
    sens = SensitivityCollector(fp, q, layers) if options.sensitivity else None
    tick = (lambda: progress("layer", 1)) if progress is not None else None
    count = 0
    for feeds in samples:
        t0 = time.perf_counter()
        values = cache.capture(feeds)
        t1 = time.perf_counter()
        own.add_sample(feeds, values)
        t2 = time.perf_counter()
        if sens is not None:
            sens.add_sample(values, tick)
        t3 = time.perf_counter()
        seconds["float"] += t1 - t0
        seconds["all_quantized"] += t2 - t1
        seconds["sensitivity"] += t3 - t2
        count += 1
        del values
        if progress is not None:
            progress("sample", 1)
    if count == 0:
        raise NpucError("the analysis got no samples: give calibration data with at least one item")
    log.info("analysed %d layer(s) on %d sample(s): %s", len(layers), count,
             ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    results = [_layer_result(layer, fp, q, sens, own) for layer in layers]
    entropy = sorted_entries([EntropyEntry(r.name, what, v) for r in results for what, v in r.kl.items()])
    report = AnalysisReport(
        model=model_name or q.name, samples=count, threshold_db=options.threshold_db,
        outputs=[t.name for t in q.outputs], output_snr_db={n: s.db for n, s in own.output_stats.items()},
        layers=results, entropy=entropy, seconds={k: round(v, 3) for k, v in seconds.items()},
        histograms=own.histograms)
    report.rank()
    return report
