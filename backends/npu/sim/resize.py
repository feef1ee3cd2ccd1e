"""Integer Resize: nearest is a gather (data_movement); linear interpolates the last two axes with
fixed-point weights (docs/numerics.md section 8):

    acc = sum_{a,b in {0,1}} wy_a * wx_b * (q[y_a, x_b] - zp_in),  wy_1 = row_weight, wy_0 = 2**F - wy_1
    q_out = clamp(zp_out + R(acc, M, n), lo, hi)

With ``rounding = 1`` (TFLite's int8 kernel) the output is the raw-code sum ``acc + zp_in * 2**(2F)``
divided by ``2**(2F)``, rounded half away from zero. The source rows/columns and weights are read from the binary (computed once by the compiler from the
coordinate transformation mode) and checked here: indices inside the input, weights in [0, 2**F].
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import requant
from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.backends.npu.sim.data_movement import prepare_gather

#: largest fractional width: 2**(2F) * 2**17 stays far inside int64
MAX_FRAC_BITS = 22


@njit(cache=True)
def _bilinear(x, out, ri, rw, ci, cw, one, zi, M, n, zo, lo, hi, away):
    """x: (B, H, W), out: (B, OH, OW); ri/ci: (2, OH)/(2, OW) source indices; rw/cw: high-tap weights.
    away: TFLite's rounding (raw-code sum / one**2, half away from zero) instead of the requantization."""
    total = one * one
    half = total // 2
    B = x.shape[0]
    OH = out.shape[1]
    OW = out.shape[2]
    for b in range(B):
        for i in range(OH):
            y0 = ri[0, i]
            y1 = ri[1, i]
            wy1 = rw[i]
            wy0 = one - wy1
            for j in range(OW):
                x0 = ci[0, j]
                x1 = ci[1, j]
                wx1 = cw[j]
                wx0 = one - wx1
                top = (np.int64(x[b, y0, x0]) - zi) * wx0 + (np.int64(x[b, y0, x1]) - zi) * wx1
                bot = (np.int64(x[b, y1, x0]) - zi) * wx0 + (np.int64(x[b, y1, x1]) - zi) * wx1
                acc = top * wy0 + bot * wy1
                if away:
                    raw = acc + zi * total
                    v = (raw + half) // total if raw >= 0 else -((half - raw) // total)
                    out[b, i, j] = min(max(v, lo), hi)
                else:
                    out[b, i, j] = requant(acc, M, n, zo, lo, hi)


def prepare_resize(ctx: LayerContext) -> Step:
    mode = ctx.attrs.get("mode")
    if mode == "nearest":
        return prepare_gather(ctx)
    chk = ctx.check
    chk.need(mode == "linear", f"integer Resize must be nearest or linear, not {mode!r}")
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    chk.need(x.ndim >= 2 and out.ndim == x.ndim and out.shape[:-2] == x.shape[:-2],
             f"linear Resize of {x.shape} to {out.shape} must keep every axis but the last two")
    H, W = x.shape[-2:]
    OH, OW = out.shape[-2:]
    F = int(chk.in_range("frac_bits", chk.array("frac_bits", 1), 0, MAX_FRAC_BITS)[0])
    ri = chk.in_range("row_index", chk.array("row_index", (2, OH)), 0, H - 1)
    ci = chk.in_range("col_index", chk.array("col_index", (2, OW)), 0, W - 1)
    rw = chk.in_range("row_weight", chk.array("row_weight", OH), 0, 1 << F)
    cw = chk.in_range("col_weight", chk.array("col_weight", OW), 0, 1 << F)
    zi = int(chk.zero_points("input_zero_point", 1)[0])
    M, n = chk.multiplier(size=1)
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    away = False
    if "rounding" in ctx.params:
        rounding = int(chk.in_range("rounding", chk.array("rounding", 1), 0, 1)[0])
        tflite = ctx.attrs.get("rounding", "half_up") == "tflite_bilinear"
        chk.need(rounding == int(tflite), f"parameter 'rounding' = {rounding} disagrees with the layer's "
                                          f"rounding {ctx.attrs.get('rounding', 'half_up')!r}")
        chk.need(not tflite or (F == 10 and x.dtype.itemsize == 1), "TFLite's bilinear rounding needs 8-bit "
                                                                   "codes and 10 fractional bits")
        away = bool(rounding)
    else:
        chk.need(ctx.attrs.get("rounding", "half_up") == "half_up", "parameter 'rounding' is missing")
    B = int(np.prod(x.shape[:-2], dtype=np.int64))
    x3 = x.reshape(B, H, W)
    o3 = out.reshape(B, OH, OW)
    args = (ri, rw, ci, cw, np.int64(1 << F), zi, int(M[0]), int(n[0]), zo, lo, hi, away)
    return lambda: _bilinear(x3, o3, *args)


PREPARERS = {"Resize": prepare_resize}
