"""Signal-to-noise ratio in dB, accumulated over samples (and per channel where a tensor has channels)."""
from __future__ import annotations

import math

import numpy as np

#: layers whose SNR is below this are flagged
FLAG_THRESHOLD_DB = 10.0
#: the lowest SNR reported (a reference with no signal at all but some noise)
SNR_FLOOR_DB = -300.0


def snr_db(signal_power: float, noise_power: float) -> float | None:
    """10*log10(signal / noise), at least SNR_FLOOR_DB; None when there is no noise at all (bit-identical)."""
    if noise_power <= 0.0:
        return None
    if signal_power <= 0.0:
        return SNR_FLOOR_DB
    return max(SNR_FLOOR_DB, 10.0 * math.log10(signal_power / noise_power))


def channel_axis(shape: tuple[int, ...], layout: str | None = None) -> int | None:
    """The channel axis of an activation (NCHW: 1; NHWC layouts: last), None when it has no channels."""
    if len(shape) < 2:
        return None
    axis = len(shape) - 1 if layout and layout.upper().endswith("C") and len(shape) == 4 else 1
    return axis if shape[axis] > 1 else None


class SnrStats:
    """Running sums of signal power (sum ref^2) and noise power (sum (test-ref)^2) over samples.

    With a channel axis the sums are also kept per channel, so the worst channels
    of a layer can be named.
    """

    def __init__(self, channels: int | None = None, axis: int | None = None) -> None:
        self.signal = 0.0
        self.noise = 0.0
        self.count = 0
        self.axis = axis if channels else None
        self.channel_signal = np.zeros(channels or 0, np.float64)
        self.channel_noise = np.zeros(channels or 0, np.float64)

    def add(self, ref: np.ndarray, test: np.ndarray) -> None:
        """Accumulate one sample (same shapes; computed in float64)."""
        r = np.asarray(ref, dtype=np.float64)
        e = np.asarray(test, dtype=np.float64) - r
        if self.axis is not None:
            other = tuple(i for i in range(r.ndim) if i != self.axis)
            cs = np.square(r).sum(axis=other)
            cn = np.square(e).sum(axis=other)
            self.channel_signal += cs
            self.channel_noise += cn
            self.signal += float(cs.sum())
            self.noise += float(cn.sum())
        else:
            self.signal += float(np.vdot(r, r))
            self.noise += float(np.vdot(e, e))
        self.count += r.size

    @property
    def db(self) -> float | None:
        """SNR over everything accumulated (None: no noise)."""
        return snr_db(self.signal, self.noise)

    def channel_db(self) -> np.ndarray:
        """Per-channel SNR in dB (inf where a channel has no noise, -inf where it has no signal)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 10.0 * np.log10(self.channel_signal / self.channel_noise)
        out[self.channel_noise == 0] = np.inf
        return out
