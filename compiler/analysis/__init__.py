"""Layer analysis of a quantized model: which layer is to blame for the accuracy it loses.

`npuc analyze` (compiler/commands/analyze.py) runs `analyze_model`:

* sensitivity (`sensitivity.py`): SNR at the model outputs with only layer n
  quantized, for every n, reusing one float run per sample (`float_cache.py`,
  `single_layer.py`, `suffix.py`);
* layer SNR (`layer_snr.py`): SNR of every layer's own output with all layers
  quantized;
* quantization entropy (`entropy.py`): KL divergence of each layer's weights and
  outputs, quantized vs float;
* plots (`plots.py`), the ranked table and JSON (`report.py`), a single offline
  `report.html` (`report_html.py`).
"""
from npuc.analysis.analyzer import AnalysisOptions, analyze
from npuc.analysis.layers import AnalysisLayer, find_layers
from npuc.analysis.report import AnalysisReport, LayerResult
from npuc.analysis.run import AnalyzeRequest, analyze_model
from npuc.analysis.snr import FLAG_THRESHOLD_DB, SnrStats, snr_db

__all__ = [
    "AnalysisLayer", "AnalysisOptions", "AnalysisReport", "AnalyzeRequest", "FLAG_THRESHOLD_DB", "LayerResult",
    "SnrStats", "analyze", "analyze_model", "find_layers", "snr_db",
]
