"""Export choices that make onnxruntime's float32 arithmetic round like npuc's integer kernels.

Two things, both invisible to anyone reading the model as "float ops between Q/DQ pairs"
(docs/qdq-export.md, "How close onnxruntime gets to npuc"):

**Requantization multipliers of MAC layers** (`mac_weight_scales`). onnxruntime fuses
DQ -> Conv/Gemm -> Q into QLinearConv/QGemm: the integer accumulator is exact and is
requantized as `rint(float32(acc) * m32)` with `m32 = float32(float32(s_x * s_w[c]) / s_y)`
computed from the exported float32 scales. npuc multiplies by its Q31 multiplier
`m' = M * 2**-(31 + n)`. With the scales merely rounded to float32, `m32` is off by up
to ~3 float32 ulps, which flips results lying within a few 1e-7 of a rounding midpoint.
The per-channel weight scales are private to their layer, so each is moved by a few
ulps until `m32` is the float32 nearest to `m'` (the weights' real values change by
about 1e-7 relative).

**Tie-break offsets** (`tie_offset`).

npuc's integer Add/Sub/Mul round half up (towards +inf, docs/numerics.md section 1);
QuantizeLinear rounds half to even. Where an op's encodings put many results exactly
on a tie -- e.g. an Add of two tensors with the same scale `s` into a tensor of scale
`2 s`, so every odd sum of codes is `k + 1/2` -- the QDQ model would flip one LSB
on a quarter of the values. For such ops the exporter writes

    Add -> Add(tie_offset) -> QuantizeLinear

with `tie_offset = eps * s_y`, a small fraction of one output step that pushes
exact ties above the midpoint and moves no other value across a rounding boundary.

`eps` is chosen by exhaustion, not by reasoning about the grid: for 8-bit inputs
every pair of input codes (65,536 for two activations; 16-bit inputs: ~1,300 codes
each, spread over the range and around the zero point) goes through npuc's own
integer kernel and through the float32 arithmetic the QDQ model asks for
(`(q - z) * s` per input, the float op, `+ offset`, `/ s_y`, round half to even,
saturate), for eps = 0 and a few powers of two; the eps with the fewest
mismatches wins (0 -- no extra node -- unless another eps is strictly better).
"""
from __future__ import annotations

import logging

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.quantization.float32_requantization import float32_scale_below  # the scales the exporter writes

log = logging.getLogger(__name__)

#: op kinds whose ties are checked (two inputs, one integer output, a float op ONNX computes in float32;
#: and linear Resize, whose quarter-pixel weights put many results exactly on ties)
TIE_KINDS = ("Add", "Sub", "Mul", "Resize")

#: candidate offsets in output steps (0 first: no extra node unless strictly better)
CANDIDATES = (0.0, 2.0 ** -3, 2.0 ** -5, 2.0 ** -7, 2.0 ** -9, 2.0 ** -11)

_SAMPLED = 1024  # 16-bit inputs: this many codes spread over the range, plus the 256 around the zero point


def _codes(t: Tensor) -> np.ndarray | None:
    """The integer codes of `t` to try: all of them for 8-bit (distinct values for a small constant),
    a sample for 16-bit; None when there is no sensible set."""
    if t.is_const:
        vals = np.unique(np.asarray(t.data))
        return vals if vals.size <= 1024 else None
    info = np.iinfo(t.dtype.numpy)
    if t.dtype.bits <= 8:
        return np.arange(info.min, info.max + 1)
    if t.dtype.bits > 16:
        return None
    z = int(t.quant.zero_point[0])
    spread = np.round(np.linspace(info.min, info.max, _SAMPLED)).astype(np.int64)
    near_zero = np.clip(np.arange(z - 128, z + 128), info.min, info.max)
    return np.unique(np.concatenate([spread, near_zero]))


def _per_tensor(t: Tensor | None) -> bool:
    return (t is not None and t.dtype.is_integer and t.quant is not None and t.quant.axis is None
            and len(t.quant.scale) == 1)


def _float32_scale(scale: float) -> np.float32:
    return np.float32(float32_scale_below([scale])[0])


