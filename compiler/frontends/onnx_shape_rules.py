"""ONNX argument rules shared by lowering and import-time evaluation.

Each function turns an ONNX node's (opset-dependent) arguments into the static
values an IR op needs: the resolved Reshape target, Squeeze/Unsqueeze result
shapes, Split sizes, normalised Slice bounds, Pad amounts. Arguments that come
from node inputs are read through a `StaticGetter` (port -> numpy value or None).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from npuc.frontends.onnx_node import NodeView, StaticGetter, attr_or_input, axes_arg, normalize_axes, normalize_slice


def reshape_target(node: NodeView, in_shape: Sequence[int], target: np.ndarray) -> tuple[int, ...]:
    """Reshape's target with 0 (copy, unless allowzero) and -1 (inferred) resolved."""
    allowzero = int(node.attr("allowzero", 0))
    dims = [int(d) for d in np.asarray(target).reshape(-1)]
    out = []
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise node.error(f"shape {dims}: 0 at position {i} copies a dim the input {tuple(in_shape)} lacks")
            d = int(in_shape[i])
        out.append(d)
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1:
        raise node.error(f"shape {dims} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise node.error(f"cannot reshape {tuple(in_shape)} to {dims}")
        out[out.index(-1)] = total // known
    if any(d < 0 for d in out) or int(np.prod(out, dtype=np.int64)) != total:
        raise node.error(f"cannot reshape {tuple(in_shape)} to {dims}")
    return tuple(out)


def flatten_shape(node: NodeView, in_shape: Sequence[int]) -> tuple[int, int]:
    rank = len(in_shape)
    axis = int(node.attr("axis", 1))
    if not -rank <= axis <= rank:
        raise node.error(f"axis {axis} out of range for rank {rank}")
    axis = axis + rank if axis < 0 else axis
    return (int(np.prod(in_shape[:axis], dtype=np.int64)), int(np.prod(in_shape[axis:], dtype=np.int64)))


def squeeze_shape(node: NodeView, in_shape: Sequence[int], get: StaticGetter) -> tuple[int, ...]:
    axes = axes_arg(node, 13, get)
    rank = len(in_shape)
    if axes is None:
        return tuple(d for d in in_shape if d != 1)
    axes = normalize_axes(axes, rank, node)
    for a in axes:
        if in_shape[a] != 1:
            raise node.error(f"cannot squeeze axis {a} of shape {tuple(in_shape)} (size {in_shape[a]} != 1)")
    return tuple(d for i, d in enumerate(in_shape) if i not in axes)


def unsqueeze_shape(node: NodeView, in_shape: Sequence[int], get: StaticGetter) -> tuple[int, ...]:
    axes = axes_arg(node, 13, get)
    if axes is None:
        raise node.error("no axes given")
    rank = len(in_shape) + len(axes)
    axes = normalize_axes(axes, rank, node)
    if len(set(axes)) != len(axes):
        raise node.error(f"repeated axes {axes}")
    dims = iter(in_shape)
    return tuple(1 if i in axes else next(dims) for i in range(rank))


def split_sizes(node: NodeView, in_shape: Sequence[int], get: StaticGetter) -> tuple[int, tuple[int, ...]]:
    """(axis, sizes) of a Split: `split` attribute/input, `num_outputs` (opset 18), or equal parts."""
    rank = len(in_shape)
    axis = normalize_axes([int(node.attr("axis", 0))], rank, node)[0]
    dim = int(in_shape[axis])
    split = attr_or_input(node, "split", 1, 13, get)
    n_out = len(node.outputs)
    if split is not None and np.asarray(split).size:
        sizes = tuple(int(s) for s in np.asarray(split).reshape(-1))
    elif node.attr("num_outputs") is not None:
        n = int(node.attr("num_outputs"))
        chunk = -(-dim // n)
        sizes = tuple(min(chunk, max(dim - i * chunk, 0)) for i in range(n))
    else:
        if dim % n_out:
            raise node.error(f"cannot split size {dim} into {n_out} equal parts")
        sizes = (dim // n_out,) * n_out
    if sum(sizes) != dim or len(sizes) != n_out:
        raise node.error(f"split sizes {sizes} do not give {n_out} parts of size {dim}")
    return axis, sizes


def slice_args(node: NodeView, in_shape: Sequence[int], get: StaticGetter) -> tuple[tuple[int, ...], ...]:
    """(starts, ends, axes, steps) with axes made non-negative and bounds normalised for Python slicing."""
    rank = len(in_shape)
    if node.opset < 10:
        starts, ends = node.ints("starts"), node.ints("ends")
        axes, steps = node.ints("axes"), None
    else:
        vals = [get(i) for i in range(1, 5)]
        if vals[0] is None or vals[1] is None:
            raise node.error("starts and ends are required")
        starts, ends, axes, steps = (None if v is None else tuple(int(x) for x in np.asarray(v).reshape(-1))
                                     for v in vals)
    if starts is None or ends is None or len(starts) != len(ends):
        raise node.error(f"starts {starts} and ends {ends} must have the same length")
    axes = tuple(range(len(starts))) if axes is None else normalize_axes(axes, rank, node)
    steps = (1,) * len(starts) if steps is None else steps
    if not len(axes) == len(steps) == len(starts):
        raise node.error("starts, ends, axes and steps differ in length")
    out_s, out_e, out_p = [], [], []
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        if sp == 0:
            raise node.error("step 0")
        s, e, p = normalize_slice(int(in_shape[ax]), st, en, sp)
        out_s.append(s), out_e.append(e), out_p.append(p)
    return tuple(out_s), tuple(out_e), tuple(axes), tuple(out_p)


def pad_args(node: NodeView, rank: int, get: StaticGetter) -> tuple[tuple[int, ...], str, float]:
    """(pads (begins..., ends...) over every dim, mode, constant value) of a Pad node, any opset."""
    mode = str(node.attr("mode", "constant"))
    if node.opset < 11:
        pads = node.ints("pads", node.ints("paddings"))
        value = float(node.attr("value", 0.0))
    else:
        p = get(1)
        if p is None:
            raise node.error("pads input is required")
        pads = tuple(int(v) for v in np.asarray(p).reshape(-1))
        v = get(2)
        value = 0.0 if v is None or np.asarray(v).size == 0 else float(np.asarray(v).reshape(-1)[0])
        axes_v = get(3) if node.opset >= 18 else None
        if axes_v is not None:
            axes = normalize_axes([int(a) for a in np.asarray(axes_v).reshape(-1)], rank, node)
            if len(pads) != 2 * len(axes):
                raise node.error(f"{len(pads)} pads for {len(axes)} axes")
            full = [0] * (2 * rank)
            for i, a in enumerate(axes):
                full[a], full[a + rank] = pads[i], pads[i + len(axes)]
            pads = tuple(full)
    if pads is None or len(pads) != 2 * rank:
        raise node.error(f"pads {pads} must have 2*rank = {2 * rank} entries")
    return pads, mode, value
