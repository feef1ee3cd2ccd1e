"""Float kernels for Conv and ConvTranspose (NCHW activations, OIHW weights, ONNX semantics).

Four code paths, all vectorised and BLAS-backed:
- pointwise (1x1): a plain matmul over the pixels, no im2col;
- depthwise (group == channels, one input channel per group): a sum over the
  kh*kw kernel taps of shifted input slices times per-channel weights,
  processed in channel blocks that fit in cache;
- general/grouped: im2col into a reused buffer, one (batched) matmul per block
  of output rows so memory stays bounded at large resolutions;
- ConvTranspose: one matmul giving every kernel tap's contribution, then a
  col2im scatter-add with one strided slice per tap (no per-pixel loop).
The fused activation and bias are applied block by block while the block is
still in cache.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.fused_activation import InplaceActivation, fused_activation
from npuc.backends.reference.kernels import kernel
from npuc.ir.op import Op

#: Elements of im2col buffer per matmul block (16 MiB of float32).
IM2COL_BLOCK_ELEMENTS = 1 << 22
#: Output elements per block in cache-blocked loops (about 512 KiB of float32: fits in L2).
CACHE_BLOCK_ELEMENTS = 1 << 17


def pad_spatial(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad the two spatial dims of an NCHW array; pads = (top, left, bottom, right). Returns x when no padding."""
    pt, pl, pb, pr = (int(p) for p in pads)
    if not (pt or pl or pb or pr):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _epilogue(y: np.ndarray, bias: np.ndarray | None, act: InplaceActivation | None) -> None:
    """Add a per-channel bias (channels on axis 0 of y) and apply the activation, in place."""
    if bias is not None:
        y += bias.reshape((-1,) + (1,) * (y.ndim - 1))
    if act is not None:
        act(y)


