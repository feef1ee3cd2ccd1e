"""Data movement (Reshape, Transpose, Slice, Split, Pad, nearest Resize, DepthToSpace,
SpaceToDepth, Gather with constant indices, Expand, Tile, Identity, Dropout) and Concat.

A layer that only moves values is compiled, when the simulator prepares it, into
a *gather map*: the op's shape semantics (the float kernel of the IR op kind, the
same definition every backend uses) evaluated once on an index tensor
``arange(input size)``. Every output element then reads ``x.flat[map]`` (``-1``
marks constant padding, filled with the stored ``pad_value``). The map is checked
to lie inside the input before any kernel uses it, so at run time one numba
gather serves all these kinds; a map equal to ``arange`` becomes a plain copy.

Moving values commutes with the rescale (R is monotonic), so a layer whose input
and output encodings differ is gathered first and rescaled after, as the
reference does (docs/numerics.md section 8).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.backends.npu.sim.elementwise import Rescale, rescale_flat
from npuc.ir.op import Op

GATHER_KINDS = ("Reshape", "Transpose", "Slice", "Split", "Pad", "Resize", "DepthToSpace", "SpaceToDepth",
                "Gather", "Expand", "Tile", "Identity", "Dropout")


@njit(cache=True)
def _gather(x, index, fill, out):
    for i in range(index.size):
        j = index[i]
        out[i] = fill if j < 0 else x[j]


def gather_maps(ctx: LayerContext) -> list[np.ndarray]:
    """The gather map of every output (int32 flat indices into the first input, -1 = padding)."""
    chk = ctx.check
    x = ctx.inputs[0]
    chk.need(x is not None, "input is missing")
    chk.need(x.size < (1 << 31) - 1, "input too large for a gather map")
    extra: list[np.ndarray | None] = []
    for i in range(1, len(ctx.inputs)):
        if ctx.inputs[i] is None:
            extra.append(None)
            continue
        const = ctx.constant(i)
        chk.need(const is not None, f"input {i} must be a constant (computed shapes/indices are not supported)")
        extra.append(const)
    attrs = dict(ctx.attrs)
    if ctx.kind == "Pad" and attrs.get("mode", "constant") == "constant":
        attrs["value"] = -1
    if ctx.kind == "Resize":
        chk.need(attrs.get("mode") == "nearest", f"integer Resize must be nearest, not {attrs.get('mode')!r}")
    op = Op(ctx.layer.name, ctx.kind, attrs, tuple(ctx.layer.origin))
    iota = np.arange(x.size, dtype=np.int64).reshape(x.shape)
    from npuc.backends.reference.kernels import kernel_for

    try:
        with np.errstate(all="raise"):
            maps = [np.asarray(m) for m in kernel_for(ctx.kind)(op, [iota, *extra])]
    except Exception as exc:  # noqa: BLE001 - untrusted attributes may break the shape semantics in any way
        raise chk.fail(f"cannot build the gather map: {type(exc).__name__}: {exc}") from None
    chk.need(len(maps) == len(ctx.outputs), f"{len(maps)} results for {len(ctx.outputs)} outputs")
    out = []
    for m, o in zip(maps, ctx.outputs):
        chk.need(m.shape == o.shape and m.dtype.kind == "i", f"gather map {m.dtype}{m.shape} does not match output {o.shape}")
        low = -1 if ctx.kind == "Pad" else 0
        if m.size:
            chk.need(int(m.min()) >= low and int(m.max()) < x.size, "gather map leaves the input")
        out.append(np.ascontiguousarray(m, dtype=np.int32).reshape(-1))
    return out


def prepare_gather(ctx: LayerContext) -> Step:
    chk = ctx.check
    x = ctx.inputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    maps = gather_maps(ctx)
    r = Rescale(ctx)
    fill = int(chk.in_range("pad_value", chk.array("pad_value", 1), int(np.iinfo(x.dtype).min),
                            int(np.iinfo(x.dtype).max))[0]) if ctx.kind == "Pad" else 0
    xf = np.ascontiguousarray(x).reshape(-1)
    steps: list[Step] = []
    for m, out in zip(maps, ctx.outputs):
        of = out.reshape(-1)
        plain = m.size == x.size and np.array_equal(m, np.arange(x.size, dtype=np.int32))
        if r.identity and out.dtype == x.dtype:
            if plain:
                steps.append(lambda of=of: np.copyto(of, xf))
            else:
                steps.append(lambda m=m, of=of: _gather(xf, m, x.dtype.type(fill), of))
            continue
        if plain:
            steps.append(lambda of=of: r.apply(xf, of))
            continue
        tmp = np.empty(m.size, x.dtype)
        steps.append(lambda m=m, of=of, tmp=tmp: (_gather(xf, m, x.dtype.type(fill), tmp), r.apply(tmp, of)))
    if len(steps) == 1:
        return steps[0]

    def step() -> None:
        for s in steps:
            s()
    return step


def prepare_concat(ctx: LayerContext) -> Step:
    """Each input rescaled to the output encoding (copied when equal) into its slice of the output."""
    chk = ctx.check
    out = ctx.outputs[0]
    ins = ctx.inputs
    k = len(ins)
    chk.need(k >= 1 and all(a is not None and a.dtype.kind in "iu" for a in ins), "Concat needs integer inputs")
    axis = int(ctx.attrs["axis"])
    chk.need(-out.ndim <= axis < out.ndim, f"axis {axis} out of range")
    axis %= out.ndim
    zps = chk.zero_points("input_zero_point", k)
    Ms, ns = chk.multiplier("input_multiplier", "input_shift", k)
    identity = chk.flags("identity", k)
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    start = 0
    steps: list[Step] = []
    for i, a in enumerate(ins):
        chk.need(a.ndim == out.ndim and all(a.shape[d] == out.shape[d] for d in range(out.ndim) if d != axis),
                 f"input {i} shape {a.shape} does not fit output {out.shape}")
        index = [slice(None)] * out.ndim
        index[axis] = slice(start, start + a.shape[axis])
        start += a.shape[axis]
        view = out[tuple(index)]
        if identity[i] and a.dtype == out.dtype:
            steps.append(lambda view=view, a=a: np.copyto(view, a))
            continue
        tmp = np.empty(a.shape, out.dtype)
        af, tf = np.ascontiguousarray(a).reshape(-1), tmp.reshape(-1)
        p = (int(zps[i]), int(Ms[i]), int(ns[i]))

        def rescaled(view=view, af=af, tf=tf, tmp=tmp, p=p) -> None:
            rescale_flat(af, p[0], p[1], p[2], zo, lo, hi, tf)
            np.copyto(view, tmp)
        steps.append(rescaled)
    chk.need(start == out.shape[axis], f"inputs fill {start} of {out.shape[axis]} along axis {axis}")

    def step() -> None:
        for s in steps:
            s()
    return step


PREPARERS = {**{kind: prepare_gather for kind in GATHER_KINDS}, "Concat": prepare_concat}
