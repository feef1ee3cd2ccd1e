"""Float kernels for Gemm (weight (out, in)) and MatMul (numpy matmul broadcasting), with fused activations."""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.fused_activation import apply_fused_activation
from npuc.backends.reference.kernels import kernel
from npuc.ir.op import Op


@kernel("Gemm")
def gemm_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """y = x @ weight.T + bias, then the fused activation."""
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    y = np.matmul(x, w.astype(x.dtype, copy=False).T)
    if bias is not None:
        y += bias.astype(x.dtype, copy=False)
    return [apply_fused_activation(op.attrs, y, -1)]


@kernel("MatMul")
def matmul_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """numpy matmul (batch dims broadcast), then the fused activation."""
    a, b = inputs
    y = np.matmul(a, b.astype(a.dtype, copy=False))
    if not isinstance(y, np.ndarray):  # 1-D @ 1-D gives a numpy scalar
        y = np.asarray(y)
    return [apply_fused_activation(op.attrs, y, -1)]
