"""Padded and phase-split ("wide") layouts of NCHW images for sliding-window kernels.

A strided, dilated window over a padded image is turned into contiguous
slices: the padded image is split into stride phases (phase (py, px) holds
rows py, py+sh, ... and columns px, px+sw, ...), each phase is flattened to
one row of length L per channel, and the output is computed on a *wide* grid
of oh rows by Wq columns (Wq = phase width). Kernel tap (ky, kx) then reads
the contiguous slice ``flat[phase, :, off : off + oh * Wq]`` for all output
pixels at once; the last Wq - ow columns of every wide row are junk and are
dropped at the end. Every loop in the kernels is over taps, never pixels, and
every numpy call works on long contiguous rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def pad_spatial(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the two spatial dims of an NCHW array; pads = (top, left, bottom, right). Returns x when no padding."""
    pt, pl, pb, pr = (int(p) for p in pads)
    if not (pt or pl or pb or pr):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _phase_span(pad: int, phase: int, stride: int, size: int, count: int) -> tuple[int, int, int]:
    """(first phase index, first source index, number of source samples) of one phase along one axis."""
    first = max(0, -(-(pad - phase) // stride))  # first phase index whose padded position is inside the image
    src = first * stride + phase - pad
    n = max(0, min(count - first, len(range(src, size, stride)))) if src < size else 0
    return first, src, n


@dataclass(frozen=True)
class WideGeometry:
    """Where each kernel tap reads in the phase-split flat layout, for one conv/pool configuration."""

    oh: int
    ow: int
    hq: int  # phase height (padded height / stride, rounded up)
    wq: int  # phase width = wide output row length
    taps: tuple[tuple[int, int], ...]  # (phase index, flat offset) per tap, row-major over (ky, kx)
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]

    @property
    def wide_len(self) -> int:
        """Length of the wide output row per channel (oh * wq)."""
        return self.oh * self.wq

    @property
    def flat_len(self) -> int:
        """Length of each flattened phase (one spare row so every tap slice stays in bounds)."""
        return (self.hq + 1) * self.wq

    @classmethod
    def make(cls, h: int, w: int, kernel, strides, pads, dilations, oh: int, ow: int) -> "WideGeometry":
        """The geometry of a window (kernel, strides, pads, dilations) over an h x w image giving oh x ow outputs."""
        return _make_geometry(cls, int(h), int(w), tuple(int(k) for k in kernel), tuple(int(s) for s in strides),
                              tuple(int(p) for p in pads), tuple(int(d) for d in dilations), int(oh), int(ow))

    @classmethod
    def _build(cls, h: int, w: int, kernel, strides, pads, dilations, oh: int, ow: int) -> "WideGeometry":
        kh, kw = (int(k) for k in kernel)
        sh, sw = (int(s) for s in strides)
        dh, dw = (int(d) for d in dilations)
        pt, pl, pb, pr = (int(p) for p in pads)
        # padded extent actually read (ceil-mode pooling windows may overhang the explicit padding)
        hp = max(h + pt + pb, (oh - 1) * sh + dh * (kh - 1) + 1)
        wp = max(w + pl + pr, (ow - 1) * sw + dw * (kw - 1) + 1)
        hq, wq = -(-hp // sh), -(-wp // sw)
        taps = []
        for ky in range(kh):
            for kx in range(kw):
                ry, rx = ky * dh, kx * dw
                taps.append(((ry % sh) * sw + (rx % sw), (ry // sh) * wq + (rx // sw)))
        return cls(oh, ow, hq, wq, tuple(taps), (sh, sw), (pt, pl, pb, pr), (dh, dw))

    def flatten(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(phases, C, flat_len) layout of one padded CHW image (a single strided copy per phase)."""
        c, h, w = x.shape
        sh, sw = self.strides
        pt, pl = self.pads[0], self.pads[1]
        buf = np.full((sh * sw, c, self.hq + 1, self.wq), fill, dtype=x.dtype)
        for py in range(sh):
            r0, i0, nr = _phase_span(pt, py, sh, h, self.hq)
            for px in range(sw):
                c0, j0, nc = _phase_span(pl, px, sw, w, self.wq)
                if nr and nc:
                    buf[py * sw + px, :, r0:r0 + nr, c0:c0 + nc] = x[:, i0:i0 + (nr - 1) * sh + 1:sh,
                                                                       j0:j0 + (nc - 1) * sw + 1:sw]
        return buf.reshape(sh * sw, c, self.flat_len)

    def tap_view(self, flat: np.ndarray, kh: int, kw: int) -> np.ndarray:
        """Read-only (C, kh, kw, wide_len) view of every tap's row, for stride 1 (a single phase).

        `flat` is one phase, (C, flat_len), with unit element stride along the last axis.
        """
        if self.strides != (1, 1):
            raise ValueError("tap_view needs stride 1")
        dh, dw = self.dilations
        item = flat.strides[-1]
        return np.lib.stride_tricks.as_strided(
            flat, (flat.shape[0], kh, kw, self.wide_len),
            (flat.strides[0], dh * self.wq * item, dw * item, item), writeable=False)

    def narrow(self, wide: np.ndarray) -> np.ndarray:
        """View of the valid (oh, ow) pixels of a (..., oh * wq) wide array."""
        return wide.reshape(wide.shape[:-1] + (self.oh, self.wq))[..., : self.ow]


@lru_cache(maxsize=1024)
def _make_geometry(cls, h, w, kernel, strides, pads, dilations, oh, ow) -> WideGeometry:
    return cls._build(h, w, kernel, strides, pads, dilations, oh, ow)
