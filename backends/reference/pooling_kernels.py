"""Float kernels for MaxPool, AveragePool (ceil_mode, count_include_pad), global pooling and reductions.

Windowed pooling loops over the kh*kw kernel taps, each a strided slice of the
padded input (never over pixels).
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.spatial import pad_spatial
from npuc.backends.reference.kernels import kernel
from npuc.ir.op import Op


def _out_dim(size: int, k: int, stride: int, pad_begin: int, pad_end: int, dilation: int, ceil: bool) -> int:
    """ONNX pooling output size (the last window must start inside the input or its left padding)."""
    span = size + pad_begin + pad_end - (dilation * (k - 1) + 1)
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


class _Geometry:
    """Output size and the padding (explicit plus the ceil-mode overhang) of one pooling op."""

    def __init__(self, op: Op, x: np.ndarray) -> None:
        a = op.attrs
        _, _, h, w = x.shape
        self.kh, self.kw = (int(k) for k in a["kernel"])
        self.sh, self.sw = (int(s) for s in a["strides"])
        self.dh, self.dw = (int(d) for d in a.get("dilations", (1, 1)))
        self.pads = tuple(int(p) for p in a["pads"])
        pt, pl, pb, pr = self.pads
        ceil = bool(a["ceil_mode"])
        self.oh = _out_dim(h, self.kh, self.sh, pt, pb, self.dh, ceil)
        self.ow = _out_dim(w, self.kw, self.sw, pl, pr, self.dw, ceil)
        need_h = (self.oh - 1) * self.sh + self.dh * (self.kh - 1) + 1
        need_w = (self.ow - 1) * self.sw + self.dw * (self.kw - 1) + 1
        # ceil_mode windows may hang past the explicit end padding
        self.extra_h = max(0, need_h - (h + pt + pb))
        self.extra_w = max(0, need_w - (w + pl + pr))

    @property
    def full_pads(self) -> tuple[int, int, int, int]:
        pt, pl, pb, pr = self.pads
        return pt, pl, pb + self.extra_h, pr + self.extra_w

    def taps(self, a: np.ndarray):
        """The strided slice of the (fully padded) array `a` under each kernel tap (last two dims spatial)."""
        hs, ws = (self.oh - 1) * self.sh + 1, (self.ow - 1) * self.sw + 1
        for ky in range(self.kh):
            y0 = ky * self.dh
            for kx in range(self.kw):
                x0 = kx * self.dw
                yield a[..., y0:y0 + hs:self.sh, x0:x0 + ws:self.sw]


def _lowest(dtype: np.dtype):
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


@kernel("MaxPool")
def max_pool_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x = inputs[0]
    g = _Geometry(op, x)
    xp = pad_spatial(x, g.full_pads, _lowest(x.dtype))
    out = None
    for sl in g.taps(xp):
        out = sl.copy() if out is None else np.maximum(out, sl, out=out)
    return [out]


@kernel("AveragePool")
def average_pool_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """Mean over each window; the divisor counts the input (and, with count_include_pad, the explicit pads)."""
    x = inputs[0]
    g = _Geometry(op, x)
    _, _, h, w = x.shape
    pt, pl, pb, pr = g.pads
    xp = pad_spatial(x, g.full_pads)
    out = None
    for sl in g.taps(xp):
        out = sl.copy() if out is None else np.add(out, sl, out=out)
    # per-window divisor from a 2-D mask of the counted positions (never the ceil-mode overhang)
    mask = np.zeros((h + pt + pb + g.extra_h, w + pl + pr + g.extra_w), dtype=x.dtype)
    if op.attrs["count_include_pad"]:
        mask[: h + pt + pb, : w + pl + pr] = 1
    else:
        mask[pt:pt + h, pl:pl + w] = 1
    count = sum(g.taps(mask))
    out /= np.maximum(count, 1)
    return [out]


@kernel("GlobalAveragePool")
def global_average_pool_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x = inputs[0]
    return [np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)]


@kernel("GlobalMaxPool")
def global_max_pool_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x = inputs[0]
    return [np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


def _reduce(fn):
    def reduce_kernel(op: Op, inputs: list) -> list[np.ndarray]:
        x = inputs[0]
        axes = op.attrs["axes"]
        axes = tuple(range(x.ndim)) if axes is None else tuple(sorted({int(a) % max(x.ndim, 1) for a in axes}))
        r = np.asarray(fn(x, axis=axes, keepdims=bool(op.attrs["keepdims"])))
        return [r.astype(x.dtype, copy=False)]

    return reduce_kernel


def _mean(x, axis, keepdims):
    return np.mean(x, axis=axis, keepdims=keepdims, dtype=x.dtype if np.issubdtype(x.dtype, np.floating) else None)


def _sum(x, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


for _kind, _fn in (("ReduceMean", _mean), ("ReduceSum", _sum), ("ReduceMax", np.max), ("ReduceMin", np.min)):
    kernel(_kind)(_reduce(_fn))
