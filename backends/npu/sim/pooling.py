"""Pooling and reductions (docs/numerics.md section 8).

MaxPool / GlobalMaxPool / ReduceMax / ReduceMin select values (exact in any type),
then rescale unless the encodings are equal. AveragePool / GlobalAveragePool /
ReduceMean / ReduceSum sum ``q - z_in`` in int64 (padding adds 0) and requantize
with the multiplier of ``s_in / (s_out * count)`` (one per output position when
border windows count fewer inputs). An AveragePool with ``rounding = 1`` (TFLite's int8
kernel) rescales the sum by ``s_in / s_out`` and divides the output codes by the window
count, ties away from zero (``divisor``: one count, or one per output position). A
ReduceMean with ``rounding = 2`` runs TFLite's int8 MEAN arithmetic (``sum_offset``, TFLite's
double-rounding multiply).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import requant, scaled
from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.backends.npu.sim.elementwise import Rescale


@njit(cache=True)
def _max_pool(x, kh, kw, sh, sw, dh, dw, pt, pl, lowest, out):
    n_, c_, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for n in range(n_):
        for c in range(c_):
            for oy in range(oh):
                for ox in range(ow):
                    m = lowest
                    for ky in range(kh):
                        iy = oy * sh + ky * dh - pt
                        if iy < 0 or iy >= h:
                            continue
                        for kx in range(kw):
                            ix = ox * sw + kx * dw - pl
                            if ix < 0 or ix >= w:
                                continue
                            v = np.int64(x[n, c, iy, ix])
                            if v > m:
                                m = v
                    out[n, c, oy, ox] = m


@njit(cache=True, inline="always")
def _divide_away(acc, M, S, d, zo, lo, hi):
    """clamp(rounding_divide_away(zo * d + R(acc, M, S), d), lo, hi): d > 0, ties away from zero."""
    a = zo * d + scaled(acc, M, S)
    half = d // 2
    if a < 0:
        v = -((half - a) // d)
    else:
        v = (a + half) // d
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@njit(cache=True)
def _average_pool(x, zi, kh, kw, sh, sw, pt, pl, M, S, D, away, zo, lo, hi, out):
    n_, c_, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    per_m, per_d = M.size > 1, D.size > 1
    for n in range(n_):
        for c in range(c_):
            for oy in range(oh):
                for ox in range(ow):
                    acc = np.int64(0)
                    for ky in range(kh):
                        iy = oy * sh + ky - pt
                        if iy < 0 or iy >= h:
                            continue
                        for kx in range(kw):
                            ix = ox * sw + kx - pl
                            if ix < 0 or ix >= w:
                                continue
                            acc += np.int64(x[n, c, iy, ix]) - zi
                    k = oy * ow + ox
                    km = k if per_m else 0
                    if away:
                        out[n, c, oy, ox] = _divide_away(acc, M[km], S[km], D[k if per_d else 0], zo, lo, hi)
                    else:
                        out[n, c, oy, ox] = requant(acc, M[km], S[km], zo, lo, hi)


@njit(cache=True)
def _requant_flat(acc, M, S, zo, lo, hi, out):
    for i in range(acc.size):
        out[i] = requant(acc[i], M, S, zo, lo, hi)


_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


@njit(cache=True, inline="always")
def _sat32(v):
    if v < _I32_MIN:
        return np.int64(_I32_MIN)
    if v > _I32_MAX:
        return np.int64(_I32_MAX)
    return v


@njit(cache=True, inline="always")
def tflite_multiply(x, M, n):
    """TFLite's MultiplyByQuantizedMultiplier on int32: srdhm (ties towards +inf) then
    rounding_divide_by_pot (ties away from zero); x and x * 2**left saturate to int32."""
    left = -n if n < 0 else np.int64(0)
    right = n if n > 0 else np.int64(0)
    a = _sat32(_sat32(x) << left)
    ab = a * M
    if ab >= 0:
        v = ab + (np.int64(1) << 30)
        high = v >> 31
    else:
        v = ab + (np.int64(1) - (np.int64(1) << 30))
        high = -((-v) >> 31)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)


@njit(cache=True)
def _tflite_mean_flat(acc, off, M, S, zo, lo, hi, out):
    for i in range(acc.size):
        v = zo + tflite_multiply(acc[i] + off, M, S)
        out[i] = lo if v < lo else (hi if v > hi else v)


@njit(cache=True)
def _global_sum(x, zi, out):
    """x: (rows, n) -> out[r] = sum_j (x[r, j] - zi) in int64."""
    rows, n = x.shape
    for r in range(rows):
        s = np.int64(0)
        for j in range(n):
            s += np.int64(x[r, j]) - zi
        out[r] = s


def _pool_geometry(ctx: LayerContext) -> tuple[int, ...]:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.ndim == 4 and out.ndim == 4 and x.shape[:2] == out.shape[:2],
             "pooling needs 4-D NCHW input and output with equal N, C")
    a = ctx.attrs
    kh, kw = (int(v) for v in a["kernel"])
    sh, sw = (int(v) for v in a["strides"])
    dh, dw = (int(v) for v in a.get("dilations", (1, 1)))
    pt, pl, _, _ = (int(v) for v in a["pads"])
    chk.need(min(kh, kw, sh, sw, dh, dw) >= 1 and pt >= 0 and pl >= 0, "bad pooling geometry")
    return kh, kw, sh, sw, dh, dw, pt, pl


def _with_rescale(ctx: LayerContext, compute, temp_dtype: np.dtype) -> Step:
    """Run `compute(dest)` into the output (identity encodings) or a temp that is then rescaled."""
    r = Rescale(ctx)
    out = ctx.outputs[0]
    if r.identity and temp_dtype == out.dtype:
        return lambda: compute(out)
    tmp = np.empty(out.shape, temp_dtype)
    tf, of = tmp.reshape(-1), out.reshape(-1)

    def step() -> None:
        compute(tmp)
        r.apply(tf, of)
    return step


def prepare_max_pool(ctx: LayerContext) -> Step:
    kh, kw, sh, sw, dh, dw, pt, pl = _pool_geometry(ctx)
    x = ctx.inputs[0]
    ctx.check.need(x.dtype.kind in "iu", "input must be an integer tensor")
    lowest = int(np.iinfo(x.dtype).min)
    return _with_rescale(ctx, lambda dest: _max_pool(x, kh, kw, sh, sw, dh, dw, pt, pl, lowest, dest), x.dtype)


def _axes(ctx: LayerContext) -> tuple[tuple[int, ...], bool]:
    x = ctx.inputs[0]
    if ctx.kind in ("GlobalMaxPool", "GlobalAveragePool"):
        return tuple(range(2, x.ndim)), True
    axes = ctx.attrs.get("axes")
    rank = x.ndim
    if axes is None:
        return tuple(range(rank)), bool(ctx.attrs.get("keepdims", True))
    ctx.check.need(all(-rank <= int(a) < rank for a in axes), f"axes {axes} out of range for rank {rank}")
    return tuple(sorted({int(a) % rank for a in axes})), bool(ctx.attrs.get("keepdims", True))


def prepare_reduce_select(ctx: LayerContext) -> Step:
    """GlobalMaxPool, ReduceMax, ReduceMin: numpy's integer max/min (exact), then rescale."""
    x, out = ctx.inputs[0], ctx.outputs[0]
    ctx.check.need(x is not None and x.dtype.kind in "iu" and x.size > 0, "input must be a non-empty integer tensor")
    axes, keep = _axes(ctx)
    fn = np.min if ctx.kind == "ReduceMin" else np.max
    shape = np.amax(np.broadcast_to(np.int8(0), x.shape), axis=axes, keepdims=keep).shape
    ctx.check.need(tuple(shape) == out.shape, f"reduction gives {shape}, output is {out.shape}")

    def compute(dest: np.ndarray) -> None:
        fn(x, axis=axes, keepdims=keep, out=dest.reshape(shape))
    return _with_rescale(ctx, compute, x.dtype)


