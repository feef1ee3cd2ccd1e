"""The analysis results: per-layer rows ranked worst first, the JSON file and the console table."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from npuc.analysis.entropy import EntropyEntry


@dataclass
class LayerResult:
    """Everything the analysis found about one layer."""

    name: str
    kind: str
    origin: list[str]
    index: int  # topological position among the analysed layers
    dtype: str
    sensitivity_db: dict[str, float | None]  # model output -> SNR with only this layer quantized
    layer_snr_db: dict[str, float | None]  # own output tensor -> SNR with all layers quantized
    worst_channels: dict[str, list[tuple[int, float]]]  # own output -> [(channel, SNR dB)], worst first
    kl: dict[str, float]  # "out0".., "weight" -> KL divergence
    rank: int = 0
    flagged: bool = False
    reasons: list[str] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)  # kind -> path relative to the report folder

    @property
    def sensitivity_min_db(self) -> float | None:
        vals = [v for v in self.sensitivity_db.values() if v is not None]
        return min(vals) if vals else None

    @property
    def layer_snr_min_db(self) -> float | None:
        vals = [v for v in self.layer_snr_db.values() if v is not None]
        return min(vals) if vals else None

    def flag(self, threshold: float) -> None:
        """Set `flagged` and the reasons from the SNRs against `threshold` dB."""
        self.reasons = []
        s, own = self.sensitivity_min_db, self.layer_snr_min_db
        if s is not None and s < threshold:
            self.reasons.append(f"sensitivity {s:.1f} dB < {threshold:g} dB")
        if own is not None and own < threshold:
            self.reasons.append(f"layer SNR {own:.1f} dB < {threshold:g} dB")
        self.flagged = bool(self.reasons)


def _rank_key(r: LayerResult) -> tuple[float, float, int]:
    s = r.sensitivity_min_db
    own = r.layer_snr_min_db
    return (math.inf if s is None else s, math.inf if own is None else own, r.index)


@dataclass
class AnalysisReport:
    """Results of `npuc analyze` (layers ranked worst first)."""

    model: str
    samples: int
    threshold_db: float
    outputs: list[str]
    output_snr_db: dict[str, float | None]  # all layers quantized, at the model outputs
    layers: list[LayerResult]
    entropy: list[EntropyEntry]
    seconds: dict[str, float] = field(default_factory=dict)
    charts: dict[str, str] = field(default_factory=dict)  # chart name -> path relative to the report folder
    #: output tensor -> float/quantized histograms and scatter samples (for the plots; not in the JSON)
    histograms: dict[str, Any] = field(default_factory=dict, repr=False)

    def rank(self) -> None:
        """Order layers worst first (lowest output SNR with only that layer quantized) and flag them."""
        self.layers.sort(key=_rank_key)
        for i, r in enumerate(self.layers, 1):
            r.rank = i
            r.flag(self.threshold_db)

    @property
    def flagged(self) -> list[LayerResult]:
        return [r for r in self.layers if r.flagged]

    def by_name(self, name: str) -> LayerResult:
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (SNR null = no noise at all)."""
        layers = []
        for r in self.layers:
            d = asdict(r)
            d["sensitivity_min_db"] = r.sensitivity_min_db
            d["layer_snr_min_db"] = r.layer_snr_min_db
            d["worst_channels"] = {k: [[c, _finite(v)] for c, v in chans] for k, chans in r.worst_channels.items()}
            layers.append(d)
        return {
            "model": self.model,
            "samples": self.samples,
            "threshold_db": self.threshold_db,
            "snr_definition": "10*log10(sum(float^2) / sum((quantized - float)^2)) over all samples; null = no noise",
            "outputs": self.outputs,
            "output_snr_db": self.output_snr_db,
            "flagged": [r.name for r in self.flagged],
            "layers": layers,
            "quantization_entropy": [{"layer": e.layer, "what": e.what, "kl": e.kl} for e in self.entropy],
            "charts": self.charts,
            "seconds": self.seconds,
        }

    def write_json(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
        return path


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _fmt(v: float | None) -> str:
    return "exact" if v is None else f"{v:.1f}"


def render_table(report: AnalysisReport, limit: int = 15):
    """A rich table of the `limit` worst layers."""
    from rich.table import Table

    table = Table(title=f"worst layers of {report.model} ({report.samples} samples; "
                        f"< {report.threshold_db:g} dB flagged)")
    for col, justify in (("#", "right"), ("layer", "left"), ("op", "left"), ("dtype", "left"),
                         ("only-this-layer SNR dB", "right"), ("own SNR dB (all quantized)", "right"),
                         ("KL out", "right"), ("KL weight", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in report.layers[:limit]:
        kl_out = max((v for k, v in r.kl.items() if k.startswith("out")), default=None)
        kl_w = r.kl.get("weight")
        style = "bold red" if r.flagged else None
        table.add_row(str(r.rank), r.name, r.kind, r.dtype, _fmt(r.sensitivity_min_db), _fmt(r.layer_snr_min_db),
                      "" if kl_out is None else f"{kl_out:.3f}", "" if kl_w is None else f"{kl_w:.3f}",
                      "FLAGGED" if r.flagged else "", style=style)
    return table
