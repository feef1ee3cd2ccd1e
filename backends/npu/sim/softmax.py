"""Integer softmax along the last axis (docs/numerics.md section 11).

``d = max(q) - q``, ``e = T[d]`` (Q20 table from the binary), ``S = sum e`` (int64),
``q_out = clamp(z_out + rounding_divide(e << b_out, S))``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import rounding_divide
from npuc.backends.npu.sim.context import LayerContext, Step

#: largest table entry accepted (the compiler writes T[0] = 2**20); keeps S and e << b_out inside int64
MAX_TABLE_ENTRY = 1 << 24


@njit(cache=True)
def _softmax(q, table, bits, zo, lo, hi, out):
    rows, n = q.shape
    for r in range(rows):
        m = np.int64(q[r, 0])
        for j in range(1, n):
            v = np.int64(q[r, j])
            if v > m:
                m = v
        s = np.int64(0)
        for j in range(n):
            s += table[m - np.int64(q[r, j])]
        for j in range(n):
            e = table[m - np.int64(q[r, j])]
            v = zo + rounding_divide(e << bits, s)
            out[r, j] = lo if v < lo else (hi if v > hi else v)


def prepare_softmax(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu" and x.ndim >= 1, "input must be an integer tensor")
    chk.need(x.shape == out.shape, f"input {x.shape} and output {out.shape} differ")
    axis = int(ctx.attrs.get("axis", -1))
    chk.need(axis in (-1, x.ndim - 1), f"integer softmax runs along the last axis only (axis {axis})")
    info = np.iinfo(x.dtype)
    table = chk.in_range("exp_table", chk.array("exp_table", int(info.max) - int(info.min) + 1), 0, MAX_TABLE_ENTRY)
    chk.need(table[0] > 0, "exp_table[0] must be positive")
    bits = int(chk.in_range("output_bits", chk.array("output_bits", 1), 1, 16)[0])
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    n = x.shape[-1] if x.ndim else 1
    rows = x.size // n if n else 0
    x2, o2 = np.ascontiguousarray(x).reshape(rows, n), out.reshape(rows, n)

    def step() -> None:
        if n:
            _softmax(x2, table, bits, zo, lo, hi, o2)
    return step


PREPARERS = {"Softmax": prepare_softmax}
