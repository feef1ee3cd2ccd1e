"""fuse_scale: a constant Mul (or Div) after Conv/ConvTranspose/Gemm/MatMul folds into the layer's weights and bias.

Exporters write learnable scales (PP-OCRv4's "learnable affine blocks":
``conv(x) * s + b`` with scalar s and b) as separate ops. For a constant m that
is a scalar or varies along axis 1 only (one value per output channel),
``conv(x) * m`` is the conv with W[c] * m[c] and bias b[c] * m[c]; ``conv(x) / d``
the same with m = 1 / d. Folded, the scale costs nothing and is quantized with the
weights instead of as a layer of its own; `fuse_bias` (next in the default
cleanup) then takes the constant Add that usually follows.

The layer's output must have no other reader and no fused activation; its
weight (and bias) must be constant. New weight/bias constants are added (a
shared weight is never changed in place); the layer keeps its name, its output
takes the Mul's name and its origin lists both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult
from npuc.passes.rewrite import absorb_consumer, merge_origins, sole_reader

LAYER_KINDS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def channel_values(c: Tensor, out: Tensor) -> np.ndarray | None:
    """The per-output-channel values (float64, one per channel of `out`) of a constant that is a scalar
    or varies along axis 1 only when broadcast against `out`, else None."""
    if not c.is_const or c.rank > out.rank or out.rank < 2:
        return None
    n = out.shape[1]
    shape = (1,) * (out.rank - c.rank) + tuple(c.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, n):
        return None
    return np.broadcast_to(np.asarray(c.data, np.float64).reshape(-1), (n,)).copy()


def _scaled_weight(graph: Graph, layer: Op, m: np.ndarray) -> np.ndarray | None:
    """The layer's weight with output channel c multiplied by m[c], or None if it cannot be scaled."""
    ins = graph.inputs_of(layer)
    w = ins[1] if len(ins) > 1 else None
    if w is None or not w.is_const:
        return None
    wd = np.asarray(w.data, np.float64)
    n = m.shape[0]
    if layer.kind in ("Conv", "Gemm"):
        return wd * m.reshape((-1,) + (1,) * (wd.ndim - 1)) if wd.shape[0] == n else None
    if layer.kind == "ConvTranspose":  # (Cin, Cout/group, kh, kw)
        g = int(layer.attrs["group"])
        cin, cpg = wd.shape[0], wd.shape[1]
        if cpg * g != n:
            return None
        return (wd.reshape(g, cin // g, cpg, *wd.shape[2:]) * m.reshape(g, 1, cpg, *(1,) * (wd.ndim - 2))).reshape(wd.shape)
    # MatMul x(N, K) @ w(K, n)
    x = ins[0]
    if wd.ndim != 2 or x is None or x.rank != 2 or wd.shape[1] != n:
        return None
    return wd * m.reshape(1, -1)


def _match(graph: Graph, op: Op) -> tuple[Op, Tensor, np.ndarray] | None:
    """(layer, layer output, m) when `op` is a Mul/Div by a per-channel constant of a foldable layer's sole-read output."""
    ins = graph.inputs_of(op)
    if len(ins) != 2 or ins[0] is None or ins[1] is None:
        return None
    pairs = [(ins[0], ins[1]), (ins[1], ins[0])] if op.kind == "Mul" else [(ins[0], ins[1])]
    y = graph.outputs_of(op)[0]
    for t, c in pairs:
        layer = graph.producer(t)
        if layer is None or layer.kind not in LAYER_KINDS or layer.attrs.get("activation") is not None:
            continue
        if sole_reader(graph, t) is not op or y.shape != t.shape or y.dtype != t.dtype or not t.dtype.is_float:
            continue
        m = channel_values(c, t)
        if m is None:
            continue
        if op.kind == "Div":
            if np.any(m == 0) or not np.all(np.isfinite(m)):
                continue
            m = 1.0 / m
        if not np.all(np.isfinite(m)):
            continue
        return layer, t, m
    return None


@dataclass(frozen=True)
class FuseScale(Pass):
    """Fold a scalar or per-channel constant Mul/Div after Conv/ConvTranspose/Gemm/MatMul into its weights and bias."""

    name: ClassVar[str] = "fuse_scale"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        fused = 0
        for op in graph.ops():
            if op.kind not in ("Mul", "Div"):
                continue
            found = _match(graph, op)
            if found is None:
                continue
            layer, out, m = found
            ins = graph.inputs_of(layer)
            bias_t = ins[2] if len(ins) > 2 else None
            if bias_t is not None and not bias_t.is_const:
                continue
            new_w = _scaled_weight(graph, layer, m)
            if new_w is None:
                continue
            w = ins[1]
            graph.set_input(layer, 1, graph.add_const(f"{layer.name}.weight", new_w.astype(w.dtype.numpy), dtype=w.dtype))
            if bias_t is not None:
                new_b = np.asarray(bias_t.data, np.float64) * m
                graph.set_input(layer, 2, graph.add_const(f"{layer.name}.bias", new_b.astype(bias_t.dtype.numpy),
                                                          dtype=bias_t.dtype))
            bn = out.meta.get("batchnorm")
            if bn is not None:  # the BN statistics fold_batchnorm recorded describe the output: scale them too
                out.meta["batchnorm"] = {"beta": np.asarray(bn["beta"], np.float64) * m,
                                         "gamma": np.asarray(bn["gamma"], np.float64) * m}
            layer.origin = merge_origins(layer, op)
            absorb_consumer(graph, out, op)
            fused += 1
        if fused:
            graph.remove_unused_tensors()
        return PassResult.from_counts(fused=fused)
