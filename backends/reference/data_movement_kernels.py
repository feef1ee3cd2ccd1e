"""Float kernels for ops that move or select data (any dtype, values untouched).

Reshape and Split return views (kernels never modify their inputs, and the
executor only writes in place into arrays it owns exclusively); the others
return contiguous results.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.kernels import kernel
from npuc.ir.op import Op


@kernel("Reshape")
def reshape_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    return [inputs[0].reshape(tuple(int(d) for d in op.attrs["shape"]))]


@kernel("Transpose")
def transpose_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.transpose(inputs[0], tuple(int(p) for p in op.attrs["perm"])))]


@kernel("Concat")
def concat_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in inputs]
    dt = arrays[0].dtype
    return [np.concatenate([a.astype(dt, copy=False) for a in arrays], axis=int(op.attrs["axis"]))]


@kernel("Split")
def split_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    sizes = [int(s) for s in op.attrs["split"]]
    return list(np.split(inputs[0], np.cumsum(sizes)[:-1], axis=int(op.attrs["axis"])))


@kernel("Slice")
def slice_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """ONNX Slice with static bounds: python slice semantics (negative indices, clamping) per axis."""
    x = inputs[0]
    a = op.attrs
    starts, ends = a["starts"], a["ends"]
    axes = range(len(starts)) if a["axes"] is None else a["axes"]
    steps = (1,) * len(starts) if a["steps"] is None else a["steps"]
    index = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        index[int(ax) % x.ndim] = slice(int(st), int(en), int(sp))
    return [np.ascontiguousarray(x[tuple(index)])]


@kernel("Pad")
def pad_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """constant / reflect / edge padding; negative pads crop (ONNX)."""
    x = inputs[0]
    pads = [int(p) for p in op.attrs["pads"]]
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    crop = tuple(slice(max(0, -b), x.shape[i] - max(0, -e)) for i, (b, e) in enumerate(zip(begins, ends)))
    x = x[crop]
    widths = [(max(0, b), max(0, e)) for b, e in zip(begins, ends)]
    mode = op.attrs["mode"]
    if mode == "constant":
        out = np.full(tuple(d + b + e for d, (b, e) in zip(x.shape, widths)), op.attrs["value"], dtype=x.dtype)
        out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, widths))] = x
        return [out]
    if mode not in ("reflect", "edge"):
        raise ValueError(f"unknown pad mode {mode!r} (constant, reflect, edge)")
    return [np.pad(x, widths, mode=mode)]


@kernel("Gather")
def gather_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """Take along `axis`; negative indices count from the end (ONNX)."""
    x, idx = inputs
    return [np.take(x, np.asarray(idx).astype(np.intp, copy=False), axis=int(op.attrs["axis"]))]


@kernel("Shape")
def shape_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    return [np.array(inputs[0].shape[slice(op.attrs["start"], op.attrs["end"])], dtype=np.int64)]


@kernel("Expand")
def expand_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """Bidirectional broadcast of x with the target shape (ONNX Expand)."""
    x = inputs[0]
    shape = np.broadcast_shapes(x.shape, tuple(int(d) for d in op.attrs["shape"]))
    return [np.array(np.broadcast_to(x, shape))]


@kernel("Tile")
def tile_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    return [np.tile(inputs[0], tuple(int(r) for r in op.attrs["repeats"]))]


@kernel("DepthToSpace")
def depth_to_space_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    """DCR: depth-column-row channel order (default); CRD: column-row-depth."""
    x = inputs[0]
    n, c, h, w = x.shape
    b = int(op.attrs["blocksize"])
    mode = op.attrs["mode"]
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise ValueError(f"DepthToSpace mode {mode!r} is not DCR or CRD")
    return [y.reshape(n, c // (b * b), h * b, w * b)]


@kernel("SpaceToDepth")
def space_to_depth_kernel(op: Op, inputs: list) -> list[np.ndarray]:
    x = inputs[0]
    n, c, h, w = x.shape
    b = int(op.attrs["blocksize"])
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, c * b * b, h // b, w // b)]
