"""Conv, ConvTranspose, Gemm and MatMul: exact integer accumulation, then requantization.

``acc[c] = sum_k (q_x[k] - z_x) * q_w[c, k] + bias_acc[c]`` and
``q_y = clamp(z_y + R(acc, M[c], n[c]), lo[c], hi[c])`` (docs/numerics.md sections 4-6; the clamp is
per tensor or, for a fused clip with per-channel bounds, per output channel); with ``requantization = 1``
``R`` is ``rint(float32(float32(acc) * m32[c]))`` (section 6a).

Exactness of the fast path (floating-point BLAS). Every product
``p_k = (q_x[k] - z_x) * q_w[c, k]`` is an integer with ``|p_k| <= X * |q_w[c, k]|``,
``X = max |q - z_x|`` over the input type's whole range. Any summation order a
BLAS may use (blocking, FMA, pairwise, several threads) only ever forms partial
sums of a *subset* of one output's products, so every intermediate value ``s``
satisfies ``|s| <= X * sum_k |q_w[c, k]| =: B_c``. IEEE binary32 represents every
integer of magnitude ``<= 2**24`` exactly and binary64 every integer ``<= 2**53``;
a correctly rounded add, multiply or fused multiply-add whose exact result is such
an integer returns it unchanged. Hence if ``B = max_c B_c <= 2**24`` float32 GEMM
is exact, if ``B <= 2**53`` float64 GEMM is exact, and the float result converts
to the exact int64 accumulator. ``B`` is computed per layer from the stored weights
when the simulator prepares it; layers above ``2**53`` accumulate in int64. The
bias and the requantization are always int64 (`arith.py`).

Padding inserts ``z_x`` (real 0.0): the kernels work on the centered input, so a
padded tap contributes 0. ConvTranspose forms every tap's GEMM column (exact by
the same bound, taken over input channels) and scatters them into an int64
accumulator.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import requant, requant_float32
from npuc.backends.npu.sim.blas_threads import for_gemm
from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.errors import QuantizationError
from npuc.ir.ops.conv import REQUANTIZATIONS
from npuc.quantization.float32_requantization import multiplier_float32

#: largest integer magnitude below which every integer is exact in float32 / float64
FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


def accumulation_dtype(bound: int) -> np.dtype:
    """float32 / float64 / int64: the cheapest type in which a sum bounded by `bound` is exact (module docstring)."""
    if bound <= FLOAT32_EXACT:
        return np.dtype(np.float32)
    if bound <= FLOAT64_EXACT:
        return np.dtype(np.float64)
    return np.dtype(np.int64)


def centered_bound(dtype: np.dtype, zero_point: int) -> int:
    """X = largest |q - zero_point| over the integer type's range."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min) - zero_point), abs(int(info.max) - zero_point))


# ------------------------------------------------------------------ numba kernels
@njit(cache=True)
def _center_pad(x, zp, out, pt, pl):
    """out[n, c, pt + y, pl + x] = x[n, c, y, x] - zp (the border of `out` stays 0)."""
    n_, c_, h_, w_ = x.shape
    cnt = np.uint64(w_)
    off = np.uint64(pl)
    for n in range(n_):
        for c in range(c_):
            for y in range(h_):
                src = x[n, c, y]
                dst = out[n, c, pt + y]
                for k in range(cnt):
                    dst[off + k] = src[k] - zp


@njit(cache=True)
def _center(x, zp, out):
    """out = x - zp on flat arrays (types converted elementwise)."""
    for i in range(x.size):
        out[i] = x[i] - zp


