"""Elementwise integer ops: the rescale family (Relu, Clip, Requantize, Div by a constant),
Add/Sub (TFLite-style rescaled sum), Mul, Max/Min, all with numpy broadcasting.

Formulas: docs/numerics.md sections 6-8. Broadcasting is resolved when the layer
is prepared: both operands get element strides over the output shape (0 along
broadcast dimensions), adjacent dimensions are merged, and the kernel walks the
output with an odometer over the outer dimensions and a tight inner loop.

When both operands are 8-bit, a binary op is a function of two 256-value codes:
the layer's result for every pair is computed once, at preparation, by the very
same arithmetic kernel (`_binary` on all 65,536 pairs), and a run only looks the
pairs up (`_binary_table`). Bit-exact by construction, and an order of magnitude
faster than the int64 rescale chain per element.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from npuc.backends.npu.sim.arith import requant, scaled
from npuc.backends.npu.sim.context import LayerContext, Step

MODE_ADD, MODE_SUB, MODE_MUL, MODE_MAX, MODE_MIN = 0, 1, 2, 3, 4


@njit(cache=True)
def rescale_flat(q, zi, M, n, zo, lo, hi, out):
    """out[i] = clamp(zo + R(q[i] - zi, M, n), lo, hi) (may run in place)."""
    for i in range(q.size):
        out[i] = requant(np.int64(q[i]) - zi, M, n, zo, lo, hi)


@njit(cache=True, inline="always")
def _outer_rows(shape):
    """Rows of the merged output geometry: the product of every dim but the inner (last) one."""
    outer = 1
    for d in range(shape.size - 1):
        outer *= shape[d]
    return outer


@njit(cache=True, inline="always")
def _row_offsets(idx, sa, sb):
    """Flat offsets of a row's first element in operands a and b (idx: the outer dims' index)."""
    ia = 0
    ib = 0
    for d in range(idx.size - 1):
        ia += idx[d] * sa[d]
        ib += idx[d] * sb[d]
    return ia, ib


@njit(cache=True, inline="always")
def _next_row(idx, shape):
    """Advance the outer dims' index `idx` to the next row (odometer order, inner dim excluded)."""
    d = shape.size - 2
    while d >= 0:
        idx[d] += 1
        if idx[d] < shape[d]:
            break
        idx[d] = 0
        d -= 1


@njit(cache=True)
def _binary(a, b, out, shape, sa, sb, mode, p):
    """Broadcast binary op over the output (flat arrays; shape/sa/sb: merged dims, inner dim last).

    p = [L, za, zb, Ma, na, Mb, nb, Mo, no, zo, lo, hi].
    """
    nd = shape.size
    inner = shape[nd - 1]
    ia_step = sa[nd - 1]
    ib_step = sb[nd - 1]
    outer = _outer_rows(shape)
    idx = np.zeros(nd, np.int64)
    L, za, zb, Ma, na, Mb, nb, Mo, no, zo, lo, hi = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]
    o = 0
    for _ in range(outer):
        ia, ib = _row_offsets(idx, sa, sb)
        for j in range(inner):
            xa = np.int64(a[ia + j * ia_step]) - za
            xb = np.int64(b[ib + j * ib_step]) - zb
            if mode == MODE_ADD or mode == MODE_SUB:
                ra = scaled(xa << L, Ma, na)
                rb = scaled(xb << L, Mb, nb)
                v = requant(ra - rb if mode == MODE_SUB else ra + rb, Mo, no, zo, lo, hi)
            elif mode == MODE_MUL:
                v = requant(xa * xb, Mo, no, zo, lo, hi)
            else:
                ra = requant(xa, Ma, na, zo, lo, hi)
                rb = requant(xb, Mb, nb, zo, lo, hi)
                v = max(ra, rb) if mode == MODE_MAX else min(ra, rb)
            out[o] = v
            o += 1
        _next_row(idx, shape)


