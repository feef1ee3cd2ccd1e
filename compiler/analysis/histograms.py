"""Histograms of a layer's output, float vs quantized, over fixed bins (overall and per channel), plus scatter samples.

Bins are fixed before the first sample so histograms of many samples add up:
the quantized output's representable range (its encoding) widened by 10% on each
side, so values the encoding clips still land in bins of their own. Float16
outputs (no encoding) use the first sample's float range widened by 50%.
"""
from __future__ import annotations

import numpy as np

from npuc.ir.tensor import Tensor
from npuc.quantization.schemes import representable_range

#: bins of the overall histogram (KL divergence of the output, overall plot)
BINS = 128
#: bins of each per-channel histogram (plots)
CHANNEL_BINS = 64
#: (float, quantized) pairs kept per layer for the scatter plot
SCATTER_POINTS = 4000
_MARGIN = 0.10


def encoding_range(tensor: Tensor) -> tuple[float, float] | None:
    """Real range of a per-tensor encoding widened by 10% each side; None without an encoding."""
    if tensor.quant is None or tensor.quant.axis is not None:
        return None
    lo, hi = representable_range(tensor.quant)
    lo, hi = float(lo[0]), float(hi[0])
    pad = (hi - lo) * _MARGIN
    return lo - pad, hi + pad


class LayerHistogram:
    """Float and quantized histograms of one output tensor, summed over samples."""

    def __init__(self, tensor: Tensor, channel_axis: int | None, seed: int = 0, scatter: bool = True) -> None:
        self.name = tensor.name
        self.range = encoding_range(tensor)
        self.axis = channel_axis
        self.channels = tensor.shape[channel_axis] if channel_axis is not None else 0
        self.float_counts = np.zeros(BINS, np.int64)
        self.quant_counts = np.zeros(BINS, np.int64)
        self.float_channel = np.zeros((self.channels, CHANNEL_BINS), np.int64)
        self.quant_channel = np.zeros((self.channels, CHANNEL_BINS), np.int64)
        self.scatter_float: list[np.ndarray] = []
        self.scatter_quant: list[np.ndarray] = []
        self._scatter_left = SCATTER_POINTS if scatter else 0
        self._rng = np.random.default_rng(seed)

    @property
    def edges(self) -> np.ndarray:
        lo, hi = self.range if self.range is not None else (0.0, 1.0)
        return np.linspace(lo, hi, BINS + 1)

    @property
    def channel_edges(self) -> np.ndarray:
        lo, hi = self.range if self.range is not None else (0.0, 1.0)
        return np.linspace(lo, hi, CHANNEL_BINS + 1)

    def _bins(self, x: np.ndarray, n: int) -> np.ndarray:
        lo, hi = self.range  # type: ignore[misc]
        idx = ((x.astype(np.float64) - lo) * (n / (hi - lo))).astype(np.int64)
        return np.clip(idx, 0, n - 1, out=idx)

    def _channel_counts(self, x: np.ndarray) -> np.ndarray:
        moved = np.moveaxis(x, self.axis, 0).reshape(self.channels, -1)  # type: ignore[arg-type]
        b = self._bins(moved, CHANNEL_BINS) + (np.arange(self.channels, dtype=np.int64) * CHANNEL_BINS)[:, None]
        return np.bincount(b.ravel(), minlength=self.channels * CHANNEL_BINS).reshape(self.channels, CHANNEL_BINS)

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Accumulate one sample: the float value `ref` and the dequantized value `test`."""
        ref = np.asarray(ref)
        test = np.asarray(test)
        if self.range is None:
            lo, hi = float(np.min(ref)), float(np.max(ref))
            pad = max(hi - lo, 1e-6) * 0.5
            self.range = (lo - pad, hi + pad)
        self.float_counts += np.bincount(self._bins(ref.ravel(), BINS), minlength=BINS)
        self.quant_counts += np.bincount(self._bins(test.ravel(), BINS), minlength=BINS)
        if self.channels:
            self.float_channel += self._channel_counts(ref)
            self.quant_channel += self._channel_counts(test)
        if self._scatter_left > 0:
            k = min(self._scatter_left, max(SCATTER_POINTS // 4, 1), ref.size)
            idx = self._rng.choice(ref.size, size=k, replace=False)
            self.scatter_float.append(ref.ravel()[idx].astype(np.float32))
            self.scatter_quant.append(test.ravel()[idx].astype(np.float32))
            self._scatter_left -= k

    def scatter(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept (float, quantized) pairs."""
        if not self.scatter_float:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return np.concatenate(self.scatter_float), np.concatenate(self.scatter_quant)
