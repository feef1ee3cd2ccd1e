"""Ops that only move or select data: reshape, transpose, concat, split, slice, pad, resize, gather."""
from __future__ import annotations

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.op_spec import REQUIRED, OpSpec, register_op
from npuc.ir.ops._infer import broadcast, norm_axis


def _infer_reshape(op, ins):
    x = ins[0]
    shape = tuple(int(d) for d in op.attrs["shape"])
    if any(d < 0 for d in shape):
        raise ValueError(f"Reshape target {shape} must be fully resolved (no -1)")
    if int(np.prod(shape, dtype=np.int64)) != int(np.prod(x.shape, dtype=np.int64)):
        raise ValueError(f"cannot reshape {x.shape} to {shape}")
    return [(shape, x.dtype)]


def _infer_transpose(op, ins):
    x = ins[0]
    perm = tuple(op.attrs["perm"])
    if sorted(perm) != list(range(len(x.shape))):
        raise ValueError(f"perm {perm} is not a permutation of rank {len(x.shape)}")
    return [(tuple(x.shape[p] for p in perm), x.dtype)]


def _infer_concat(op, ins):
    shapes = [t.shape for t in ins]
    rank = len(shapes[0])
    axis = norm_axis(op.attrs["axis"], rank)
    for s in shapes[1:]:
        if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
            raise ValueError(f"Concat inputs {shapes} differ outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [(tuple(out), ins[0].dtype)]


def _infer_split(op, ins):
    x = ins[0]
    axis = norm_axis(op.attrs["axis"], len(x.shape))
    split = tuple(int(s) for s in op.attrs["split"])
    if sum(split) != x.shape[axis]:
        raise ValueError(f"split sizes {split} do not add up to {x.shape[axis]}")
    outs = []
    for s in split:
        shape = list(x.shape)
        shape[axis] = s
        outs.append((tuple(shape), x.dtype))
    return outs


def slice_bounds(dim: int, start: int, end: int, step: int) -> range:
    """The indices ONNX Slice selects along one axis (python slice semantics with clamping)."""
    return range(dim)[slice(start, end, step)]


def _infer_slice(op, ins):
    x = ins[0]
    shape = list(x.shape)
    starts, ends, axes, steps = (op.attrs[k] for k in ("starts", "ends", "axes", "steps"))
    axes = tuple(range(len(starts))) if axes is None else axes
    steps = (1,) * len(starts) if steps is None else steps
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        if sp == 0:
            raise ValueError("Slice step 0")
        ax = norm_axis(ax, len(shape))
        shape[ax] = len(slice_bounds(x.shape[ax], st, en, sp))
    return [(tuple(shape), x.dtype)]


def _infer_pad(op, ins):
    x = ins[0]
    pads = tuple(op.attrs["pads"])
    rank = len(x.shape)
    if len(pads) != 2 * rank:
        raise ValueError(f"pads {pads} must have 2*rank = {2 * rank} entries (begins then ends)")
    if op.attrs["mode"] not in ("constant", "reflect", "edge"):
        raise ValueError(f"unknown pad mode {op.attrs['mode']!r}")
    return [(tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(x.shape)), x.dtype)]


#: How an integer linear Resize computes (docs/numerics.md section 8): "half_up" (npuc's fixed-point weights
#: from the float coordinates, one rounding half up), or "tflite_bilinear" (TFLite's int8 RESIZE_BILINEAR:
#: its 10-bit coordinates, raw-code sum rounded half away from zero; set by the TFLite importer).
RESIZE_ROUNDING = ("half_up", "tflite_bilinear")
TFLITE_RESIZE_COORDINATES = ("half_pixel", "align_corners", "asymmetric")


def _infer_resize(op, ins):
    x = ins[0]
    size = tuple(int(s) for s in op.attrs["size"])
    if len(size) != len(x.shape):
        raise ValueError(f"Resize size {size} must give every dim of {x.shape}")
    if op.attrs["mode"] not in ("nearest", "linear"):
        raise ValueError(f"Resize mode {op.attrs['mode']!r} not supported (nearest, linear)")
    rounding = op.attrs.get("rounding", "half_up")
    if rounding not in RESIZE_ROUNDING:
        raise ValueError(f"Resize rounding must be one of {RESIZE_ROUNDING}, got {rounding!r}")
    if rounding == "tflite_bilinear" and (op.attrs["mode"] != "linear" or op.attrs["coordinate_transformation_mode"]
                                          not in TFLITE_RESIZE_COORDINATES):
        raise ValueError("Resize rounding 'tflite_bilinear' needs mode linear and coordinates "
                         f"{TFLITE_RESIZE_COORDINATES}")
    return [(size, x.dtype)]