def _onnx_codes(kind: str, qa, qb, a: Tensor, b: Tensor, y: Tensor, eps: float) -> np.ndarray:
    """What the QDQ model computes: DQ in float32, the float32 op, the offset, QuantizeLinear."""
    def dq(q, t):
        return (np.asarray(q, np.int64) - t.quant.zero_point[0]).astype(np.float32) * _float32_scale(t.quant.scale[0])

    fa, fb = dq(qa, a), dq(qb, b)
    x = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[kind](fa, fb)
    sy = _float32_scale(y.quant.scale[0])
    if eps:
        x = x + np.float32(eps) * sy
    info = np.iinfo(y.dtype.numpy)
    return np.clip(np.rint(x / sy) + y.quant.zero_point[0], info.min, info.max).astype(np.int64)


def _q31_multipliers(graph: Graph, op: Op) -> np.ndarray | None:
    """npuc's real requantization multipliers M * 2**-(31 + n) of a MAC op (float64, exact)."""
    try:
        from npuc.quantization.op_params import derive_op_params

        p = derive_op_params(graph, op)
        M = np.asarray(p["multiplier"], np.float64)
        n = np.asarray(p["shift"], np.int64)
    except Exception as exc:  # noqa: BLE001 - an optimisation of the export, never a reason to fail it
        log.debug("multipliers of %s '%s' unavailable: %s", op.kind, op.name, exc)
        return None
    return np.ldexp(M, -(31 + n).astype(np.int32))


#: how far (in float32 ulps) a weight scale may move to match npuc's multiplier
_MAX_ULPS = 64


def mac_weight_scales(graph: Graph, op: Op, scales32: np.ndarray) -> np.ndarray:
    """Weight scales (float32, one per channel or one) for the weight DequantizeLinear of Conv/Gemm `op`,
    moved from `scales32` by at most _MAX_ULPS ulps so that onnxruntime's fused requantization
    multiplier `float32(float32(s_x * s_w[c]) / s_y)` is the float32 nearest to npuc's Q31 multiplier.
    Returns `scales32` unchanged when the op does not qualify."""
    if op.kind not in ("Conv", "Gemm"):
        return scales32
    ins, outs = graph.inputs_of(op), graph.outputs_of(op)
    if len(ins) < 2 or ins[1] is None or not ins[1].is_const or not _per_tensor(ins[0]) or len(outs) != 1 \
            or not _per_tensor(outs[0]) or ins[1].quant is None or ins[1].quant.axis not in (None, 0):
        return scales32
    target = _q31_multipliers(graph, op)
    s32 = np.asarray(scales32, np.float32).reshape(-1)
    if target is None or target.size not in (1, s32.size) or s32.size not in (1, target.size) \
            or np.any(s32 <= 0) or np.any(target <= 0):
        return scales32
    target = np.broadcast_to(target, s32.shape).astype(np.float64)
    sx = _float32_scale(ins[0].quant.scale[0])
    sy = _float32_scale(outs[0].quant.scale[0])
    # candidates ordered 0, -1, +1, -2, +2, ... ulps, so argmin keeps the smallest move among equals
    steps = np.array([0] + [k * d for k in range(1, _MAX_ULPS + 1) for d in (-1, 1)], dtype=np.int32)
    cand = (s32.view(np.int32)[:, None] + steps[None, :]).view(np.float32)  # positive floats: +1 = one ulp
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        m32 = (cand * sx) / sy  # float32 arithmetic, as onnxruntime computes it
        err = np.abs(m32.astype(np.float64) - target[:, None])
    best = np.argmin(np.where(np.isfinite(err), err, np.inf), axis=1)
    out = cand[np.arange(len(s32)), best]
    return out.reshape(np.shape(scales32))