@njit(cache=True)
def _im2col(xp, n, c0, cg, kh, kw, sh, sw, dh, dw, oh, ow, cols):
    """cols[(ci*kh + ky)*kw + kx, oy*ow + ox] = xp[n, c0 + ci, oy*sh + ky*dh, ox*sw + kx*dw]."""
    for ci in range(cg):
        for ky in range(kh):
            for kx in range(kw):
                r = (ci * kh + ky) * kw + kx
                i0 = np.uint64(kx * dw)
                cnt = np.uint64(ow)
                step = np.uint64(sw)
                for oy in range(oh):
                    src = xp[n, c0 + ci, oy * sh + ky * dh]
                    dst = cols[r, oy * ow:(oy + 1) * ow]
                    for k in range(cnt):  # unsigned indices: no wrap-around check, vectorisable
                        dst[k] = src[i0 + k * step]


@njit(cache=True)
def _depthwise(xp, w, mult, sh, sw, dh, dw, acc):
    """Grouped conv with one input channel per group: acc[n, c] = sum_taps xp[n, c // mult] * w[c].

    Rows are 1-D views and the innermost loops index with unsigned integers: numba
    wraps negative signed indices around, and that check keeps LLVM from vectorising.
    """
    n_, c_, oh, ow = acc.shape
    kh, kw = w.shape[1], w.shape[2]
    cnt = np.uint64(ow)
    step = np.uint64(sw)
    for n in range(n_):
        for c in range(c_):
            ci = c // mult
            for oy in range(oh):
                row = acc[n, c, oy]
                for k in range(cnt):
                    row[k] = 0
                for ky in range(kh):
                    xrow = xp[n, ci, oy * sh + ky * dh]
                    for kx in range(kw):
                        wv = w[c, ky, kx]
                        i0 = np.uint64(kx * dw)
                        if sw == 1:
                            for k in range(cnt):
                                row[k] += xrow[i0 + k] * wv
                        else:
                            for k in range(cnt):
                                row[k] += xrow[i0 + k * step] * wv