def _average_multiplier(ctx: LayerContext, positions: int) -> tuple[np.ndarray, np.ndarray, bool]:
    chk = ctx.check
    M, S = chk.multiplier()
    chk.need(M.size in (1, positions), f"{M.size} multipliers for {positions} output positions")
    return M.reshape(-1), S.reshape(-1), M.size > 1


#: the `rounding` parameter of the average family (docs/numerics.md section 8), by the layer's attribute
ROUNDING_CODES = {"half_up": 0, "half_away_from_zero": 1, "tflite_mean": 2, "tflite_mean_hw": 2}


def _rounding(ctx: LayerContext) -> int:
    """0 (half up; also an absent parameter), 1 (AveragePool: divide by `divisor`, ties away from
    zero) or 2 (ReduceMean: TFLite's MEAN arithmetic); it must agree with the layer's attribute."""
    chk = ctx.check
    code = 0
    if "rounding" in chk.params:
        code = int(chk.in_range("rounding", chk.array("rounding", 1), 0, 2)[0])
    if ctx.kind in ("AveragePool", "ReduceMean"):
        attr = ctx.attrs.get("rounding", "half_up")
        chk.need(code == ROUNDING_CODES.get(attr),
                 f"parameter 'rounding' is {code} but the layer's rounding attribute is {attr!r}")
    else:
        chk.need(code == 0, f"parameter 'rounding' = {code} is defined for AveragePool and ReduceMean only")
    return code