def _resize_tie_offset(graph: Graph, op: Op) -> float:
    """tie_offset of a linear Resize: random input codes (4 planes of the layer's own size, all codes for
    8-bit inputs spread over them) through npuc's integer kernel and through the float32 resize the QDQ
    model asks for (npuc's float kernel: the same float32 coordinates as onnxruntime), per candidate eps."""
    if op.attrs.get("mode") != "linear":
        return 0.0
    ins, outs = graph.inputs_of(op), graph.outputs_of(op)
    if len(outs) != 1 or not _per_tensor(ins[0]) or not _per_tensor(outs[0]) or ins[0].rank < 2:
        return 0.0
    x, y = ins[0], outs[0]
    h, w = x.shape[-2:]
    oh, ow = y.shape[-2:]
    info = np.iinfo(x.dtype.numpy)
    rng = np.random.default_rng(0)
    planes = max(4, -(-1024 // max(1, h * w)))
    q = rng.integers(int(info.min), int(info.max) + 1, (planes, h, w)).astype(x.dtype.numpy)
    try:
        from npuc.backends.reference.integer_kernels import integer_kernel_for
        from npuc.backends.reference.kernels import kernel_for
        from npuc.quantization.op_params import derive_op_params
        npuc = np.asarray(integer_kernel_for("Resize")(op, [q], derive_op_params(graph, op),
                                                         [((planes, oh, ow), y.dtype.numpy)])[0], np.int64)
        real = (q.astype(np.int64) - x.quant.zero_point[0]).astype(np.float32) * _float32_scale(x.quant.scale[0])
        flat = Op(op.name, "Resize", {**op.attrs, "size": (planes, oh, ow)}, op.origin)
        resized = np.asarray(kernel_for("Resize")(flat, [real])[0], np.float32)
    except Exception as exc:  # noqa: BLE001 - an optimisation of the export, never a reason to fail it
        log.debug("tie check of Resize '%s' skipped: %s", op.name, exc)
        return 0.0
    sy = _float32_scale(y.quant.scale[0])
    out = np.iinfo(y.dtype.numpy)
    counts = []
    with np.errstate(over="ignore", invalid="ignore"):
        for eps in CANDIDATES:
            v = resized + np.float32(eps) * sy if eps else resized
            codes = np.clip(np.rint(v / sy) + y.quant.zero_point[0], out.min, out.max).astype(np.int64)
            counts.append(int(np.count_nonzero(codes != npuc)))
    best = min(range(len(CANDIDATES)), key=lambda i: (counts[i], i))
    if best:
        log.debug("Resize '%s': %d of %d sampled outputs round differently in float32; tie offset %g steps "
                  "leaves %d", op.name, counts[0], npuc.size, CANDIDATES[best], counts[best])
    return float(np.float32(CANDIDATES[best]) * sy) if best else 0.0


def tie_offset(graph: Graph, op: Op) -> float:
    """The offset (in real units, to add before the output's QuantizeLinear) that makes the QDQ
    model round `op`'s results like npuc; 0.0 when none is needed or the op is not checked."""
    if op.kind == "Resize":
        return _resize_tie_offset(graph, op)
    if op.kind not in TIE_KINDS or op.attrs.get("activation") is not None:
        return 0.0
    ins, outs = graph.inputs_of(op), graph.outputs_of(op)
    if len(ins) != 2 or len(outs) != 1 or not all(_per_tensor(t) for t in (*ins, outs[0])):
        return 0.0
    a, b = ins
    y = outs[0]
    ca, cb = _codes(a), _codes(b)
    if ca is None or cb is None:
        return 0.0
    try:
        from npuc.backends.reference.integer_kernels import integer_kernel_for
        from npuc.quantization.op_params import derive_op_params

        qa = ca.astype(a.dtype.numpy).reshape(-1, 1)
        qb = cb.astype(b.dtype.numpy).reshape(1, -1)
        npuc = np.asarray(integer_kernel_for(op.kind)(op, [qa, qb], derive_op_params(graph, op),
                                                      [((qa.size, qb.size), y.dtype.numpy)])[0], np.int64)
    except Exception as exc:  # noqa: BLE001 - an optimisation of the export, never a reason to fail it
        log.debug("tie check of %s '%s' skipped: %s", op.kind, op.name, exc)
        return 0.0
    counts = []
    with np.errstate(over="ignore", invalid="ignore"):
        for eps in CANDIDATES:
            counts.append(int(np.count_nonzero(_onnx_codes(op.kind, qa, qb, a, b, y, eps) != npuc)))
    best = min(range(len(CANDIDATES)), key=lambda i: (counts[i], i))
    if best:
        log.debug("%s '%s': %d of %d code pairs round differently in float32; tie offset %g steps leaves %d",
                  op.kind, op.name, counts[0], npuc.size, CANDIDATES[best], counts[best])
    return float(np.float32(CANDIDATES[best]) * _float32_scale(y.quant.scale[0])) if best else 0.0
