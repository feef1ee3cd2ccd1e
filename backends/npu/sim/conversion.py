"""Quantize (float -> integer), Dequantize (integer -> float) and Cast (docs/numerics.md sections 2, 9).

Quantize: ``clamp(rint(float64(x) / scale) + z, qmin, qmax)`` (division, round half to even);
Dequantize: ``float64(scale) * float64(q - z)`` rounded once to the target float type.
float16 operands are widened (exactly) with numpy first, and float16 results are
rounded from float64 by numpy once, so the numba kernels only see float32/float64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.errors import ExecutionError


@njit(cache=True)
def _quantize(x, scale, zp, qmin, qmax, out):
    """Returns False when x holds a NaN (an error per the spec), True otherwise."""
    for i in range(x.size):
        v = np.float64(x[i])
        if v != v:
            return False
        r = np.rint(v / scale) + zp
        if r < qmin:
            r = qmin
        elif r > qmax:
            r = qmax
        out[i] = np.int64(r)
    return True


@njit(cache=True)
def _dequantize(q, scale, zp, out):
    for i in range(q.size):
        out[i] = scale * np.float64(np.int64(q[i]) - zp)


def prepare_quantize(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind == "f" and x.size == out.size, "Quantize needs a float input of the output's size")
    dt = ctx.out_dtype()
    chk.need(dt.kind in "iu", f"output dtype {dt} is not an integer type")
    scale = float(chk.array("scale", 1, kind="f")[0])
    chk.need(scale > 0, f"scale {scale} must be positive")
    zp = int(chk.zero_points("zero_point", 1)[0])
    qmin, qmax = int(chk.array("qmin", 1)[0]), int(chk.array("qmax", 1)[0])
    info = np.iinfo(dt)
    chk.need(int(info.min) <= qmin <= qmax <= int(info.max), f"[qmin, qmax] = [{qmin}, {qmax}] outside {dt}")
    wide = np.empty(x.shape, np.float32) if x.dtype == np.float16 else None
    src = (wide if wide is not None else np.ascontiguousarray(x)).reshape(-1)
    of = out.reshape(-1)
    name = ctx.layer.name

    def step() -> None:
        if wide is not None:
            np.copyto(wide, x)
        if not _quantize(src, scale, float(zp), float(qmin), float(qmax), of):
            raise ExecutionError(f"Quantize '{name}': the input holds NaN, which has no integer code")
    return step


def prepare_dequantize(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu" and x.size == out.size, "Dequantize needs an integer input")
    chk.need(out.dtype.kind == "f", f"output dtype {out.dtype} is not a float type")
    scale = float(chk.array("scale", 1, kind="f")[0])
    zp = int(chk.zero_points("zero_point", 1)[0])
    xf = np.ascontiguousarray(x).reshape(-1)
    direct = out.dtype in (np.float32, np.float64)
    tmp = None if direct else np.empty(x.size, np.float64)
    of = out.reshape(-1)

    def step() -> None:
        if direct:
            _dequantize(xf, scale, zp, of)
        else:
            _dequantize(xf, scale, zp, tmp)
            np.copyto(of, tmp, casting="unsafe")
    return step


def prepare_cast(ctx: LayerContext) -> Step:
    x, out = ctx.inputs[0], ctx.outputs[0]
    ctx.check.need(x is not None and x.size == out.size, "Cast input and output differ in size")
    xf, of = x.reshape(-1), out.reshape(-1)

    def step() -> None:
        np.copyto(of, xf, casting="unsafe")
    return step


PREPARERS = {"Quantize": prepare_quantize, "Dequantize": prepare_dequantize, "Cast": prepare_cast}