def _infer_gather(op, ins):
    x, idx = ins
    axis = norm_axis(op.attrs["axis"], len(x.shape))
    return [(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]


def _infer_shape(op, ins):
    rank = len(ins[0].shape)
    start, end = op.attrs["start"], op.attrs["end"]
    n = len(range(rank)[slice(start, end)])
    return [((n,), DType.INT64)]


def _infer_expand(op, ins):
    return [(broadcast(ins[0].shape, tuple(op.attrs["shape"])), ins[0].dtype)]


def _infer_tile(op, ins):
    reps = tuple(op.attrs["repeats"])
    return [(tuple(d * r for d, r in zip(ins[0].shape, reps)), ins[0].dtype)]


def _infer_depth_to_space(op, ins):
    n, c, h, w = ins[0].shape
    b = int(op.attrs["blocksize"])
    if c % (b * b):
        raise ValueError(f"{c} channels not divisible by blocksize^2 = {b * b}")
    return [((n, c // (b * b), h * b, w * b), ins[0].dtype)]


def _infer_space_to_depth(op, ins):
    n, c, h, w = ins[0].shape
    b = int(op.attrs["blocksize"])
    if h % b or w % b:
        raise ValueError(f"spatial size {h}x{w} not divisible by blocksize {b}")
    return [((n, c * b * b, h // b, w // b), ins[0].dtype)]


register_op(OpSpec("Reshape", ("x",), _infer_reshape, {"shape": REQUIRED}, layout_only=True,
                   doc="reshape to a static shape (Flatten/Squeeze/Unsqueeze lower to this)"))
register_op(OpSpec("Transpose", ("x",), _infer_transpose, {"perm": REQUIRED}, layout_only=True,
                   doc="permute dimensions"))
register_op(OpSpec("Concat", ("inputs*",), _infer_concat, {"axis": REQUIRED}, doc="concatenate along axis"))
register_op(OpSpec("Split", ("x",), _infer_split, {"axis": 0, "split": REQUIRED}, doc="split into sizes"))
register_op(OpSpec("Slice", ("x",), _infer_slice,
                   {"starts": REQUIRED, "ends": REQUIRED, "axes": None, "steps": None},
                   doc="strided slice with static bounds (ONNX semantics)"))
register_op(OpSpec("Pad", ("x",), _infer_pad, {"pads": REQUIRED, "mode": "constant", "value": 0.0},
                   doc="pad with pads = (begin per dim..., end per dim...)"))
register_op(OpSpec("Resize", ("x",), _infer_resize,
                   {"size": REQUIRED, "mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                    "nearest_mode": "round_prefer_floor", "cubic_coeff_a": -0.75, "rounding": "half_up"},
                   doc="resize to a static output size (ONNX Resize semantics, nearest or linear; `rounding` "
                       "only matters in integer form)"))
register_op(OpSpec("Gather", ("x", "indices"), _infer_gather, {"axis": 0}, doc="take along axis"))
register_op(OpSpec("Shape", ("x",), _infer_shape, {"start": 0, "end": None},
                   doc="the input's shape as an int64 vector (folded by fold_constants)"))
register_op(OpSpec("Expand", ("x",), _infer_expand, {"shape": REQUIRED}, doc="broadcast to shape"))
register_op(OpSpec("Tile", ("x",), _infer_tile, {"repeats": REQUIRED}, doc="repeat along each dim"))
register_op(OpSpec("DepthToSpace", ("x",), _infer_depth_to_space, {"blocksize": REQUIRED, "mode": "DCR"},
                   layout_only=True, doc="move channel blocks into space (DCR or CRD)"))
register_op(OpSpec("SpaceToDepth", ("x",), _infer_space_to_depth, {"blocksize": REQUIRED},
                   layout_only=True, doc="move spatial blocks into channels"))
