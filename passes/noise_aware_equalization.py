"""noise_aware_equalization: rescale wide activation channels only as far as the next layer's quantization
noise says it pays.

The problem. An 8-bit activation tensor has one grid (per tensor). When one
channel is ~100x wider than the others (MediaPipe BlazeFace's
``depthwise_conv2d_15``: one channel spans [-411, 0], the median channel 4.8),
every other channel keeps ~1 bit. Cross-layer equalization moves the range
into the next layer's weights: L1's output channel i is divided by s_i and
L2's input channel i multiplied by s_i (exact in float for a linear or ReLU
L1). The activation-aware CLE rule ``s_i = sqrt(a_i / r2_i)`` rescales every
channel of every pair toward a balance of an activation range (data units)
against a weight range (weight units), which is arbitrary: on BlazeFace it
helps the regressors and costs the score logits 6 dB, because the scaled-up
weight columns coarsen L2's per-output-channel weight grids.

This pass chooses the scales by the quantization noise they cause at L2's
output, the quantity that matters, and leaves a pair alone when rescaling does
not lower it.

Model. For a pair L1 -> L2 (the pairs of `cross_layer_equalization`: L1 a
Conv/Gemm with no activation or ReLU, read only by L2, a plain conv or Gemm
or a depthwise conv), with x_i L1's output channel i measured on the
calibration set (lo_i, hi_i its range, m_i = E[x_i^2]) and W2[o, i, t] L2's
weights (t the kernel taps), scales s_i >= 1:

* activation noise: L1's output grid step ``da = (max(0, max hi_i/s_i) -
  min(0, min lo_i/s_i)) / (2^a_bits - 1)``, uniform rounding noise da^2/12 on
  every input, reaching output o through the scaled weights:
  ``N_a = da^2/12 * sum_{o,i,t} (W2[o,i,t] s_i)^2``;
* weight noise: output channel o's weight grid step
  ``dw_o = max_{i,t} |W2[o,i,t]| s_i / (2^(w_bits-1) - 1)`` (per-channel weights),
  noise dw_o^2/12 on each weight, reaching the output through the (scaled) inputs:
  ``N_w = sum_o dw_o^2/12 * sum_{i,t} m_i / s_i^2``.

Candidates clip channel ranges at a threshold T: ``s_i = max(1, r_i / T)``
with r_i = max(|lo_i|, |hi_i|), T from the largest channel range (no change)
down to the smallest, over the distinct channel ranges and 64 geometric steps
between them. The T with the lowest
N_a + N_w is applied when it lowers the modelled noise by at least
`min_gain` (a fraction); otherwise the pair is left alone. L1's weights and
bias rows are divided by s (L1's own weights are per output channel, so this
costs them nothing) and L2's input channels multiplied by s. Every pair is
measured on the float graph once: rescaling a pair changes only the tensor
between L1 and L2 (L2 compensates exactly), so other pairs' statistics hold.

Needs calibration data (an NpucError otherwise). Float outputs are unchanged
(within rounding). The bit widths are options (the defaults are npuc's a8_w8).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.passes.base import Pass, PassContext, PassResult, option

log = logging.getLogger(__name__)

#: thresholds tried between the narrowest and the widest channel range (geometric), besides the ranges
GRID = 64


@dataclass(frozen=True)
class NoiseAwareEqualization(Pass):
    """Rescale wide activation channels into the next conv/gemm's weights, per pair, only as far as the
    modelled 8-bit quantization noise at that layer's output goes down (calibration data)."""

    name: ClassVar[str] = "noise_aware_equalization"

    items: int = option(64, "calibration items measuring channel ranges and mean squares")
    min_gain: float = option(0.1, "rescale a pair only when its modelled output noise falls by this fraction")
    activation_bits: int = option(8, "bits of the activation grid between the two layers")
    weight_bits: int = option(8, "bits of the second layer's (per-output-channel) weights")
    layers: tuple[str, ...] = option((), "only pairs whose first layer matches one of these names/globs (all when empty)")

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ValueError(f"items must be >= 1, got {self.items}")
        if not 0.0 <= self.min_gain < 1.0:
            raise ValueError(f"min_gain must be in [0, 1), got {self.min_gain}")
        if self.activation_bits < 2 or self.weight_bits < 2:
            raise ValueError("activation_bits and weight_bits must be >= 2")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        from npuc.passes.cross_layer_equalization import find_pairs
        from npuc.passes.layer_data import calibration_items, float_values

        pairs = find_pairs(graph, self.layers)
        if not pairs:
            return PassResult.unchanged()
        items = calibration_items(ctx, graph, self.items, self.name)
        stats: dict[str, _Stats] = {}
        by_tensor = {graph.outputs_of(a)[0].name: a.name for a, _ in pairs}

        def reduce(name: str, _i: int, value: np.ndarray) -> None:
            stats.setdefault(by_tensor[name], _Stats()).add(np.asarray(value, np.float64))

        float_values(graph, items, list(by_tensor), reduce)
        rescaled, before, after = 0, 0.0, 0.0
        for a, b in pairs:
            st = stats[a.name]
            w2 = np.asarray(graph.inputs_of(b)[1].data, np.float64)
            s, n0, n1 = best_scales(st.lo, st.hi, st.mean_square(), w2, self.activation_bits, self.weight_bits,
                                    _depthwise(b))
            before += n0
            if n1 > (1.0 - self.min_gain) * n0 or np.all(s == 1.0):
                after += n0
                continue
            after += n1
            _scale_pair(graph, a, b, s)
            rescaled += 1
            log.debug("%s: %s -> %s: %d channel(s) rescaled (max %.3g), modelled noise x%.3f",
                      self.name, a.name, b.name, int(np.sum(s > 1.0)), float(s.max()), n1 / n0)
        if rescaled:
            graph.remove_unused_tensors()
        log.info("%s: rescaled %d of %d pair(s)", self.name, rescaled, len(pairs))
        return PassResult(rescaled > 0, {"pairs": len(pairs), "rescaled": rescaled})


