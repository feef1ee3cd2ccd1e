"""fuse_bias: a per-channel or scalar constant Add after Conv/ConvTranspose/Gemm becomes the layer's bias;
MatMul by a constant matrix becomes a Gemm first.

Exporters write fully connected layers as ``Add(MatMul(x, W), b)`` and some
write conv biases as a separate Add. As a bias it is added in the accumulator
(one requantization instead of two after quantization), and a MatMul by a
constant is priced and quantized per output channel like any fully connected
layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.passes.base import Pass, PassContext, PassResult
from npuc.passes.rewrite import absorb_consumer, merge_origins, sole_reader


def _bias_vector(graph: Graph, layer: Op) -> tuple[Op, np.ndarray] | None:
    """The Add reading only the layer's output with a constant that is a scalar or varies along axis 1 only,
    and its values, one per output channel (a scalar is broadcast to every channel)."""
    out = graph.outputs_of(layer)[0]
    add = sole_reader(graph, out)
    if add is None or add.kind != "Add":
        return None
    ins = graph.inputs_of(add)
    other = ins[1] if ins[0] is out else ins[0]
    if other is None or other is out or not other.is_const:
        return None
    m = out.shape[1]
    spatial = (1,) * (out.rank - 2)
    if graph.outputs_of(add)[0].shape != out.shape:
        return None
    if other.size == 1 and other.rank <= out.rank:  # shape (), (1,), (1, 1, 1, 1): the same bias on every channel
        return add, np.full(m, float(np.asarray(other.data).reshape(-1)[0]), np.float64)
    if other.shape not in ((m,) if out.rank == 2 else (), (1, m) + spatial, (m,) + spatial):
        return None
    return add, np.asarray(other.data, np.float64).reshape(m)


@dataclass(frozen=True)
class FuseBias(Pass):
    """Absorb per-channel or scalar constant Adds into Conv/ConvTranspose/Gemm biases; MatMul(x, constant W) -> Gemm."""

    name: ClassVar[str] = "fuse_bias"

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        converted = biases = 0
        for op in graph.ops():
            if op.kind not in ("MatMul", "Gemm", "Conv", "ConvTranspose") or op.attrs.get("activation") is not None:
                continue
            ins = graph.inputs_of(op)
            x, w = ins[0], ins[1] if len(ins) > 1 else None
            out = graph.outputs_of(op)[0]
            if op.kind == "MatMul":
                if w is None or not w.is_const or w.rank != 2 or x.rank != 2:
                    continue
                name, origin = op.name, op.origin or (op.name,)
                weight = graph.add_const(f"{name}.weight", np.ascontiguousarray(w.data.T), dtype=w.dtype)
                graph.remove_op(op, remove_outputs=False)
                op = graph.add_op("Gemm", [x, weight], name=name, origin=origin, outputs=[out])
                converted += 1
                ins = graph.inputs_of(op)
            has_bias = len(ins) > 2 and ins[2] is not None
            found = _bias_vector(graph, op)
            if found is None or (has_bias and not ins[2].is_const):
                continue
            add, vec = found
            old = np.asarray(ins[2].data, np.float64) if has_bias else np.zeros_like(vec)
            bias = graph.add_const(f"{op.name}.bias", (old + vec).astype(out.dtype.numpy), dtype=out.dtype)
            graph.set_input(op, 2, bias)
            bn = out.meta.get("batchnorm")
            if bn is not None:  # fold_batchnorm's record of the output's distribution: shifted by the bias
                out.meta["batchnorm"] = {"beta": np.asarray(bn["beta"], np.float64) + vec, "gamma": bn["gamma"]}
            op.origin = merge_origins(op, add)
            absorb_consumer(graph, out, add)
            biases += 1
        graph.remove_unused_tensors()
        return PassResult.from_counts(converted=converted, biases_fused=biases)
