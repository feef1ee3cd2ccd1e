"""Integer PRelu (docs/numerics.md section 8): ``x = q - zp_in``; ``clamp(zp_out + R(x, M, n))`` where
``x >= 0``, else ``clamp(zp_out + R(sign[j] * x, M_neg[j], n_neg[j]))`` with ``j`` the slope value
broadcast onto the element.

The slope's parameters have the slope's shape (padded to the input's rank); the element -> slope
value map is resolved at preparation with the broadcast geometry of the binary ops (an index
tensor ``arange(S)`` as the second operand). For 8-bit inputs the result of every (slope value,
input code) pair is computed once by the same arithmetic kernel and a run looks it up.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import requant
from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.backends.npu.sim.elementwise import (_next_row, _outer_rows, _row_offsets, broadcast_strides,
                                               merged_geometry)


@njit(cache=True, inline="always")
def _prelu_one(v, j, zi, Mp, np_, Mn, nn, sg, zo, lo, hi):
    x = np.int64(v) - zi
    if x >= 0:
        return requant(x, Mp, np_, zo, lo, hi)
    return requant(x * sg[j], Mn[j], nn[j], zo, lo, hi)


@njit(cache=True)
def _prelu(x, sidx, out, shape, sx, ss, zi, Mp, np_, Mn, nn, sg, zo, lo, hi):
    """PRelu over the broadcast geometry (x: flat input, sidx: flat slope-value index per slope element)."""
    nd = shape.size
    inner = shape[nd - 1]
    ix_step = sx[nd - 1]
    is_step = ss[nd - 1]
    outer = _outer_rows(shape)
    idx = np.zeros(nd, np.int64)
    o = 0
    for _ in range(outer):
        ix, js = _row_offsets(idx, sx, ss)
        for k in range(inner):
            out[o] = _prelu_one(x[ix + k * ix_step], sidx[js + k * is_step], zi, Mp, np_, Mn, nn, sg, zo, lo, hi)
            o += 1
        _next_row(idx, shape)


@njit(cache=True)
def _prelu_table(x, sidx, out, shape, sx, ss, table, qmin):
    """out = table[j * 256 + (x - qmin)] over the broadcast geometry (8-bit inputs)."""
    nd = shape.size
    inner = shape[nd - 1]
    ix_step = sx[nd - 1]
    is_step = ss[nd - 1]
    outer = _outer_rows(shape)
    idx = np.zeros(nd, np.int64)
    o = 0
    for _ in range(outer):
        ix, js = _row_offsets(idx, sx, ss)
        for k in range(inner):
            out[o] = table[sidx[js + k * is_step] * 256 + (np.int64(x[ix + k * ix_step]) - qmin)]
            o += 1
        _next_row(idx, shape)


def prepare_prelu(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    chk.need(out.shape == x.shape, f"output {out.shape} differs from input {x.shape}")
    zi = int(chk.zero_points("input_zero_point", 1)[0])
    Mp, np_ = chk.multiplier(size=1)
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    Mn = chk.array("negative_multiplier")
    sshape = Mn.shape
    chk.need(len(sshape) == x.ndim and all(s in (1, d) for s, d in zip(sshape, x.shape)),
             f"slope parameters of shape {sshape} do not broadcast onto the input {x.shape}")
    Mn, nn = chk.multiplier("negative_multiplier", "negative_shift", sshape)
    sg = chk.array("negative_sign", sshape)
    chk.need(bool(np.all((sg == 1) | (sg == -1))), "parameter 'negative_sign' holds values other than -1 and 1")
    S = int(Mn.size)
    Mn, nn, sg = (np.ascontiguousarray(a.reshape(-1)) for a in (Mn, nn, sg))
    sidx = np.arange(S, dtype=np.int64)
    shape, sx, ss = merged_geometry(out.shape, broadcast_strides(x.shape, out.shape),
                                    broadcast_strides(sshape, out.shape))
    xf, of = np.ascontiguousarray(x).reshape(-1), out.reshape(-1)
    args = (zi, int(Mp[0]), int(np_[0]), Mn, nn, sg, zo, lo, hi)
    if x.dtype.itemsize == 1:
        qmin = int(np.iinfo(x.dtype).min)
        codes = np.tile(np.arange(qmin, qmin + 256), S).astype(x.dtype)
        owner = np.repeat(sidx, 256)
        table = np.empty(S * 256, out.dtype)
        one = np.ones(1, np.int64)
        _prelu(codes, owner, table, np.array([S * 256], np.int64), one, one, *args)
        return lambda: _prelu_table(xf, sidx, of, shape, sx, ss, table, qmin)
    return lambda: _prelu(xf, sidx, of, shape, sx, ss, *args)


PREPARERS = {"PRelu": prepare_prelu}
