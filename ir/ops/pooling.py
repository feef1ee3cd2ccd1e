"""Pooling and reductions."""
from __future__ import annotations

from npuc.ir.op_spec import OpSpec, register_op
from npuc.ir.ops._infer import conv_out_dim, norm_axis


def _infer_pool(op, ins):
    x = ins[0]
    if len(x.shape) != 4:
        raise ValueError(f"pooling expects a 4-D NCHW input, got {x.shape}")
    n, c, h, w = x.shape
    kh, kw = op.attrs["kernel"]
    sh, sw = op.attrs["strides"]
    pt, pl, pb, pr = op.attrs["pads"]
    dh, dw = op.attrs.get("dilations", (1, 1))
    ceil = bool(op.attrs["ceil_mode"])
    return [((n, c, conv_out_dim(h, kh, sh, pt, pb, dh, ceil), conv_out_dim(w, kw, sw, pl, pr, dw, ceil)), x.dtype)]


def _infer_global(op, ins):
    x = ins[0]
    if len(x.shape) < 3:
        raise ValueError(f"global pooling needs rank >= 3, got {x.shape}")
    return [(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)]


def _infer_reduce(op, ins):
    x = ins[0]
    rank = len(x.shape)
    axes = op.attrs["axes"]
    axes = tuple(range(rank)) if axes is None else tuple(sorted({norm_axis(a, rank) for a in axes}))
    if op.attrs["keepdims"]:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    else:
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [(shape, x.dtype)]


_POOL = {"kernel": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "ceil_mode": False}
register_op(OpSpec("MaxPool", ("x",), _infer_pool, {**_POOL, "dilations": (1, 1)}, doc="2-D max pooling"))
#: How the integer AveragePool rounds the window mean (docs/numerics.md section 8): "half_up" (npuc's
#: rule), or "half_away_from_zero" on the output codes (TFLite's int8 kernel; set by the TFLite importer).
AVERAGE_ROUNDING = ("half_up", "half_away_from_zero")


def _infer_average_pool(op, ins):
    if op.attrs.get("rounding", "half_up") not in AVERAGE_ROUNDING:
        raise ValueError(f"AveragePool rounding must be one of {AVERAGE_ROUNDING}, got {op.attrs['rounding']!r}")
    return _infer_pool(op, ins)


register_op(OpSpec(
    "AveragePool", ("x",), _infer_average_pool, {**_POOL, "count_include_pad": False, "rounding": "half_up"},
    doc="2-D average pooling (`rounding` only matters in integer form)",
))
register_op(OpSpec("GlobalAveragePool", ("x",), _infer_global, doc="mean over all spatial dims, kept as size 1"))
register_op(OpSpec("GlobalMaxPool", ("x",), _infer_global, doc="max over all spatial dims, kept as size 1"))
for _kind in ("ReduceSum", "ReduceMax", "ReduceMin"):
    register_op(OpSpec(_kind, ("x",), _infer_reduce, {"axes": None, "keepdims": True},
                       doc=f"{_kind[6:].lower()} over `axes` (None = all)"))

#: How the integer ReduceMean rounds (docs/numerics.md section 8): "half_up" (npuc's rule), or one of
#: TFLite's two int8 MEAN kernels (set by the TFLite importer): "tflite_mean" (the generic kernel),
#: "tflite_mean_hw" (the 4-D kernel over H and W with kept dims).
MEAN_ROUNDING = ("half_up", "tflite_mean", "tflite_mean_hw")


def _infer_mean(op, ins):
    if op.attrs.get("rounding", "half_up") not in MEAN_ROUNDING:
        raise ValueError(f"ReduceMean rounding must be one of {MEAN_ROUNDING}, got {op.attrs['rounding']!r}")
    return _infer_reduce(op, ins)


register_op(OpSpec("ReduceMean", ("x",), _infer_mean, {"axes": None, "keepdims": True, "rounding": "half_up"},
                   doc="mean over `axes` (None = all); `rounding` only matters in integer form"))
