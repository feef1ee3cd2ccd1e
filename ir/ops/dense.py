"""Fully connected layers and matrix products."""
from __future__ import annotations

from npuc.ir.op_spec import OpSpec, register_op
from npuc.ir.ops._infer import broadcast
from npuc.ir.ops.conv import MAC_EPILOGUE_ATTRS, verify_epilogue


def _infer_gemm(op, ins):
    x, w = ins[0], ins[1]
    if len(x.shape) != 2 or len(w.shape) != 2:
        raise ValueError(f"Gemm expects 2-D x and weight, got {x.shape} and {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features, weight (out, in) expects {w.shape[1]}")
    return [((x.shape[0], w.shape[0]), x.dtype)]


def _infer_matmul(op, ins):
    a, b = ins[0].shape, ins[1].shape
    if len(a) < 1 or len(b) < 1:
        raise ValueError("MatMul needs inputs of rank >= 1")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ValueError(f"inner dimensions differ: {a} @ {b}")
    batch = broadcast(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [(out, ins[0].dtype)]


def _verify_gemm(op, ins):
    return verify_epilogue(op, ins[1].shape[0] if len(ins) > 1 and ins[1] is not None else None)


def _verify_matmul(op, ins):
    b = ins[1] if len(ins) > 1 else None
    return verify_epilogue(op, (b.shape[-1] if len(b.shape) > 1 else 1) if b is not None else None)


register_op(OpSpec(
    "Gemm", ("x", "weight", "bias?"), _infer_gemm, dict(MAC_EPILOGUE_ATTRS), verify=_verify_gemm,
    doc="y = x @ weight.T + bias; weight is (out_features, in_features). Optional fused activation.",
))
register_op(OpSpec(
    "MatMul", ("a", "b"), _infer_matmul, dict(MAC_EPILOGUE_ATTRS), verify=_verify_matmul,
    doc="numpy matmul semantics with broadcasting batch dimensions.",
))
