"""Float kernels for Conv and ConvTranspose (NCHW activations, OIHW weights, ONNX semantics).

Code paths, all vectorised and BLAS-backed (loops run over kernel taps and
cache-sized blocks, never over pixels):
- pointwise (1x1, no padding): one matmul over the pixels, no im2col;
- depthwise (group == channels, one input channel per group): a numba loop
  nest reading the unpadded input directly (per output row, a multiply-add per
  tap over the contiguous row: vectorised by LLVM), no padding copy, no
  temporaries -- small depthwise convs were dominated by numpy call overhead
  and a 25-tap gather buffer; float16 and other dtypes take the numpy path:
  a sum over the kh*kw taps of shifted input rows times per-channel weights;
- grouped / general convs with enough input channels per group: a sum over
  taps of (Cout x Cin) @ shifted-input matmuls (no im2col buffer at all);
- general convs with few input channels (the RGB stem): im2col of contiguous
  rows, one matmul per block of pixels;
- ConvTranspose: one matmul giving every tap's contribution of every input
  pixel, then a col2im scatter-add with one strided slice per tap.
Shifted inputs come from the phase-split "wide" layout of spatial.py, so
strides and dilations cost nothing extra and every numpy call streams long
contiguous rows. Bias and fused activation are applied block by block while
the block is in cache. Memory stays bounded: buffers are sized by the
*_BLOCK_ELEMENTS constants, not by the image.
"""
from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from npuc.backends.reference.fused_activation import InplaceActivation, apply_fused_activation, fused_activation
from npuc.ir.ops.conv import clip_is_per_channel
from npuc.backends.reference.kernels import kernel, preparer
from npuc.backends.reference.parallel import current_threads, parallel_for
from npuc.backends.reference.spatial import WideGeometry, pad_spatial
from npuc.ir.op import Op

#: Elements of the im2col buffer per matmul block (8 MiB of float32).
IM2COL_BLOCK_ELEMENTS = 1 << 21
#: Output elements per block in cache-blocked loops (about 512 KiB of float32: fits in L2).
CACHE_BLOCK_ELEMENTS = 1 << 17
#: Elements of the per-channel tap buffer of depthwise convs (4 MiB of float32).
DEPTHWISE_BLOCK_ELEMENTS = 1 << 20
#: Fewest pixels per matmul block (BLAS needs some width to be efficient).
MIN_BLOCK_COLUMNS = 512
#: Fewest multiply-adds per chunk handed to a worker thread (smaller ops run on the calling thread).
PARALLEL_MIN_MACS = 4_000_000
#: Below this many input channels per group a tap-by-tap matmul is too thin: use im2col.
MIN_CHANNELS_FOR_TAP_MATMUL = 16

__all__ = ["conv2d", "conv_transpose2d", "pad_spatial"]


def _epilogue(y: np.ndarray, bias: np.ndarray | None, act: InplaceActivation | None) -> None:
    """Add a per-channel bias (channels on axis 0 of y) and apply the activation, in place."""
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * (y.ndim - 1))
    if act is not None:
        act(y)