def _pointwise(x, w, bias, strides, group, out, act) -> None:
    """1x1 convolution on an already padded input: out[n] = W @ x[n] over the pixels."""
    sh, sw = strides
    if sh != 1 or sw != 1:
        x = x[:, :, ::sh, ::sw][:, :, : out.shape[2], : out.shape[3]]
    n, c = x.shape[:2]
    o = w.shape[0]
    p = out.shape[2] * out.shape[3]
    if group == 1:
        wm = w.reshape(o, c)
        cols = max(1, CACHE_BLOCK_ELEMENTS // max(o, 1))
        for b in range(n):
            xb = x[b].reshape(c, p)
            ob = out[b].reshape(o, p)  # contiguous: always a view
            if act is None and bias is None or p <= cols:
                np.matmul(wm, xb, out=ob)
                _epilogue(ob, bias, act)
                continue
            for p0 in range(0, p, cols):  # keep each output block in cache for bias + activation
                blk = ob[:, p0:p0 + cols]
                np.matmul(wm, xb[:, p0:p0 + cols], out=blk)
                _epilogue(blk, bias, act)
        return
    og, cg = o // group, c // group
    wm = w.reshape(group, og, cg)
    for b in range(n):
        res = np.matmul(wm, x[b].reshape(group, cg, p))
        ob = out[b].reshape(o, p)
        ob[...] = res.reshape(o, p)
        _epilogue(ob, bias, act)


def _depthwise(x, w, bias, strides, dilations, out, act) -> None:
    """Depthwise convolution on an already padded input (weight (C*m, 1, kh, kw), group = C)."""
    o, _, kh, kw = w.shape
    mult = o // x.shape[1]
    if mult > 1:  # output channel k reads input channel k // mult
        x = np.repeat(x, mult, axis=1)
    sh, sw = strides
    dh, dw = dilations
    n, _, oh, ow = out.shape
    taps = [(ky, kx) for ky in range(kh) for kx in range(kw)]
    wt = w.reshape(o, kh * kw)[:, :, None, None]  # (O, T, 1, 1)
    cc = max(1, min(o, CACHE_BLOCK_ELEMENTS // max(oh * ow, 1)))
    tmp = np.empty((cc, oh, ow), dtype=out.dtype)
    hspan, wspan = (oh - 1) * sh + 1, (ow - 1) * sw + 1
    for b in range(n):
        for c0 in range(0, o, cc):
            c1 = min(o, c0 + cc)
            acc = out[b, c0:c1]
            t_buf = tmp[: c1 - c0]
            for t, (ky, kx) in enumerate(taps):
                y0, x0 = ky * dh, kx * dw
                src = x[b, c0:c1, y0:y0 + hspan:sh, x0:x0 + wspan:sw]
                if t == 0:
                    np.multiply(src, wt[c0:c1, t], out=acc)
                else:
                    np.multiply(src, wt[c0:c1, t], out=t_buf)
                    acc += t_buf
            _epilogue(acc, None if bias is None else bias[c0:c1], act)


def _im2col_conv(x, w, bias, strides, dilations, group, out, act) -> None:
    """General (grouped) convolution on an already padded input via blocked im2col + matmul."""
    o, cg, kh, kw = w.shape
    n, c = x.shape[:2]
    _, _, oh, ow = out.shape
    sh, sw = strides
    dh, dw = dilations
    og = o // group
    k = cg * kh * kw
    wm = w.reshape(group, og, k)
    rows = max(1, min(oh, IM2COL_BLOCK_ELEMENTS // max(c * kh * kw * ow, 1)))
    buf = np.empty((c, kh, kw, rows, ow), dtype=out.dtype)
    wspan = (ow - 1) * sw + 1
    for b in range(n):
        ob = out[b]
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            nr = r1 - r0
            cols = buf[:, :, :, :nr] if nr < rows else buf
            for ky in range(kh):
                y0 = r0 * sh + ky * dh
                for kx in range(kw):
                    x0 = kx * dw
                    cols[:, ky, kx] = x[b, :, y0:y0 + (nr - 1) * sh + 1:sh, x0:x0 + wspan:sw]
            cm = cols.reshape(group, k, nr * ow)  # a copy only for the last, partial block
            blk = ob[:, r0:r1]
            if nr == oh:
                np.matmul(wm, cm, out=blk.reshape(group, og, nr * ow))
            else:
                blk[...] = np.matmul(wm, cm).reshape(o, nr, ow)
            _epilogue(blk, bias, act)


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
    if w.dtype != x.dtype:
        w = w.astype(x.dtype)
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.astype(x.dtype)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(d) for d in dilations)
    pt, pl, pb, pr = (int(p) for p in pads)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, o, oh, ow), dtype=x.dtype)
    xp = pad_spatial(x, (pt, pl, pb, pr))
    if kh == 1 and kw == 1:
        _pointwise(xp, w, bias, (sh, sw), group, out, act)
    elif group == c and cg == 1 and group > 1:
        _depthwise(xp, w, bias, (sh, sw), (dh, dw), out, act)
    else:
        _im2col_conv(xp, w, bias, (sh, sw), (dh, dw), group, out, act)
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
    if w.dtype != x.dtype:
        w = w.astype(x.dtype)
    if bias is not None and bias.dtype != x.dtype:
        bias = bias.astype(x.dtype)
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    o = og * group
    cg = c // group
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(d) for d in dilations)
    pt, pl, pb, pr = (int(p) for p in pads)
    oph, opw = (int(p) for p in output_padding)
    full_h = sh * (h - 1) + dh * (kh - 1) + 1 + oph
    full_w = sw * (wd - 1) + dw * (kw - 1) + 1 + opw
    oh, ow = full_h - pt - pb, full_w - pl - pr
    # (G, Og*kh*kw, Cg): every tap's contribution of every input pixel in one matmul
    wm = np.ascontiguousarray(w.reshape(group, cg, og * kh * kw).transpose(0, 2, 1))
    out = np.empty((n, o, oh, ow), dtype=x.dtype)
    tiles = dh == 1 and dw == 1 and sh == kh and sw == kw  # taps do not overlap: a pure reshuffle
    for b in range(n):
        cols = np.matmul(wm, x[b].reshape(group, cg, h * wd)).reshape(o, kh, kw, h, wd)
        full = np.zeros((o, full_h, full_w), dtype=x.dtype)
        if tiles:
            full[:, : h * kh, : wd * kw] = cols.transpose(0, 3, 1, 4, 2).reshape(o, h * kh, wd * kw)
        else:
            for ky in range(kh):
                y0 = ky * dh
                for kx in range(kw):
                    x0 = kx * dw
                    full[:, y0:y0 + sh * (h - 1) + 1:sh, x0:x0 + sw * (wd - 1) + 1:sw] += cols[:, ky, kx]
        out[b] = full[:, pt:pt + oh, pl:pl + ow]
        _epilogue(out[b], bias, act)
    return out


@kernel("Conv")
def conv_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    a = op.attrs
    act = fused_activation(a, x.dtype)
    return [conv2d(x, w, bias, a["strides"], a["pads"], a["dilations"], int(a["group"]), act)]


@kernel("ConvTranspose")
def conv_transpose_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    a = op.attrs
    act = fused_activation(a, x.dtype)
    return [conv_transpose2d(x, w, bias, a["strides"], a["pads"], a["dilations"], int(a["group"]),
                             a["output_padding"], act)]