@njit(cache=True)
def _binary_table(a, b, out, shape, sa, sb, table, amin, bmin):
    """out = table[(a - amin) * 256 + (b - bmin)] over the broadcast output (geometry as `_binary`)."""
    nd = shape.size
    inner = np.uint64(shape[nd - 1])
    ia_step = np.uint64(sa[nd - 1])
    ib_step = np.uint64(sb[nd - 1])
    outer = _outer_rows(shape)
    idx = np.zeros(nd, np.int64)
    o = np.uint64(0)
    for _ in range(outer):
        ia, ib = _row_offsets(idx, sa, sb)
        # unsigned indices (no wrap-around check) and a fixed row of the table when b is broadcast
        ua = np.uint64(ia)
        if ib_step == 0:
            row = table[(np.int64(b[ib]) - bmin):]
            if ia_step == 1:
                for j in range(inner):
                    out[o + j] = row[np.uint64(np.int64(a[ua + j]) - amin) << np.uint64(8)]
            else:
                for j in range(inner):
                    out[o + j] = row[np.uint64(np.int64(a[ua + j * ia_step]) - amin) << np.uint64(8)]
        else:
            ub = np.uint64(ib)
            for j in range(inner):
                ka = np.uint64(np.int64(a[ua + j * ia_step]) - amin) << np.uint64(8)
                out[o + j] = table[ka + np.uint64(np.int64(b[ub + j * ib_step]) - bmin)]
        o += inner
        _next_row(idx, shape)


