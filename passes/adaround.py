"""adaround: learn whether each integer weight rounds up or down (Nagel et al. 2020, arXiv 2004.10568).

Per quantized Conv/Gemm layer (topological order, weights of at most 8 bits),
with the layer's weight scale s (per channel or per tensor, as `quantize` chose):

    W~ = s * clip(floor(W / s) + h(V), qmin, qmax),   h(V) = clip(sigmoid(V) * (zeta - gamma) + gamma, 0, 1)

and V is learned with Adam (numpy) to minimise

    mean over positions of sum over channels (f(W~ x~ + b~) - f(W x + b))**2  +  lambda * sum (1 - |2 h(V) - 1|**beta)

where f is the layer's fused activation, x~ the layer's input in the quantized
model (every layer above already rounded: the quantized model runs op by op on
all items, `layer_data.run_lockstep`), W x + b the float model's output and b~
the quantized bias. beta anneals from 20 to 2 after a warm-up without the
regulariser (a `warmup` fraction of the iterations). V starts where h(V) equals
the fractional part, i.e. at round-to-nearest's neighbourhood.

Cost control (CPU): the reconstruction set is `samples` output positions
sampled per layer over the calibration items (im2col rows, so a conv is a
batched matmul), and each Adam step uses a `batch` of those rows. Finally the
hard rounding floor(W / s) + [h(V) >= 0.5] is written back into the integer
weight; scales, biases and every other parameter stay as they are.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.layer_data import (PatchGeometry, activate, activation_mask, calibration_items, channel_rows,
                                    dequantized, float_graph, float_values, is_integer_layer, mac_layers, real_bias,
                                    run_lockstep, sample_positions)

log = logging.getLogger(__name__)

ZETA, GAMMA = 1.1, -0.1


@dataclass(frozen=True)
class AdaRoundSettings:
    """Optimisation settings of one layer."""

    iterations: int = 1000
    learning_rate: float = 1e-2
    regularization: float = 0.01
    warmup: float = 0.2
    beta_range: tuple[float, float] = (20.0, 2.0)
    batch: int = 256
    seed: int = 0


@dataclass(frozen=True)
class AdaRoundResult:
    """Learned integer weight of one layer and its reconstruction errors (mean squared, on the samples)."""

    weight: np.ndarray
    nearest_error: float
    adaround_error: float
    flipped: int


def _h(v: np.ndarray) -> np.ndarray:
    return np.clip(1.0 / (1.0 + np.exp(-v)) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _forward(op: Op, patches: np.ndarray, w_real: np.ndarray, bias: np.ndarray, geo: PatchGeometry):
    """(pre-activation, output) of the layer on (P, groups, K) patches; w_real is (groups, opg, K)."""
    pre = np.einsum("pgk,gok->pgo", patches, w_real, optimize=True).reshape(len(patches), -1) + bias
    return pre, activate(op, pre)


def adaround_layer(op: Op, geo: PatchGeometry, w_float: np.ndarray, scale: np.ndarray, qmin: int, qmax: int,
                   bias: np.ndarray, patches: np.ndarray, target: np.ndarray,
                   settings: AdaRoundSettings = AdaRoundSettings()) -> AdaRoundResult:
    """Learn the rounding of one layer.

    w_float: float weight (out, ...); scale: per-output-channel (or scalar) weight scale; bias: real bias
    per output channel; patches: (P, groups, K) quantized-model inputs; target: (P, out) float outputs.
    """
    shape = w_float.shape
    s = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1, *([1] * (w_float.ndim - 1))), shape)
    ratio = w_float / s
    base = np.floor(ratio)
    rest = ratio - base
    v = -np.log((ZETA - GAMMA) / (np.clip(rest, 1e-4, 1 - 1e-4) - GAMMA) - 1.0)  # h(v) == rest
    rng = np.random.default_rng(settings.seed)
    s32 = s.astype(np.float32)
    patches = patches.astype(np.float32)
    target = target.astype(np.float32)
    bias = bias.astype(np.float32)
    m, u = np.zeros_like(v), np.zeros_like(v)
    b1, b2, eps = 0.9, 0.999, 1e-8
    warm = int(settings.warmup * settings.iterations)

    def weight_of(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = base + h
        inside = (q >= qmin) & (q <= qmax)
        return (np.clip(q, qmin, qmax) * s).astype(np.float32), inside

    for it in range(settings.iterations):
        rows = rng.choice(len(patches), size=min(settings.batch, len(patches)), replace=False)
        x, t = patches[rows], target[rows]
        sig = 1.0 / (1.0 + np.exp(-v))
        h_raw = sig * (ZETA - GAMMA) + GAMMA
        h = np.clip(h_raw, 0.0, 1.0)
        w_real, inside = weight_of(h)
        pre, y = _forward(op, x, geo.weight_matrix(w_real), bias, geo)
        dy = 2.0 * (y - t) / len(rows)
        mask = activation_mask(op, pre)
        if mask is not None:
            dy = dy * mask
        dy3 = dy.reshape(len(rows), geo.groups, -1)
        dw = np.einsum("pgo,pgk->gok", dy3, x, optimize=True).reshape(shape)
        grad_h = dw * s32 * inside
        if it >= warm:
            frac = (it - warm) / max(1, settings.iterations - warm)
            beta = settings.beta_range[0] + frac * (settings.beta_range[1] - settings.beta_range[0])
            d = 2.0 * h - 1.0
            grad_h = grad_h + settings.regularization * (-beta * np.abs(d) ** (beta - 1.0) * np.sign(d) * 2.0)
        grad_v = grad_h * ((h_raw > 0.0) & (h_raw < 1.0)) * sig * (1.0 - sig) * (ZETA - GAMMA)
        m = b1 * m + (1 - b1) * grad_v
        u = b2 * u + (1 - b2) * grad_v * grad_v
        mh, uh = m / (1 - b1 ** (it + 1)), u / (1 - b2 ** (it + 1))
        v = v - settings.learning_rate * mh / (np.sqrt(uh) + eps)

    nearest = np.clip(np.rint(ratio), qmin, qmax)
    learned = np.clip(base + (_h(v) >= 0.5), qmin, qmax)

    def error(q: np.ndarray) -> float:
        _, y = _forward(op, patches, geo.weight_matrix((q * s).astype(np.float32)), bias, geo)
        return float(np.mean(np.sum((y - target) ** 2, axis=1)))

    return AdaRoundResult(learned.astype(np.int64), error(nearest), error(learned), int(np.sum(learned != nearest)))


@dataclass(frozen=True)
class AdaRound(Pass):
    """AdaRound: learn up/down rounding of each conv/gemm's integer weights to minimise its output
    reconstruction error on the calibration set (numpy, CPU)."""

    name: ClassVar[str] = "adaround"
    requires: ClassVar[tuple[str, ...]] = ("quantized",)

    iterations: int = option(1000, "Adam steps per layer")
    lr: float = option(1e-2, "Adam learning rate of the rounding variables")
    regularization: float = option(0.01, "weight lambda of the rounding regulariser")
    warmup: float = option(0.2, "fraction of the iterations before the regulariser starts")
    batch: int = option(256, "sampled output positions per Adam step")
    samples: int = option(2048, "output positions sampled per layer over the calibration items")
    dataset_size: int = option(32, "calibration items used (a seeded sample when the set is larger)")
    layers: tuple[str, ...] = option((), "layers to optimise (names, origins or globs); all conv/gemm when empty")
    seed: int = option(0, "seed of the position sampling and batches")

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch < 1 or self.samples < 1 or self.dataset_size < 1:
            raise ValueError("adaround: iterations, batch, samples and dataset_size must be >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"adaround: warmup must be in [0, 1), got {self.warmup}")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        fg = float_graph(ctx, self.name)
        targets = [op for op in mac_layers(graph, self.layers)
                   if is_integer_layer(graph, op) and fg.has_op(op.name) and graph.inputs_of(op)[1].quant.bits <= 8]
        if not targets:
            log.info("adaround: no integer conv/gemm layer with <= 8-bit weights to optimise")
            return PassResult.unchanged()
        items = calibration_items(ctx, fg, self.dataset_size, self.name)
        rng = np.random.default_rng(self.seed)
        per_item = max(1, self.samples // len(items))
        positions = {op.name: [sample_positions(rng, graph.outputs_of(op)[0].shape, per_item) for _ in items]
                     for op in targets}
        out_of = {fg.outputs_of(fg.op(op.name))[0].name: op.name for op in targets}
        targets_f: dict[str, list[np.ndarray]] = {op.name: [None] * len(items) for op in targets}

        def keep(tensor: str, i: int, value: np.ndarray) -> None:
            name = out_of[tensor]
            targets_f[name][i] = channel_rows(value, positions[name][i])

        float_values(fg, items, list(out_of), keep)
        settings = AdaRoundSettings(self.iterations, self.lr, self.regularization, self.warmup, batch=self.batch,
                                    seed=self.seed)
        wanted = {op.name for op in targets}
        before_after: list[tuple[float, float]] = []
        flipped = 0

        def before(op: Op, inputs) -> bool:
            nonlocal flipped
            if op.name not in wanted:
                return False
            res = self._layer(graph, fg, op, inputs, positions[op.name], targets_f[op.name], settings)
            before_after.append((res.nearest_error, res.adaround_error))
            flipped += res.flipped
            return True

        run_lockstep(graph, items, before, stop_after=targets[-1])
        gain = [a / b for b, a in before_after if b > 0]
        log.info("adaround: %d layer(s), %d weight(s) rounded the other way, reconstruction error x%.3f (geo-mean)",
                 len(targets), flipped, float(np.exp(np.mean(np.log(np.maximum(gain, 1e-12))))) if gain else 1.0)
        return PassResult(True, {"layers": len(targets), "flipped": flipped, "items": len(items)})

    def _layer(self, graph: Graph, fg: Graph, op: Op, inputs, positions, target_rows, settings) -> AdaRoundResult:
        ins = graph.inputs_of(op)
        x, w = ins[0], ins[1]
        geo = PatchGeometry.of(graph, op)
        patches = np.concatenate([geo.patches(dequantized(graph, x, item[0]).astype(np.float32), pos)
                                  for item, pos in zip(inputs, positions)])
        target = np.concatenate(target_rows)
        w_float = np.asarray(fg.inputs_of(fg.op(op.name))[1].data, np.float64)
        scale = np.asarray(w.quant.scale, np.float64)
        qmin, qmax = -((1 << (w.quant.bits - 1)) - 1), (1 << (w.quant.bits - 1)) - 1  # narrow symmetric range
        bias = real_bias(ins[2] if len(ins) > 2 else None, w.shape[0])
        res = adaround_layer(op, geo, w_float, scale, qmin, qmax, bias, patches, target, settings)
        if res.adaround_error <= res.nearest_error:
            arr = res.weight.astype(w.dtype.numpy)
            arr.flags.writeable = False
            w.data = arr
        else:  # never make a layer worse on its own reconstruction set
            log.info("adaround: '%s' keeps round-to-nearest (%.4g < %.4g)", op.name, res.nearest_error,
                     res.adaround_error)
        log.debug("adaround: %s error %.4g -> %.4g, %d flipped", op.name, res.nearest_error, res.adaround_error,
                  res.flipped)
        return res
