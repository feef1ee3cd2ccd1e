"""Lookup-table activations (docs/numerics.md section 10): ``q_out = lut[q_in - qmin_in]``.

The table is read from the binary, checked to have exactly one entry per input
code (256 or 65,536) with values inside the output type, and converted to the
output dtype once; the kernel's index is then always in range.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.quantization.op_params import LUT_KINDS


@njit(cache=True)
def _lookup(q, offset, table, out):
    for i in range(q.size):
        out[i] = table[np.int64(q[i]) - offset]


def prepare_lut(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    chk.need(x.size == out.size, f"input {x.shape} and output {out.shape} differ in size")
    info_in = np.iinfo(x.dtype)
    entries = int(info_in.max) - int(info_in.min) + 1
    table = chk.array("lut", entries)
    dt = ctx.out_dtype()
    chk.need(dt.kind in "iu", f"output dtype {dt} is not an integer type")
    chk.in_range("lut", table, int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    table = table.astype(dt)
    offset = int(info_in.min)
    xf, of = np.ascontiguousarray(x).reshape(-1), out.reshape(-1)

    def step() -> None:
        _lookup(xf, offset, table, of)
    return step


PREPARERS = {kind: prepare_lut for kind in LUT_KINDS}