@njit(cache=True)
def _col2im(cols, n, o0, og, kh, kw, h, w, sh, sw, dh, dw, pt, pl, acc):
    """Scatter-add the taps of a transposed conv: acc[n, o0+o, iy*sh + ky*dh - pt, ix*sw + kx*dw - pl] += cols.

    The valid ix range of a tap is computed once (ox inside [0, ow)), so the inner
    loop has no branch and runs on unsigned indices.
    """
    oh, ow = acc.shape[2], acc.shape[3]
    step = np.uint64(sw)
    for kx in range(kw):
        shift = kx * dw - pl
        ix0 = 0 if shift >= 0 else (-shift + sw - 1) // sw  # first ix with ox >= 0
        ix1 = min(w, (ow - 1 - shift) // sw + 1) if ow - 1 - shift >= 0 else 0  # past the last ix with ox < ow
        if ix1 <= ix0:
            continue
        cnt = np.uint64(ix1 - ix0)
        ox0 = np.uint64(ix0 * sw + shift)
        for o in range(og):
            for ky in range(kh):
                r = (o * kh + ky) * kw + kx
                for iy in range(h):
                    oy = iy * sh + ky * dh - pt
                    if oy < 0 or oy >= oh:
                        continue
                    dst = acc[n, o0 + o, oy]
                    src = cols[r, iy * w + ix0:]
                    for k in range(cnt):
                        dst[ox0 + k * step] += np.int64(src[k])


@njit(cache=True)
def _requant_channels(acc, bias, M, sh, m32, fp32, zp, lo, hi, out):
    """out[a, c, p] = clamp(zp + R(int64(acc[a, c, p]) + bias[c], M[c], sh[c]), lo[c], hi[c]);
    with fp32, R is the float32 requantization by m32[c]."""
    a_, c_, p_ = acc.shape
    for a in range(a_):
        for c in range(c_):
            b = bias[c]
            m = M[c]
            s = sh[c]
            f = m32[c]
            l = lo[c]
            h = hi[c]
            if fp32:
                for p in range(p_):
                    out[a, c, p] = requant_float32(np.int64(acc[a, c, p]) + b, f, zp, l, h)
            else:
                for p in range(p_):
                    out[a, c, p] = requant(np.int64(acc[a, c, p]) + b, m, s, zp, l, h)


@njit(cache=True)
def _requant_rows(acc, wp, bias, M, sh, m32, fp32, zp, lo, hi, out):
    """out[c, y, x] = clamp(zp + R(int64(acc[c, y*wp + x]) + bias[c], M[c], sh[c]), lo[c], hi[c]);
    with fp32, R is the float32 requantization by m32[c]."""
    c_, oh, ow = out.shape
    row = np.uint64(wp)
    cnt = np.uint64(ow)
    for c in range(c_):
        b = bias[c]
        m = M[c]
        s = sh[c]
        f = m32[c]
        l = lo[c]
        h = hi[c]
        for y in range(oh):
            src = acc[c, np.uint64(y) * row:]
            dst = out[c, y]
            if fp32:
                for k in range(cnt):
                    dst[k] = requant_float32(np.int64(src[k]) + b, f, zp, l, h)
            else:
                for k in range(cnt):
                    dst[k] = requant(np.int64(src[k]) + b, m, s, zp, l, h)


# ------------------------------------------------------------------ shared preparation
def _float32_requantization(ctx: LayerContext, M: np.ndarray, n: np.ndarray) -> tuple[bool, np.ndarray]:
    """(float32 requantization?, the float32 multipliers) from the optional `requantization` parameter,
    which must agree with the layer's attribute; the multipliers must be float32 values exactly."""
    chk = ctx.check
    code = 0
    if "requantization" in chk.params:
        code = int(chk.in_range("requantization", chk.array("requantization", 1), 0, 1)[0])
    attr = ctx.attrs.get("requantization", "integer")
    chk.need(attr in REQUANTIZATIONS and code == REQUANTIZATIONS.index(attr),
             f"parameter 'requantization' is {code} but the layer's requantization attribute is {attr!r}")
    if not code:
        return False, np.zeros(M.shape, np.float32)
    try:
        return True, np.ascontiguousarray(multiplier_float32(M, n))
    except QuantizationError as exc:
        raise chk.fail(str(exc)) from None


class _Epilogue:
    """Bias, per-channel multipliers and clamps of a MAC layer, validated once (clamps stored per tensor
    are broadcast to every channel, so the kernels always index lo[c], hi[c])."""

    def __init__(self, ctx: LayerContext, channels: int) -> None:
        chk = ctx.check
        M, n = chk.multiplier()
        chk.need(M.size in (1, channels), f"{M.size} multipliers for {channels} output channels")
        self.M = np.ascontiguousarray(np.broadcast_to(M, (channels,)))
        self.n = np.ascontiguousarray(np.broadcast_to(n, (channels,)))
        self.fp32, self.m32 = _float32_requantization(ctx, self.M, self.n)
        self.zp, self.lo, self.hi = chk.channel_clamps(ctx.out_dtype(0), channels)
        words = chk.array("bias_words")
        shifts = chk.in_range("bias_shift", chk.array("bias_shift"), 0, 31)
        chk.need(words.ndim == 2 and words.shape == (shifts.size, channels) and shifts.size <= 2,
                 f"bias_words shape {words.shape} does not match {channels} channels / {shifts.size} shifts")
        chk.in_range("bias_words", words, -(1 << 31), (1 << 31) - 1)
        self.bias = (np.left_shift(words, shifts[:, None]).sum(axis=0) if shifts.size
                     else np.zeros(channels, np.int64)).astype(np.int64)
        self.bias_bound = int(np.max(np.abs(self.bias), initial=0))

    def run(self, acc3: np.ndarray, out3: np.ndarray) -> None:
        _requant_channels(acc3, self.bias, self.M, self.n, self.m32, self.fp32, self.zp, self.lo, self.hi, out3)


def _weight_constant(ctx: LayerContext, index: int = 1) -> np.ndarray:
    w = ctx.constant(index)
    ctx.check.need(w is not None, "the weight must be a constant of the binary")
    ctx.check.need(w.dtype.kind in "iu", f"weight has dtype {w.dtype}, expected an integer type")
    return w.astype(np.int64)


def _input_zero_point(ctx: LayerContext, count: int = 1) -> np.ndarray:
    return ctx.check.zero_points("input_zero_point", count)


def _conv_layer(ctx: LayerContext, kind: str):
    """checker, 4-D input, constant weight and output, int strides, dilations, pads and group of a (transposed) conv."""
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    w = _weight_constant(ctx)
    chk.need(x.ndim == 4 and w.ndim == 4 and out.ndim == 4, f"{kind} needs 4-D input, weight and output")
    a = ctx.attrs
    strides = tuple(int(v) for v in a["strides"])
    dilations = tuple(int(v) for v in a["dilations"])
    pads = tuple(int(v) for v in a["pads"])
    return chk, x, w, out, strides, dilations, pads, int(a["group"])


# ------------------------------------------------------------------ Conv
def prepare_conv(ctx: LayerContext) -> Step:
    chk, x, w, out, (sh, sw), (dh, dw), (pt, pl, pb, pr), g = _conv_layer(ctx, "Conv")
    n_, c_, h_, w_ = x.shape
    cout, cg, kh, kw = w.shape
    _, oc, oh, ow = out.shape
    chk.need(min(sh, sw, dh, dw, g) >= 1 and min(pt, pl, pb, pr) >= 0, "bad conv geometry")
    chk.need(c_ == cg * g and cout == oc and cout % g == 0 and out.shape[0] == n_, "conv channel counts disagree")
    hp, wp = h_ + pt + pb, w_ + pl + pr
    chk.need(oh >= 1 and ow >= 1 and (oh - 1) * sh + (kh - 1) * dh < hp and (ow - 1) * sw + (kw - 1) * dw < wp,
             f"output {out.shape} does not fit the padded input")
    zx = int(_input_zero_point(ctx)[0])
    ep = _Epilogue(ctx, cout)
    bound = centered_bound(x.dtype, zx) * int(np.abs(w).reshape(cout, -1).sum(axis=1).max(initial=0))
    dt = accumulation_dtype(bound)
    padded = bool(pt or pl or pb or pr)
    xp = np.zeros((n_, c_, hp, wp), dt)
    acc = np.empty((n_, cout, oh, ow), dt)
    acc3 = acc.reshape(n_, cout, oh * ow)
    out3 = out.reshape(n_, cout, oh * ow)
    og = cout // g
    pointwise = kh == kw == 1 and sh == sw == 1 and not padded and g == 1
    ctx.log_choice(f"acc {dt}, bound {bound}")

    def fill() -> None:
        if padded:
            _center_pad(x, zx, xp, pt, pl)
        else:
            _center(x.reshape(-1), zx, xp.reshape(-1))

    if pointwise:
        wm = np.ascontiguousarray(w.reshape(cout, c_).astype(dt))
        xm = xp.reshape(n_, c_, h_ * w_)

        def step() -> None:
            fill()
            for b in range(n_):
                np.matmul(wm, xm[b], out=acc3[b])
            ep.run(acc3, out3)
        return for_gemm(step, n_ * cout * c_ * h_ * w_)

    if cg == 1:
        wd = np.ascontiguousarray(w.reshape(cout, kh, kw).astype(dt))
        mult = og

        def step() -> None:
            fill()
            _depthwise(xp, wd, mult, sh, sw, dh, dw, acc)
            ep.run(acc3, out3)
        return step

    if sh == sw == 1:
        return for_gemm(_shifted_taps(x, w, out, xp, fill, ep, g, dh, dw, dt), n_ * cout * cg * kh * kw * oh * ow)

    k = cg * kh * kw
    wg = [np.ascontiguousarray(w[i * og:(i + 1) * og].reshape(og, k).astype(dt)) for i in range(g)]
    cols = np.empty((k, oh * ow), dt)

    def step() -> None:
        fill()
        for b in range(n_):
            for i in range(g):
                _im2col(xp, b, i * cg, cg, kh, kw, sh, sw, dh, dw, oh, ow, cols)
                np.matmul(wg[i], cols, out=acc3[b, i * og:(i + 1) * og])
        ep.run(acc3, out3)
    return for_gemm(step, n_ * cout * k * oh * ow)


def _shifted_taps(x, w, out, xp, fill, ep, g, dh, dw, dt) -> Step:
    """Stride-1 conv as one GEMM per tap on shifted views of the flat padded input (no im2col).

    With the padded input flattened per channel (row length wp), output (y, x) sits at
    flat position y*wp + x and tap (ky, kx) reads it at offset ky*dh*wp + kx*dw, so
    ``acc[:, :L] += W_tap @ xp[:, off:off + L]`` with ``L = (oh-1)*wp + ow`` covers every
    output; the columns x >= ow of each row are computed and never read. Each partial
    sum is a subset of one output's products, so the exactness bound still holds.
    """
    n_, c_, hp, wp = xp.shape
    cout, cg, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    og = cout // g
    L = (oh - 1) * wp + ow
    taps = [(ky * dh * wp + kx * dw, [np.ascontiguousarray(w[i * og:(i + 1) * og, :, ky, kx].astype(dt))
                                      for i in range(g)]) for ky in range(kh) for kx in range(kw)]
    acc = np.empty((cout, L), dt)
    tmp = np.empty((og, L), dt)
    flat = xp.reshape(n_, c_, hp * wp)

    def step() -> None:
        fill()
        for b in range(n_):
            for i in range(g):
                dst = acc[i * og:(i + 1) * og]
                src = flat[b, i * cg:(i + 1) * cg]
                for t, (off, ws) in enumerate(taps):
                    if t == 0:
                        np.matmul(ws[i], src[:, off:off + L], out=dst)
                    else:
                        np.matmul(ws[i], src[:, off:off + L], out=tmp)
                        dst += tmp
            _requant_rows(acc, wp, ep.bias, ep.M, ep.n, ep.m32, ep.fp32, ep.zp, ep.lo, ep.hi, out[b])
    return step


# ------------------------------------------------------------------ ConvTranspose
def prepare_conv_transpose(ctx: LayerContext) -> Step:
    chk, x, w, out, (sh, sw), (dh, dw), (pt, pl, _, _), g = _conv_layer(ctx, "ConvTranspose")
    n_, c_, h_, w_ = x.shape
    cin, og, kh, kw = w.shape
    chk.need(min(sh, sw, dh, dw, g) >= 1 and pt >= 0 and pl >= 0, "bad transposed conv geometry")
    chk.need(cin == c_ and c_ % g == 0 and out.shape[:2] == (n_, og * g), "transposed conv channel counts disagree")
    cg = c_ // g
    zx = int(_input_zero_point(ctx)[0])
    ep = _Epilogue(ctx, og * g)
    # a column entry sums over the cg input channels of one group for one (output channel, tap)
    col_sums = np.abs(w).reshape(g, cg, og * kh * kw).sum(axis=1)
    bound = centered_bound(x.dtype, zx) * int(col_sums.max(initial=0))
    dt = accumulation_dtype(bound)
    xc = np.empty((n_, c_, h_ * w_), dt)
    wt = [np.ascontiguousarray(w[i * cg:(i + 1) * cg].reshape(cg, og * kh * kw).T.astype(dt)) for i in range(g)]
    cols = np.empty((og * kh * kw, h_ * w_), dt)
    acc = np.zeros(out.shape, np.int64)
    _, oc, oh, ow = out.shape
    acc3 = acc.reshape(n_, oc, oh * ow)
    out3 = out.reshape(n_, oc, oh * ow)

    def step() -> None:
        _center(x.reshape(-1), zx, xc.reshape(-1))
        acc.fill(0)
        for b in range(n_):
            for i in range(g):
                np.matmul(wt[i], xc[b, i * cg:(i + 1) * cg], out=cols)
                _col2im(cols, b, i * og, og, kh, kw, h_, w_, sh, sw, dh, dw, pt, pl, acc)
        ep.run(acc3, out3)
    return for_gemm(step, n_ * og * kh * kw * c_ * h_ * w_)


# ------------------------------------------------------------------ Gemm / MatMul
def prepare_gemm(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    w = _weight_constant(ctx)
    chk.need(x.ndim == 2 and w.ndim == 2 and x.shape[1] == w.shape[1] and out.shape == (x.shape[0], w.shape[0]),
             f"Gemm shapes {x.shape} x {w.shape} -> {out.shape} disagree")
    zx = int(_input_zero_point(ctx)[0])
    cout = w.shape[0]
    ep = _Epilogue(ctx, cout)
    bound = centered_bound(x.dtype, zx) * int(np.abs(w).sum(axis=1).max(initial=0))
    dt = accumulation_dtype(bound)
    wt = np.ascontiguousarray(w.T.astype(dt))
    xc = np.empty(x.shape, dt)
    acc = np.empty(out.shape, dt)
    acc3 = acc.reshape(out.shape[0], cout, 1)
    out3 = out.reshape(out.shape[0], cout, 1)

    def step() -> None:
        _center(x.reshape(-1), zx, xc.reshape(-1))
        np.matmul(xc, wt, out=acc)
        ep.run(acc3, out3)
    return for_gemm(step, x.shape[0] * x.shape[1] * cout)


def prepare_matmul(ctx: LayerContext) -> Step:
    chk = ctx.check
    x, b, out = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    chk.need(x is not None and b is not None, "MatMul needs two inputs")
    const_b = ctx.constant(1) is not None
    zps = _input_zero_point(ctx, 1 if const_b else 2)
    zx = int(zps[0])
    k = b.shape[-2] if b.ndim > 1 else b.shape[0]
    channels = b.shape[-1] if b.ndim > 1 else 1
    try:
        # zero-stride operands: only the (small) output is allocated
        expected = np.matmul(np.broadcast_to(np.int8(0), x.shape), np.broadcast_to(np.int8(0), b.shape)).shape
    except ValueError:
        raise chk.fail(f"MatMul shapes {x.shape} @ {b.shape} do not match") from None
    chk.need(expected == out.shape, f"MatMul output {out.shape} != {expected}")
    if const_b:
        wb = _weight_constant(ctx)
        col = np.abs(wb).sum(axis=-2) if wb.ndim > 1 else np.abs(wb).sum(keepdims=True)
        bound = centered_bound(x.dtype, zx) * int(col.max(initial=0))
        zb = 0
    else:
        chk.need(b.dtype.kind in "iu", f"input b has dtype {b.dtype}")
        zb = int(zps[1])
        bound = centered_bound(x.dtype, zx) * centered_bound(b.dtype, zb) * k
    ep = _Epilogue(ctx, channels)
    dt = accumulation_dtype(bound)
    xc = np.empty(x.shape, dt)
    bc = (wb.astype(dt) if const_b else np.empty(b.shape, dt))
    acc = np.empty(out.shape, dt)
    rows = int(np.prod(out.shape, dtype=np.int64)) // channels if channels else 0
    acc3 = acc.reshape(rows, channels, 1)
    out3 = out.reshape(rows, channels, 1)

    def step() -> None:
        _center(x.reshape(-1), zx, xc.reshape(-1))
        if not const_b:
            _center(b.reshape(-1), zb, bc.reshape(-1))
        np.matmul(xc, bc, out=acc)
        ep.run(acc3, out3)
    return for_gemm(step, out.size * k)


PREPARERS = {
    "Conv": prepare_conv,
    "ConvTranspose": prepare_conv_transpose,
    "Gemm": prepare_gemm,
    "MatMul": prepare_matmul,
}
