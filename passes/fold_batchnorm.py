"""fold_batchnorm: fold inference BatchNormalization into the preceding Conv/ConvTranspose/Gemm/MatMul.

BN(x) = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a, per channel (axis 1).
Folded into the producer's weights and bias when the producer's output has no other reader;
otherwise the BN becomes a per-channel Mul + Add (scale and shift).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.rewrite import absorb_consumer, merge_origins, sole_reader


def bn_scale_shift(graph: Graph, bn: Op) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, b) in float64 such that BN(x) = a[c] * x + b[c], or None if a parameter is not constant."""
    params = graph.inputs_of(bn)[1:5]
    if len(params) != 4 or any(t is None or not t.is_const for t in params):
        return None
    scale, bias, mean, var = (np.asarray(t.data, dtype=np.float64) for t in params)
    a = scale / np.sqrt(var + float(bn.attrs["epsilon"]))
    return a, bias - mean * a


@dataclass(frozen=True)
class FoldBatchnorm(Pass):
    """Fold BatchNormalization into the preceding Conv/ConvTranspose/Gemm/MatMul (constant weight);
    a BN that cannot be folded becomes a per-channel Mul + Add."""

    name: ClassVar[str] = "fold_batchnorm"
    lone_to_mul_add: bool = option(True, "turn BNs that cannot be folded into a per-channel Mul + Add")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        folded = lone = 0
        for bn in graph.ops():
            if bn.kind != "BatchNormalization":
                continue
            ab = bn_scale_shift(graph, bn)
            if ab is None:
                continue
            x = graph.inputs_of(bn)[0]
            prod = graph.producer(x)
            if prod is not None and sole_reader(graph, x) is bn and _fold_chain(graph, prod, bn, *ab):
                folded += 1
            elif self.lone_to_mul_add:
                _to_mul_add(graph, bn, *ab)
                lone += 1
        if folded or lone:
            graph.remove_unused_tensors()
        return PassResult.from_counts(folded=folded, to_mul_add=lone)


def _const(graph: Graph, like: Tensor | None, base: str, value: np.ndarray) -> Tensor:
    dtype = like.dtype if like is not None and like.dtype.is_float else DType.FLOAT32
    return graph.add_const(base, value.astype(dtype.numpy), dtype=dtype)


def _channel_vector(t: Tensor, rank: int, n: int) -> np.ndarray | None:
    """The per-channel values of a constant that broadcasts along axis 1 only (a bias), else None."""
    if not t.is_const or t.rank > rank:
        return None
    shape = (1,) * (rank - t.rank) + t.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, n):
        return None
    return np.broadcast_to(np.asarray(t.data, dtype=np.float64).reshape(-1), (n,))


def _fold_chain(graph: Graph, prod: Op, bn: Op, a: np.ndarray, b: np.ndarray) -> bool:
    """Fold BN into `prod`, or through Add(conv(x), per-channel constant) into that conv (exporters
    emit ConvTranspose biases that way): BN(conv + c) = conv * a + (c * a + b)."""
    if prod.kind != "Add":
        return _fold_into(graph, prod, bn, a, b)
    x = graph.inputs_of(bn)[0]
    p, q = graph.inputs_of(prod)
    for t, c in ((p, q), (q, p)):
        vec = _channel_vector(c, x.rank, a.shape[0])
        conv = graph.producer(t)
        if vec is None or conv is None or sole_reader(graph, t) is not prod or t.shape != x.shape:
            continue
        if _fold_into(graph, conv, bn, a, b + vec * a, via=prod):
            return True
    return False


def _fold_into(graph: Graph, prod: Op, bn: Op, a: np.ndarray, b: np.ndarray, via: Op | None = None) -> bool:
    """Rewrite `prod` to compute BN(prod(x)) (BN(via(prod(x))) when `via` is given: an Add already
    accounted for in `b`); False when its kind/weights do not allow it."""
    if prod.kind not in ("Conv", "ConvTranspose", "Gemm", "MatMul") or prod.attrs.get("activation") is not None:
        return False
    ins = graph.inputs_of(prod)
    w = ins[1] if len(ins) > 1 else None
    if w is None or not w.is_const:
        return False
    bias_t = ins[2] if len(ins) > 2 else None
    if bias_t is not None and not bias_t.is_const:
        return False
    wd = np.asarray(w.data, dtype=np.float64)
    n = a.shape[0]
    if prod.kind == "Conv":
        if wd.shape[0] != n:
            return False
        new_w = wd * a.reshape(-1, 1, 1, 1)
    elif prod.kind == "ConvTranspose":
        g = int(prod.attrs["group"])
        cin, cpg = wd.shape[0], wd.shape[1]
        if cpg * g != n:
            return False
        new_w = (wd.reshape(g, cin // g, cpg, *wd.shape[2:]) * a.reshape(g, 1, cpg, 1, 1)).reshape(wd.shape)
    elif prod.kind == "Gemm":
        if wd.shape[0] != n:
            return False
        new_w = wd * a.reshape(-1, 1)
    else:  # MatMul x(N, K) @ w(K, C) with BN over C: becomes Gemm with weight (C, K)
        xin = ins[0]
        out = graph.outputs_of(prod)[0]
        if wd.ndim != 2 or xin is None or xin.rank != 2 or out.rank != 2 or wd.shape[1] != n:
            return False
        new_w = (wd * a.reshape(1, -1)).T
    old_b = np.zeros(n) if bias_t is None else np.asarray(bias_t.data, dtype=np.float64)
    new_b = old_b * a + b
    w_t = _const(graph, w, f"{prod.name}.weight_bn", new_w)
    b_t = _const(graph, w, f"{prod.name}.bias_bn", new_b)
    out = graph.outputs_of(prod)[0]
    if prod.kind == "MatMul":
        name, origin = prod.name, prod.origin or (prod.name,)
        graph.remove_op(prod, remove_outputs=False)
        prod = graph.add_op("Gemm", [ins[0], w_t, b_t], name=name, origin=origin, outputs=[out])
    else:
        graph.set_input(prod, 1, w_t)
        graph.set_input(prod, 2, b_t)
        graph.reinfer(prod)
    if via is not None:
        prod.origin = merge_origins(prod, via, bn)
        absorb_consumer(graph, out, via)
    else:
        prod.origin = merge_origins(prod, bn)
    gamma, beta = (np.asarray(t.data, dtype=np.float64).copy() for t in graph.inputs_of(bn)[1:3])
    absorb_consumer(graph, out, bn)
    # the BN output's per-channel distribution is ~N(beta, gamma^2): high-bias absorption in
    # cross_layer_equalization uses it (c = max(0, beta - 3|gamma|), Nagel et al. 2019)
    out.meta["batchnorm"] = {"beta": beta, "gamma": gamma}
    return True


def _to_mul_add(graph: Graph, bn: Op, a: np.ndarray, b: np.ndarray) -> None:
    x = graph.inputs_of(bn)[0]
    y = graph.outputs_of(bn)[0]
    bshape = (a.shape[0],) + (1,) * (x.rank - 2)
    a_t = _const(graph, x, f"{bn.name}.scale", a.reshape(bshape))
    b_t = _const(graph, x, f"{bn.name}.shift", b.reshape(bshape))
    name, origin = bn.name, bn.origin
    graph.remove_op(bn, remove_outputs=False)
    mul = graph.add_op("Mul", [x, a_t], name=f"{name}.mul", origin=origin)
    graph.add_op("Add", [graph.outputs_of(mul)[0], b_t], name=name, origin=origin, outputs=[y])