class _Stats:
    """Per-channel min, max and sum of squares of an activation (axis 1) over items."""

    def __init__(self) -> None:
        self.lo = self.hi = self.sq = None
        self.count = 0

    def add(self, v: np.ndarray) -> None:
        x = np.moveaxis(v.reshape(v.shape[0], v.shape[1], -1) if v.ndim > 1 else v[:, None, None], 1, 0)
        x = x.reshape(x.shape[0], -1)
        lo, hi, sq = x.min(axis=1), x.max(axis=1), np.sum(x * x, axis=1)
        if self.lo is None:
            self.lo, self.hi, self.sq = lo, hi, sq
        else:
            self.lo, self.hi, self.sq = np.minimum(self.lo, lo), np.maximum(self.hi, hi), self.sq + sq
        self.count += x.shape[1]

    def mean_square(self) -> np.ndarray:
        return self.sq / max(self.count, 1)


def modelled_noise(s: np.ndarray, lo: np.ndarray, hi: np.ndarray, ms: np.ndarray, w2: np.ndarray,
                   activation_bits: int, weight_bits: int, depthwise: bool = False) -> float:
    """Modelled quantization noise power summed over L2's outputs for input-channel scales s (module docstring).

    A depthwise L2 (weight (C, 1, kh, kw)) reads channel i with its own filter i only."""
    da = (max(0.0, float(np.max(hi / s))) - min(0.0, float(np.min(lo / s)))) / float((1 << activation_bits) - 1)
    wmax = float((1 << (weight_bits - 1)) - 1)
    if depthwise:
        w = w2.reshape(w2.shape[0], -1) * s[:, None]
        act = da * da / 12.0 * float(np.sum(w * w))
        dw = np.max(np.abs(w), axis=1) / wmax  # grows with s_i as the input shrinks by it: a constant
        return act + float(np.sum(dw * dw / 12.0 * ms / (s * s)) * w.shape[1])
    w = w2.reshape(w2.shape[0], w2.shape[1], -1) * s[None, :, None]
    act = da * da / 12.0 * float(np.sum(w * w))
    dw = np.max(np.abs(w), axis=(1, 2)) / wmax
    wgt = float(np.sum(dw * dw) / 12.0 * np.sum(ms / (s * s)) * w.shape[2])
    return act + wgt


def best_scales(lo: np.ndarray, hi: np.ndarray, ms: np.ndarray, w2: np.ndarray, activation_bits: int = 8,
                weight_bits: int = 8, depthwise: bool = False) -> tuple[np.ndarray, float, float]:
    """(s, noise with s = 1, noise with s): the clipping threshold's scales with the least modelled noise."""
    r = np.maximum(np.abs(lo), np.abs(hi))
    ones = np.ones_like(r)
    base = modelled_noise(ones, lo, hi, ms, w2, activation_bits, weight_bits, depthwise)
    best_s, best = ones, base
    pos = r[r > 0]
    if pos.size == 0:
        return ones, base, base
    grid = np.geomspace(pos.min(), pos.max(), GRID) if pos.max() > pos.min() else pos[:1]
    for t in np.unique(np.concatenate([pos, grid]))[::-1][1:]:
        s = np.maximum(1.0, r / t)
        n = modelled_noise(s, lo, hi, ms, w2, activation_bits, weight_bits, depthwise)
        if n < best:
            best_s, best = s, n
    return best_s, base, best


def _depthwise(op: Op) -> bool:
    """find_pairs' second layers are plain (group 1) convs / Gemms or depthwise convs."""
    return op.kind == "Conv" and int(op.attrs.get("group", 1)) > 1


def _scale_pair(graph: Graph, a: Op, b: Op, s: np.ndarray) -> None:
    """L1's output channels / s (weights and bias), L2's input channels * s; new constants."""
    ins_a, ins_b = graph.inputs_of(a), graph.inputs_of(b)
    w1 = np.asarray(ins_a[1].data, np.float64) / s.reshape((-1,) + (1,) * (ins_a[1].data.ndim - 1))
    axis = 0 if _depthwise(b) else 1  # the weight axis of L2's input channels
    w2 = np.asarray(ins_b[1].data, np.float64) * s.reshape((1,) * axis + (-1,) + (1,) * (ins_b[1].data.ndim - 1 - axis))
    dt1, dt2 = ins_a[1].dtype, ins_b[1].dtype
    graph.set_input(a, 1, graph.add_const(f"{a.name}.weight_nae", w1.astype(dt1.numpy), dtype=dt1))
    if len(ins_a) > 2 and ins_a[2] is not None:
        b1 = np.asarray(ins_a[2].data, np.float64) / s.reshape(np.shape(ins_a[2].data) or (1,))
        graph.set_input(a, 2, graph.add_const(f"{a.name}.bias_nae", b1.astype(ins_a[2].dtype.numpy),
                                              dtype=ins_a[2].dtype))
    graph.set_input(b, 1, graph.add_const(f"{b.name}.weight_nae", w2.astype(dt2.numpy), dtype=dt2))
    graph.reinfer(a)
    graph.reinfer(b)