def _pair_table(a_dtype: np.dtype, b_dtype: np.dtype, out_dtype: np.dtype, mode: int,
                p: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """(table, amin, bmin) of an op on two 8-bit operands, computed by `_binary` itself; None otherwise."""
    if a_dtype.itemsize != 1 or b_dtype.itemsize != 1:
        return None
    amin, bmin = int(np.iinfo(a_dtype).min), int(np.iinfo(b_dtype).min)
    codes_a = np.repeat(np.arange(amin, amin + 256), 256).astype(a_dtype)
    codes_b = np.tile(np.arange(bmin, bmin + 256), 256).astype(b_dtype)
    table = np.empty(1 << 16, out_dtype)
    one = np.ones(1, np.int64)
    _binary(codes_a, codes_b, table, np.array([1 << 16], np.int64), one, one, mode, p)
    return table, amin, bmin


def _binary_step(a: np.ndarray, b: np.ndarray, out: np.ndarray, shape: np.ndarray, sa: np.ndarray,
                 sb: np.ndarray, mode: int, p: np.ndarray) -> Step:
    """The run step of a broadcast binary op: a table lookup for 8-bit operands, else the arithmetic."""
    found = _pair_table(a.dtype, b.dtype, out.dtype, mode, p)
    if found is None:
        return lambda: _binary(a, b, out, shape, sa, sb, mode, p)
    table, amin, bmin = found
    if sa[-1] == 0 and sb[-1] != 0:
        # keep the operand broadcast along the inner dimension second (the kernel's fixed-row path):
        # swapping the operands transposes the table
        table = np.ascontiguousarray(table.reshape(256, 256).T).reshape(-1)
        a, b, sa, sb, amin, bmin = b, a, sb, sa, bmin, amin
    return lambda: _binary_table(a, b, out, shape, sa, sb, table, amin, bmin)


def broadcast_strides(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of a C-contiguous `in_shape` array broadcast to `out_shape` (0 where broadcast)."""
    rank = len(out_shape)
    padded = (1,) * (rank - len(in_shape)) + tuple(in_shape)
    strides, acc = [0] * rank, 1
    for d in range(rank - 1, -1, -1):
        strides[d] = acc if padded[d] != 1 else 0
        acc *= padded[d]
    return strides


def merged_geometry(out_shape: tuple[int, ...], *operand_strides: list[int]) -> tuple[np.ndarray, ...]:
    """Drop size-1 dims and merge adjacent dims that are contiguous for every operand."""
    dims = [(s, [st[d] for st in operand_strides]) for d, s in enumerate(out_shape) if s != 1]
    merged: list[tuple[int, list[int]]] = []
    for size, strides in dims:
        if merged:
            psize, pstrides = merged[-1]
            if all(ps == s * size for ps, s in zip(pstrides, strides)):
                merged[-1] = (psize * size, strides)
                continue
        merged.append((size, strides))
    if not merged:
        merged = [(1, [0] * len(operand_strides))]
    shape = np.array([m[0] for m in merged], np.int64)
    per_operand = [np.array([m[1][i] for m in merged], np.int64) for i in range(len(operand_strides))]
    return (shape, *per_operand)


def _operands(ctx: LayerContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    chk = ctx.check
    a, b, out = ctx.inputs[0], ctx.inputs[1] if len(ctx.inputs) > 1 else None, ctx.outputs[0]
    chk.need(a is not None and b is not None, "needs two inputs")
    for arr in (a, b):
        chk.need(arr.dtype.kind in "iu", f"input dtype {arr.dtype} is not an integer type")
    try:
        bshape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise chk.fail(f"inputs {a.shape} and {b.shape} do not broadcast") from None
    chk.need(bshape == out.shape, f"inputs broadcast to {bshape}, output is {out.shape}")
    shape, sa, sb = merged_geometry(out.shape, broadcast_strides(a.shape, out.shape),
                                    broadcast_strides(b.shape, out.shape))
    return np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), out.reshape(-1), shape, sa, sb


def prepare_add_sub_mul(ctx: LayerContext) -> Step:
    chk = ctx.check
    a, b, out, shape, sa, sb = _operands(ctx)
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    zps = chk.zero_points("input_zero_point", 2)
    if ctx.kind == "Mul":
        mode = MODE_MUL
        Mo, no = chk.multiplier(size=1)
        p = np.array([0, zps[0], zps[1], 0, 0, 0, 0, Mo[0], no[0], zo, lo, hi], np.int64)
    else:
        mode = MODE_SUB if ctx.kind == "Sub" else MODE_ADD
        L = int(chk.in_range("left_shift", chk.array("left_shift", 1), 0, 24)[0])
        Mi, ni = chk.multiplier("input_multiplier", "input_shift", 2)
        Mo, no = chk.multiplier(size=1)
        p = np.array([L, zps[0], zps[1], Mi[0], ni[0], Mi[1], ni[1], Mo[0], no[0], zo, lo, hi], np.int64)
    return _binary_step(a, b, out, shape, sa, sb, mode, p)


def prepare_max_min(ctx: LayerContext) -> Step:
    chk = ctx.check
    a, b, out, shape, sa, sb = _operands(ctx)
    zo, lo, hi = chk.output_clamp(ctx.out_dtype())
    zps = chk.zero_points("input_zero_point", 2)
    Mi, ni = chk.multiplier("input_multiplier", "input_shift", 2)
    mode = MODE_MAX if ctx.kind == "Max" else MODE_MIN
    p = np.array([0, zps[0], zps[1], Mi[0], ni[0], Mi[1], ni[1], 0, 0, zo, lo, hi], np.int64)
    return _binary_step(a, b, out, shape, sa, sb, mode, p)


class Rescale:
    """The rescale set of a layer (input zero point, M, n, output zero point, clamps, identity flag)."""

    def __init__(self, ctx: LayerContext, out_index: int = 0) -> None:
        chk = ctx.check
        self.zi = int(chk.zero_points("input_zero_point", 1)[0])
        M, n = chk.multiplier(size=1)
        self.M, self.n = int(M[0]), int(n[0])
        self.zo, self.lo, self.hi = chk.output_clamp(ctx.out_dtype(out_index))
        self.identity = bool(chk.flags("identity", 1)[0]) if "identity" in ctx.params else False

    def apply(self, q_flat: np.ndarray, out_flat: np.ndarray) -> None:
        rescale_flat(q_flat, self.zi, self.M, self.n, self.zo, self.lo, self.hi, out_flat)


def prepare_rescale(ctx: LayerContext) -> Step:
    """Relu, Clip, Requantize, Div by a constant: the activation lives entirely in the clamp bounds."""
    chk = ctx.check
    x, out = ctx.inputs[0], ctx.outputs[0]
    chk.need(x is not None and x.dtype.kind in "iu", "input must be an integer tensor")
    chk.need(x.size == out.size, f"input {x.shape} and output {out.shape} differ in size")
    r = Rescale(ctx)
    xf, of = np.ascontiguousarray(x).reshape(-1), out.reshape(-1)

    def step() -> None:
        r.apply(xf, of)
    return step


PREPARERS = {
    "Add": prepare_add_sub_mul,
    "Sub": prepare_add_sub_mul,
    "Mul": prepare_add_sub_mul,
    "Max": prepare_max_min,
    "Min": prepare_max_min,
    "Relu": prepare_rescale,
    "Clip": prepare_rescale,
    "Requantize": prepare_rescale,
    "Div": prepare_rescale,
}
