"""PNG plots of an analysis (matplotlib, Agg backend: no display needed).

* `snr_chart`: SNR at one model output with only layer n quantized, per layer;
* `layer_snr_chart`: each layer's own output SNR with all layers quantized;
* `histogram_plot`: a layer's output histogram float vs quantized, and a grid
  of its worst channels;
* `scatter_plot`: quantized vs float values of a layer's output.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from npuc.analysis.histograms import CHANNEL_BINS, LayerHistogram
from npuc.analysis.report import AnalysisReport, LayerResult

log = logging.getLogger(__name__)

_FLOAT_COLOR = "#1f77b4"
_QUANT_COLOR = "#d62728"
_DPI = 90


def _figure(width: float, height: float):
    """A bare Agg figure (no pyplot: no global state, no interactive hooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _log_y(ax) -> None:
    """Log y axis with few ticks (log axes with default minor ticks are very slow to lay out)."""
    from matplotlib.ticker import LogLocator, NullLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=4))
    ax.yaxis.set_minor_locator(NullLocator())


def _bar_chart(names: Sequence[str], values: Sequence[float | None], threshold: float, title: str,
               ylabel: str, path: Path) -> Path:
    n = len(names)
    finite = [v for v in values if v is not None]
    top = (max(finite) if finite else threshold) + 10.0
    heights = [top if v is None else v for v in values]
    colors = ["#bbbbbb" if v is None else (_QUANT_COLOR if v < threshold else _FLOAT_COLOR) for v in values]
    fig = _figure(min(40.0, max(8.0, 0.14 * n)), 4.2)
    ax = fig.add_subplot()
    ax.bar(np.arange(n), heights, color=colors, width=0.8)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"{threshold:g} dB")
    ax.set_xlim(-1, n)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper right")
    step = max(1, math.ceil(n / 120))
    ax.set_xticks(np.arange(0, n, step))
    ax.set_xticklabels([names[i] for i in range(0, n, step)], rotation=90, fontsize=6)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.3)
    fig.savefig(path, dpi=_DPI)
    return path


def _in_graph_order(report: AnalysisReport) -> list[LayerResult]:
    return sorted(report.layers, key=lambda r: r.index)


def snr_chart(report: AnalysisReport, output: str, path: Path) -> Path:
    """Bar per layer (graph order): SNR at `output` with only that layer quantized (grey: no error)."""
    layers = [r for r in _in_graph_order(report) if output in r.sensitivity_db]
    return _bar_chart([r.name for r in layers], [r.sensitivity_db[output] for r in layers], report.threshold_db,
                      f"SNR at output '{output}' with only layer n quantized", "SNR [dB]", path)


def layer_snr_chart(report: AnalysisReport, path: Path) -> Path:
    """Bar per layer (graph order): the layer's own output SNR with every layer quantized."""
    layers = _in_graph_order(report)
    return _bar_chart([r.name for r in layers], [r.layer_snr_min_db for r in layers], report.threshold_db,
                      "SNR of each layer's own output, all layers quantized", "SNR [dB]", path)


def _hist_line(ax, edges: np.ndarray, counts: np.ndarray, color: str, label: str) -> None:
    ax.stairs(counts, edges, color=color, label=label, linewidth=1)


def histogram_plot(layer: LayerResult, hist: LayerHistogram, path: Path, max_channels: int = 8) -> Path:
    """Overall float vs quantized histogram of `hist` and a grid of the layer's worst channels."""
    chans = [c for c, _ in layer.worst_channels.get(hist.name, [])][:max_channels] if hist.channels else []
    cols = 4
    rows = 1 + math.ceil(len(chans) / cols)
    fig = _figure(11, 2.6 * rows)
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, :])
    _hist_line(ax, hist.edges, hist.float_counts, _FLOAT_COLOR, "float")
    _hist_line(ax, hist.edges, hist.quant_counts, _QUANT_COLOR, "quantized")
    _log_y(ax)
    ax.set_title(f"{layer.name} ({layer.kind}, {layer.dtype}) output '{hist.name}': all values")
    ax.legend()
    snr = dict(layer.worst_channels.get(hist.name, []))
    for i, c in enumerate(chans):
        sub = fig.add_subplot(grid[1 + i // cols, i % cols])
        _hist_line(sub, hist.channel_edges, hist.float_channel[c], _FLOAT_COLOR, "float")
        _hist_line(sub, hist.channel_edges, hist.quant_channel[c], _QUANT_COLOR, "quantized")
        _log_y(sub)
        sub.set_title(f"channel {c}: {snr.get(c, float('nan')):.1f} dB", fontsize=8)
        used = np.flatnonzero(hist.float_channel[c] + hist.quant_channel[c])
        if used.size:  # zoom on the bins this channel occupies
            e = hist.channel_edges
            sub.set_xlim(e[max(used[0] - 1, 0)], e[min(used[-1] + 2, CHANNEL_BINS)])
        sub.tick_params(labelsize=6)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.95, bottom=0.06, hspace=0.45, wspace=0.25)
    fig.savefig(path, dpi=_DPI)
    return path


def scatter_plot(layer: LayerResult, hist: LayerHistogram, path: Path) -> Path:
    """Quantized vs float values of the layer's output (a sample of points), with the identity line."""
    xf, xq = hist.scatter()
    fig = _figure(4.6, 4.4)
    ax = fig.add_subplot()
    ax.scatter(xf, xq, s=3, alpha=0.4, color=_QUANT_COLOR, linewidths=0)
    if xf.size:
        lo, hi = float(min(xf.min(), xq.min())), float(max(xf.max(), xq.max()))
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
    own = layer.layer_snr_db.get(hist.name)
    ax.set_title(f"{layer.name}: {'exact' if own is None else f'{own:.1f} dB'}", fontsize=9)
    ax.set_xlabel("float")
    ax.set_ylabel("quantized (dequantized)")
    fig.subplots_adjust(left=0.17, right=0.97, top=0.92, bottom=0.12)
    fig.savefig(path, dpi=_DPI)
    return path


def safe_name(name: str) -> str:
    """A file-name-safe version of a layer or tensor name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_plots(report: AnalysisReport, out_dir: Path, layers: int = 12) -> None:
    """All charts, and histogram + scatter plots of the `layers` worst layers, under out_dir/plots/.

    Paths (relative to out_dir) are recorded in report.charts and each layer's `plots`.
    """
    plot_dir = Path(out_dir) / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    for k, output in enumerate(report.outputs):
        if any(output in r.sensitivity_db for r in report.layers):
            rel = f"plots/snr_output{k}_{safe_name(output)}.png"
            snr_chart(report, output, Path(out_dir) / rel)
            report.charts[f"sensitivity:{output}"] = rel
    rel = "plots/layer_snr.png"
    layer_snr_chart(report, Path(out_dir) / rel)
    report.charts["layer_snr"] = rel
    for r in report.layers[:layers]:
        for k, name in enumerate(r.layer_snr_db):
            hist = report.histograms.get(name)
            if hist is None or hist.range is None:
                continue
            base = f"plots/{r.rank:03d}_{safe_name(r.name)}_out{k}"
            histogram_plot(r, hist, Path(out_dir) / f"{base}_hist.png")
            scatter_plot(r, hist, Path(out_dir) / f"{base}_scatter.png")
            r.plots[f"histogram:out{k}"] = f"{base}_hist.png"
            r.plots[f"scatter:out{k}"] = f"{base}_scatter.png"
    log.info("plots written to %s", plot_dir)
