"""Quantization entropy: KL divergence of each layer's weights and outputs, quantized vs float.

KL(P_float || P_quant) in nats between histograms over the same bins (128 bins
over the output encoding's range +-10%; 512 over the weights' range). For
outputs, P_quant is the layer's output with only that layer quantized (its own
quantization, without upstream error) when the sensitivity analysis runs, else
with all layers quantized. The
quantized histogram has empty bins wherever the float one spreads between two
quantization levels, so it is smoothed as TensorRT's entropy calibrator does:
a small mass (EPS) moves into every bin where the float histogram has mass and
the quantized one has none, from the quantized histogram's non-empty bins. Coarse
(8-bit) grids give high values, 16-bit grids values near 0: the file ranks the
layers that would gain most from 16 bits. Written as `quantization_entropy.txt`,
one `<layer>:out<k>, <kl>` or `<layer>:weight, <kl>` line per entry, highest first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npuc.ir.tensor import Tensor
from npuc.quantization.schemes import dequantize

EPS = 1e-4
#: bins of the weight histograms
WEIGHT_BINS = 512


def _smooth(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Give every bin where P has mass and Q has none EPS, taken evenly from Q's non-empty bins."""
    zero = (q == 0) & (p > 0)
    nz = int((q > 0).sum())
    nzero = int(zero.sum())
    if nz == 0 or nzero == 0:
        return q
    out = q.astype(np.float64).copy()
    out[zero] = EPS
    filled = q > 0
    out[filled] = np.clip(out[filled] - EPS * nzero / nz, EPS * 1e-3, None)
    return out


def kl_divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """KL(P || Q) in nats of two histograms over the same bins (Q smoothed; 0 when P is empty)."""
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p = p / p.sum()
    q = _smooth(q / q.sum(), p)
    q = q / q.sum()
    m = p > 0
    return float(max(0.0, np.sum(p[m] * np.log(p[m] / q[m]))))


def weight_kl(float_weight: Tensor, quant_weight: Tensor) -> float:
    """KL of the float weights vs the dequantized quantized weights, over the float weights' range."""
    f = np.asarray(float_weight.data, dtype=np.float64).ravel()
    w = dequantize(quant_weight.data, quant_weight.quant, np.float64).ravel()  # type: ignore[arg-type]
    lo, hi = float(min(f.min(), w.min())), float(max(f.max(), w.max()))
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, WEIGHT_BINS + 1)
    return kl_divergence(np.histogram(f, edges)[0], np.histogram(w, edges)[0])


@dataclass(frozen=True)
class EntropyEntry:
    """One line of the quantization entropy file."""

    layer: str
    what: str  # "out0", "out1", ... or "weight"
    kl: float

    def line(self) -> str:
        return f"{self.layer}:{self.what}, {self.kl:.6f}"


def sorted_entries(entries: list[EntropyEntry]) -> list[EntropyEntry]:
    """Highest KL first; ties by layer name and kind for a deterministic file."""
    return sorted(entries, key=lambda e: (-e.kl, e.layer, e.what))


def write_entropy_file(entries: list[EntropyEntry], path: Path) -> Path:
    """Write `quantization_entropy.txt` (highest first)."""
    path = Path(path)
    path.write_text("".join(e.line() + "\n" for e in sorted_entries(entries)), encoding="utf-8")
    return path