def _pointwise(x, w, bias, strides, group, out, act) -> None:
    """1x1 convolution without padding: out[n] = W @ x[n] over the pixels."""
    sh, sw = strides
    if sh != 1 or sw != 1:
        x = np.ascontiguousarray(x[:, :, ::sh, ::sw][:, :, : out.shape[2], : out.shape[3]])
    n, c = x.shape[:2]
    o = w.shape[0]
    p = out.shape[2] * out.shape[3]
    if group == 1:
        wm = w.reshape(o, c)
        chunks = _chunks(p // MIN_BLOCK_COLUMNS, o * c * p)
        for b in range(n):
            ob = out[b].reshape(o, p)  # contiguous: always a view
            xb = x[b].reshape(c, p)
            if chunks == 1:
                np.matmul(wm, xb, out=ob)
                _epilogue(ob, bias, act)
                continue
            step = -(-p // chunks)

            def cols(i: int, ob=ob, xb=xb) -> None:  # column slices keep unit stride: still BLAS
                o_i = ob[:, i * step:(i + 1) * step]
                np.matmul(wm, xb[:, i * step:(i + 1) * step], out=o_i)
                _epilogue(o_i, bias, act)

            parallel_for(-(-p // step), cols)
        return
    og, cg = o // group, c // group
    wm = w.reshape(group, og, cg)
    for b in range(n):
        ob = out[b].reshape(group, og, p)
        np.matmul(wm, x[b].reshape(group, cg, p), out=ob)
        _epilogue(ob.reshape(o, p), bias, act)


@numba.njit(cache=True, nogil=True)
def _depthwise_nb(x, w, bias, out, sh, sw, pt, pl, dh, dw, mult, c0, c1):  # pragma: no cover - compiled
    """Depthwise conv on the unpadded input, output channels c0:c1: out[b, o] = bias[o] + sum of w * shifted x[b, o // mult].

    The innermost loops index with unsigned integers: numba wraps negative
    signed indices around, and that check keeps LLVM from vectorising (5x slower).
    """
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    # per kx: the output columns whose input column ox * sw + off lies inside the row, and where
    # they start reading (the integer divisions cost more than a short row's arithmetic: hoisted)
    cnt = np.zeros(kw, dtype=np.uint64)
    o0 = np.zeros(kw, dtype=np.uint64)
    i0 = np.zeros(kw, dtype=np.uint64)
    for kx in range(kw):
        off = kx * dw - pl
        a = 0 if off >= 0 else (-off + sw - 1) // sw
        e = (wd - 1 - off) // sw + 1 if wd - 1 - off >= 0 else 0
        if e > ow:
            e = ow
        if e > a:
            cnt[kx] = e - a
            o0[kx] = a
            i0[kx] = a * sw + off
    step = numba.uint64(sw)
    for b in range(n):
        for oc in range(c0, c1):
            ic = oc // mult
            bv = bias[oc]
            for oy in range(oh):
                row = out[b, oc, oy]
                for ox in range(ow):
                    row[ox] = bv
                for ky in range(kh):
                    iy = oy * sh - pt + ky * dh
                    if iy < 0 or iy >= h:
                        continue
                    xrow = x[b, ic, iy]
                    for kx in range(kw):
                        wv = w[oc, 0, ky, kx]
                        c, r0, s0 = cnt[kx], o0[kx], i0[kx]
                        if sw == 1:
                            for k in range(c):
                                row[r0 + k] += wv * xrow[s0 + k]
                        else:
                            for k in range(c):
                                row[r0 + k] += wv * xrow[s0 + k * step]


def _depthwise_fast(x, w, bias, strides, pads, dilations, out, act) -> bool:
    """The numba depthwise path for float32/float64; False when it does not apply."""
    if x.dtype not in (np.float32, np.float64):
        return False
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    o = w.shape[0]
    b = np.zeros(o, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias.reshape(-1))
    args = (strides[0], strides[1], pads[0], pads[1], dilations[0], dilations[1], o // x.shape[1])
    chunks = _chunks(o, out.size * w.shape[2] * w.shape[3])
    if chunks == 1:
        _depthwise_nb(x, w, b, out, *args, 0, o)
        if act is not None:
            act(out)
        return True
    step = -(-o // chunks)

    def chunk(i: int) -> None:
        c0, c1 = i * step, min(o, (i + 1) * step)
        _depthwise_nb(x, w, b, out, *args, c0, c1)
        if act is not None:
            act(out[:, c0:c1])

    parallel_for(-(-o // step), chunk)
    return True


def _depthwise(x, w, bias, geo: WideGeometry, out, act) -> None:
    """Depthwise convolution (weight (C*m, 1, kh, kw), group = C).

    Per block of channels: gather each tap's shifted contiguous row into a
    (channels, taps, pixels) buffer, then contract the taps with one einsum --
    far fewer memory passes than a multiply-add per tap, and no BLAS call: a
    multi-threaded BLAS gemv with one output row stalls badly when the cores
    are shared.
    """
    o = w.shape[0]
    mult = o // x.shape[1]
    if mult > 1:  # output channel k reads input channel k // mult
        x = np.repeat(x, mult, axis=1)
    ntap = len(geo.taps)
    wt = w.reshape(o, ntap)
    plen = geo.wide_len
    cc = max(1, min(o, DEPTHWISE_BLOCK_ELEMENTS // max(ntap * plen, 1)))
    cols_buf = np.empty((cc, ntap, plen), dtype=out.dtype)
    acc_buf = np.empty((cc, plen), dtype=out.dtype)
    kh, kw = w.shape[2:]
    for b in range(x.shape[0]):
        flat = geo.flatten(x[b])
        for c0 in range(0, o, cc):
            c1 = min(o, c0 + cc)
            cols, acc = cols_buf[: c1 - c0], acc_buf[: c1 - c0]  # leading-axis slices stay contiguous
            if geo.strides == (1, 1):  # one phase: all taps in a single strided copy
                cols.reshape(c1 - c0, kh, kw, plen)[...] = geo.tap_view(flat[0, c0:c1], kh, kw)
            else:
                for t, (ph, off) in enumerate(geo.taps):
                    cols[:, t] = flat[ph, c0:c1, off:off + plen]
            np.einsum("ctp,ct->cp", cols, wt[c0:c1], out=acc)
            _epilogue(acc, None if bias is None else bias[c0:c1], act)
            out[b, c0:c1] = geo.narrow(acc)


def _chunks(units: int, macs: int) -> int:
    """How many independent chunks to split `units` (rows, channels) into for the worker threads.

    1 when threads are off or the op is too small for a hand-off to pay
    (PARALLEL_MIN_MACS per chunk); else about two chunks per thread for balance.
    """
    t = current_threads()
    if t <= 1 or units <= 1:
        return 1
    return max(1, min(units, 2 * t, macs // PARALLEL_MIN_MACS))


def _row_blocks(geo: WideGeometry, target_cols: int, macs: int = 0) -> list[tuple[int, int]]:
    """(first row, end row) blocks of the wide output grid holding about target_cols pixels each
    (smaller when needed to give every worker thread a share of a big op)."""
    rows = max(1, min(geo.oh, max(MIN_BLOCK_COLUMNS, target_cols) // geo.wq))
    chunks = _chunks(geo.oh, macs)
    if chunks > 1:
        rows = min(rows, max(1, -(-geo.oh // chunks)))
    return [(r0, min(geo.oh, r0 + rows)) for r0 in range(0, geo.oh, rows)]


def _tap_matmul(x, w, bias, geo: WideGeometry, group: int, out, act) -> None:
    """Grouped/general convolution as a sum over taps of (Cout x Cin) @ shifted-input matmuls."""
    o, cg, kh, kw = w.shape
    og = o // group
    ntap = kh * kw
    wt = np.ascontiguousarray(w.reshape(group, og, cg, ntap).transpose(3, 0, 1, 2))  # (T, G, Og, Cg)
    wq = geo.wq
    blocks = _row_blocks(geo, CACHE_BLOCK_ELEMENTS // max(o, 1), out[0].size * cg * ntap)
    for b in range(x.shape[0]):
        flat = geo.flatten(x[b])
        flat = flat.reshape(flat.shape[0], group, cg, flat.shape[-1])

        def block(i: int, b=b, flat=flat) -> None:
            r0, r1 = blocks[i]
            p0, p1 = r0 * wq, r1 * wq
            # matmul into contiguous buffers (numpy only uses BLAS for those), then accumulate
            acc = tmp = None
            for t, (ph, off) in enumerate(geo.taps):
                src = flat[ph, :, :, off + p0:off + p1]
                if acc is None:
                    acc = np.matmul(wt[t], src)
                    tmp = np.empty_like(acc)
                else:
                    np.matmul(wt[t], src, out=tmp)
                    acc += tmp
            acc = acc.reshape(o, p1 - p0)
            _epilogue(acc, bias, act)
            out[b, :, r0:r1] = acc.reshape(o, r1 - r0, wq)[:, :, : geo.ow]

        parallel_for(len(blocks), block)


def _im2col(x, w, bias, geo: WideGeometry, out, act) -> None:
    """Convolution with few input channels: im2col of contiguous shifted rows, one matmul per block of rows."""
    o, c, kh, kw = w.shape
    ntap = kh * kw
    k = ntap * c
    wm = np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(o, k))  # tap-major, channel-minor
    wq = geo.wq
    blocks = _row_blocks(geo, IM2COL_BLOCK_ELEMENTS // k, out[0].size * k)
    for b in range(x.shape[0]):
        flat = geo.flatten(x[b])

        def block(i: int, b=b, flat=flat) -> None:
            r0, r1 = blocks[i]
            p0, p1 = r0 * wq, r1 * wq
            cols = np.empty((k, p1 - p0), dtype=out.dtype)
            for t, (ph, off) in enumerate(geo.taps):
                cols[t * c:(t + 1) * c] = flat[ph, :, off + p0:off + p1]
            r = np.matmul(wm, cols)
            _epilogue(r, bias, act)
            out[b, :, r0:r1] = r.reshape(o, r1 - r0, wq)[:, :, : geo.ow]

        parallel_for(len(blocks), block)


def _in_dtype_of(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None):
    """Weight and bias cast to x's dtype (no copy when they already match)."""
    if w.dtype != x.dtype:
        w = w.astype(x.dtype)
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.astype(x.dtype)
    return w, bias


def _int_geometry(strides, dilations, pads):
    """(sh, sw), (dh, dw), (pt, pl, pb, pr) as Python ints."""
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(d) for d in dilations)
    pt, pl, pb, pr = (int(p) for p in pads)
    return (sh, sw), (dh, dw), (pt, pl, pb, pr)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides=(1, 1),
    pads=(0, 0, 0, 0),
    dilations=(1, 1),
    group: int = 1,
    act: InplaceActivation | None = None,
) -> np.ndarray:
    """2-D convolution, ONNX semantics (pads = top, left, bottom, right), optional in-place activation."""
    w, bias = _in_dtype_of(x, w, bias)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = _int_geometry(strides, dilations, pads)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, o, oh, ow), dtype=x.dtype)
    if kh == 1 and kw == 1 and not (pt or pl or pb or pr):
        _pointwise(x, w, bias, (sh, sw), group, out, act)
        return out
    depthwise = group == c and cg == 1 and group > 1
    if depthwise and _depthwise_fast(x, w, bias, (sh, sw), (pt, pl), (dh, dw), out, act):
        return out
    geo = WideGeometry.make(h, wd, (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw), oh, ow)
    if depthwise:
        _depthwise(x, w, bias, geo, out, act)
    elif group == 1 and cg < MIN_CHANNELS_FOR_TAP_MATMUL:
        _im2col(x, w, bias, geo, out, act)
    else:
        _tap_matmul(x, w, bias, geo, group, out, act)
    return out


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides=(1, 1),
    pads=(0, 0, 0, 0),
    dilations=(1, 1),
    group: int = 1,
    output_padding=(0, 0),
    act: InplaceActivation | None = None,
) -> np.ndarray:
    """2-D transposed convolution, ONNX semantics; weight is (Cin, Cout/group, kh, kw)."""
    w, bias = _in_dtype_of(x, w, bias)
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    o = og * group
    cg = c // group
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = _int_geometry(strides, dilations, pads)
    oph, opw = (int(p) for p in output_padding)
    full_h = sh * (h - 1) + dh * (kh - 1) + 1 + oph
    full_w = sw * (wd - 1) + dw * (kw - 1) + 1 + opw
    oh, ow = full_h - pt - pb, full_w - pl - pr
    # (G, Og*kh*kw, Cg): every tap's contribution of every input pixel in one matmul
    wm = np.ascontiguousarray(w.reshape(group, cg, og * kh * kw).transpose(0, 2, 1))
    out = np.empty((n, o, oh, ow), dtype=x.dtype)
    # taps never overlap (stride == kernel, no dilation, no crop): assign each tap's pixels directly
    tiles = dh == 1 and dw == 1 and sh == kh and sw == kw and not (pt or pl or pb or pr or oph or opw)
    for b in range(n):
        cols = np.matmul(wm, x[b].reshape(group, cg, h * wd)).reshape(o, kh, kw, h, wd)
        full = out[b] if tiles else np.zeros((o, full_h, full_w), dtype=x.dtype)
        for ky in range(kh):
            y0 = ky * dh
            for kx in range(kw):
                x0 = kx * dw
                dst = full[:, y0:y0 + sh * (h - 1) + 1:sh, x0:x0 + sw * (wd - 1) + 1:sw]
                if tiles:
                    dst[...] = cols[:, ky, kx]
                else:
                    dst += cols[:, ky, kx]
        if not tiles:
            out[b] = full[:, pt:pt + oh, pl:pl + ow]
        _epilogue(out[b], bias, act)
    return out


def _conv_operands(op: Op, inputs: list):
    """x, w, optional bias, the op's attrs and its fused activation (None for a per-channel clip,
    which `_after` applies to the whole output: the kernels apply `act` to channel slices)."""
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    act = None if clip_is_per_channel(op.attrs) else fused_activation(op.attrs, x.dtype)
    return x, w, bias, op.attrs, act


def _after(op: Op, y: np.ndarray) -> np.ndarray:
    if clip_is_per_channel(op.attrs):
        apply_fused_activation(op.attrs, y, 1)
    return y


@kernel("Conv")
def conv_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x, w, bias, a, act = _conv_operands(op, inputs)
    return [_after(op, conv2d(x, w, bias, a["strides"], a["pads"], a["dilations"], int(a["group"]), act))]


@kernel("ConvTranspose")
def conv_transpose_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x, w, bias, a, act = _conv_operands(op, inputs)
    return [_after(op, conv_transpose2d(x, w, bias, a["strides"], a["pads"], a["dilations"], int(a["group"]),
                                        a["output_padding"], act))]


@preparer("Conv")
def prepare_conv(op: Op, inputs) -> "Callable | None":
    """Specialised kernels for the small pointwise and depthwise convs of small models.

    Their arithmetic takes a few microseconds, so attribute parsing, dtype
    checks and weight reshapes per call were a large share; here they happen
    once. Big convs (split across threads) keep the generic kernel.
    """
    x_t, w_t = inputs[0], inputs[1]
    b_t = inputs[2] if len(inputs) > 2 else None
    if x_t is None or w_t is None or not w_t.is_const or (b_t is not None and not b_t.is_const):
        return None
    dt = x_t.dtype.numpy
    if dt not in (np.float32, np.float64) or len(x_t.shape) != 4 or w_t.data.ndim != 4:
        return None
    a = op.attrs
    xshape = tuple(x_t.shape)
    n, c, h, wd = xshape
    w_src, b_src = w_t.data, (None if b_t is None else b_t.data)
    o, cg, kh, kw = w_src.shape
    sh, sw = (int(v) for v in a["strides"])
    dh, dw = (int(v) for v in a["dilations"])
    pt, pl, pb, pr = (int(v) for v in a["pads"])
    group = int(a["group"])
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        return None
    oshape = (n, o, oh, ow)
    if n * o * oh * ow * cg * kh * kw >= 2 * PARALLEL_MIN_MACS:
        return None
    # a per-channel clip is applied to the whole output (channels on axis 1), any other activation per slice
    whole = fused_activation(a, np.dtype(dt), 1) if clip_is_per_channel(a) else None
    act = None if whole is not None else fused_activation(a, np.dtype(dt))
    wc = np.ascontiguousarray(w_src, dtype=dt)
    bias = None if b_src is None else np.ascontiguousarray(b_src.reshape(-1), dtype=dt)
    generic = conv_kernel

    def same_inputs(ins) -> bool:
        x = ins[0]
        return (ins[1] is w_src and (len(ins) < 3 or ins[2] is b_src)
                and x.shape == xshape and x.dtype == dt)

    if kh == kw == 1 and sh == sw == 1 and not (pt or pl or pb or pr) and group == 1:
        wm = wc.reshape(o, c)
        b2 = None if bias is None else bias.reshape(o, 1)
        p = oh * ow

        def pointwise(op_: Op, ins: list) -> list[np.ndarray]:
            if not same_inputs(ins):
                return generic(op_, ins)
            x = ins[0]
            out = np.empty(oshape, dtype=dt)
            for b in range(n):
                ob = out[b].reshape(o, p)
                np.matmul(wm, x[b].reshape(c, p), out=ob)
                if b2 is not None:
                    ob += b2
                if act is not None:
                    act(ob)
            if whole is not None:
                whole(out)
            return [out]

        return pointwise
    if group == c and cg == 1 and group > 1:
        bz = np.zeros(o, dtype=dt) if bias is None else bias
        mult = o // c

        def depthwise(op_: Op, ins: list) -> list[np.ndarray]:
            if not same_inputs(ins):
                return generic(op_, ins)
            x = ins[0]
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            out = np.empty(oshape, dtype=dt)
            _depthwise_nb(x, wc, bz, out, sh, sw, pt, pl, dh, dw, mult, 0, o)
            if act is not None:
                act(out)
            if whole is not None:
                whole(out)
            return [out]

        return depthwise
    return None