def prepare_average_pool(ctx: LayerContext) -> Step:
    kh, kw, sh, sw, _, _, pt, pl = _pool_geometry(ctx)
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x.dtype.kind in "iu", "input must be an integer tensor")
    positions = out.shape[2] * out.shape[3]
    away = _rounding(ctx) == 1
    if away:
        M, S = chk.multiplier(size=1)
        D = chk.in_range("divisor", chk.array("divisor"), 1, (1 << 31) - 1).reshape(-1)
        chk.need(D.size in (1, positions), f"{D.size} divisors for {positions} output positions")
    else:
        M, S, _ = _average_multiplier(ctx, positions)
        D = np.ones(1, np.int64)
    M, S = M.reshape(-1), S.reshape(-1)
    zi = int(chk.zero_points("input_zero_point", 1)[0])
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())

    def step() -> None:
        _average_pool(x, zi, kh, kw, sh, sw, pt, pl, M, S, D, away, zo, lo, hi, out)
    return step


def prepare_reduce_sum(ctx: LayerContext) -> Step:
    """GlobalAveragePool, ReduceMean, ReduceSum: int64 sum of (q - z_in) over the axes, then requantize."""
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    axes, keep = _axes(ctx)
    tflite = _rounding(ctx) == 2
    M, S, per_pos = _average_multiplier(ctx, 1)
    off = int(chk.in_range("sum_offset", chk.array("sum_offset", 1), -(1 << 40), 1 << 40)[0]) if tflite else 0
    zi = int(chk.zero_points("input_zero_point", 1)[0])
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    shape = np.sum(np.broadcast_to(np.int8(0), x.shape), axis=axes, keepdims=keep).shape
    chk.need(tuple(shape) == out.shape, f"reduction gives {shape}, output is {out.shape}")
    of = out.reshape(-1)
    trailing = axes == tuple(range(x.ndim - len(axes), x.ndim))
    M0, S0 = int(M[0]), int(S[0])
    acc = np.empty(out.size, np.int64)

    def finish(a: np.ndarray) -> None:
        if tflite:
            _tflite_mean_flat(a, off, M0, S0, zo, lo, hi, of)
        else:
            _requant_flat(a, M0, S0, zo, lo, hi, of)

    if trailing and x.ndim:
        n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        x2 = np.ascontiguousarray(x).reshape(out.size, n)

        def step() -> None:
            _global_sum(x2, zi, acc)
            finish(acc)
        return step

    def step() -> None:
        s = np.sum(x, axis=axes, keepdims=keep, dtype=np.int64)
        s -= zi * (x.size // max(out.size, 1))
        finish(np.ascontiguousarray(s).reshape(-1))
    return step


PREPARERS = {
    "MaxPool": prepare_max_pool,
    "GlobalMaxPool": prepare_reduce_select,
    "ReduceMax": prepare_reduce_select,
    "ReduceMin": prepare_reduce_select,
    "AveragePool": prepare_average_pool,
    "GlobalAveragePool": prepare_reduce_sum,
    "ReduceMean": prepare_reduce_sum,
    "ReduceSum": prepare_reduce_sum,
}
