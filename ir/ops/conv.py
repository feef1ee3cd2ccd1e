"""Convolutions (NCHW activations, OIHW weights, as ONNX)."""
from __future__ import annotations

from npuc.ir.op_spec import OpSpec, register_op
from npuc.ir.ops._infer import conv_out_dim

#: Activations that conv/gemm/matmul can carry fused (applied before requantization).
#: clip_min / clip_max are None (unbounded), a float (per tensor) or a tuple of floats, one per
#: output channel (axis 1 of a conv output, the last axis of Gemm/MatMul): cross-layer
#: equalization turns Clip(0, 6) into Clip(0, 6 / s_c) when it scales channel c by 1 / s_c.
FUSED_ACTIVATION_ATTRS = {"activation": None, "clip_min": None, "clip_max": None}
FUSED_ACTIVATIONS = (None, "relu", "clip")
#: How a quantized MAC layer requantizes its accumulator (docs/numerics.md sections 6 and 6a):
#: "integer" (31-bit fixed-point multiplier, half up) or "float32" (onnxruntime's QLinearConv arithmetic).
REQUANTIZATIONS = ("integer", "float32")
#: Attributes of a MAC layer's epilogue: the fused activation and the requantization rule.
MAC_EPILOGUE_ATTRS = {**FUSED_ACTIVATION_ATTRS, "requantization": "integer"}


def clip_is_per_channel(attrs) -> bool:
    """True when the fused clip has a per-output-channel bound (a tuple clip_min or clip_max)."""
    return attrs.get("activation") == "clip" and any(
        isinstance(attrs.get(k), (tuple, list)) for k in ("clip_min", "clip_max"))


def fused_clip_channel_axis(kind: str) -> int:
    """The output axis per-channel fused clip bounds run along: 1 for convs, -1 for Gemm/MatMul."""
    return 1 if kind in ("Conv", "ConvTranspose") else -1


def verify_epilogue(op, channels: int | None) -> list[str]:
    """Problems of a MAC op's epilogue attributes: the requantization rule and the fused clip bounds."""
    problems = []
    if op.attrs.get("requantization", "integer") not in REQUANTIZATIONS:
        problems.append(f"requantization must be one of {REQUANTIZATIONS}, got {op.attrs['requantization']!r}")
    return problems + verify_fused_clip(op, channels)


def verify_fused_clip(op, channels: int | None) -> list[str]:
    """Problems of an op's fused clip bounds (per-channel ones need `channels` entries, min <= max)."""
    import math

    if op.attrs.get("activation") != "clip":
        return []
    problems = []
    lo, hi = op.attrs.get("clip_min"), op.attrs.get("clip_max")
    vals = {}
    for name, v in (("clip_min", lo), ("clip_max", hi)):
        if v is None:
            continue
        seq = list(v) if isinstance(v, (tuple, list)) else [v]
        if isinstance(v, (tuple, list)) and channels is not None and len(seq) != channels:
            problems.append(f"{name} has {len(seq)} per-channel bounds for {channels} output channels")
            continue
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x)) for x in seq):
            problems.append(f"{name} {v!r} is not finite numbers")
            continue
        vals[name] = seq
    if "clip_min" in vals and "clip_max" in vals:
        a, b = vals["clip_min"], vals["clip_max"]
        if len(a) == 1 or len(b) == 1 or len(a) == len(b):
            n = max(len(a), len(b))
            if any(float(a[i % len(a)]) > float(b[i % len(b)]) for i in range(n)):
                problems.append(f"fused clip bounds are empty somewhere (clip_min > clip_max)")
    return problems


def _conv_common(x, w, attrs, transposed: bool):
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ValueError(f"expects 4-D input and weight, got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    group = int(attrs["group"])
    kh, kw = w.shape[2:]
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    pt, pl, pb, pr = attrs["pads"]
    if group < 1 or min(sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise ValueError(f"bad conv geometry: group {group}, strides {(sh, sw)}, dilations {(dh, dw)}, pads {(pt, pl, pb, pr)}")
    if transposed:
        if w.shape[0] != c:
            raise ValueError(f"weight has {w.shape[0]} input channels, input has {c}")
        oph, opw = attrs["output_padding"]
        if min(oph, opw) < 0:
            raise ValueError(f"negative output_padding {(oph, opw)}")
        cout = w.shape[1] * group
        oh = sh * (h - 1) + oph + dh * (kh - 1) + 1 - pt - pb
        ow = sw * (wd - 1) + opw + dw * (kw - 1) + 1 - pl - pr
    else:
        if c != w.shape[1] * group:
            raise ValueError(f"input has {c} channels, weight expects {w.shape[1]} x group {group}")
        if w.shape[0] % group:
            raise ValueError(f"{w.shape[0]} output channels not divisible by group {group}")
        cout = w.shape[0]
        oh = conv_out_dim(h, kh, sh, pt, pb, dh)
        ow = conv_out_dim(wd, kw, sw, pl, pr, dw)
    return (n, cout, oh, ow)


def _infer_conv(op, ins):
    x, w = ins[0], ins[1]
    return [(_conv_common(x, w, op.attrs, False), x.dtype)]


def _infer_conv_transpose(op, ins):
    x, w = ins[0], ins[1]
    return [(_conv_common(x, w, op.attrs, True), x.dtype)]


def _verify_conv(op, ins):
    problems = []
    if op.attrs["activation"] not in FUSED_ACTIVATIONS:
        problems.append(f"unknown fused activation {op.attrs['activation']!r}")
    if len(ins) > 2 and ins[2] is not None and ins[2].shape not in ((ins[1].shape[0] if op.kind == "Conv" else ins[1].shape[1] * op.attrs["group"],),):
        problems.append(f"bias shape {ins[2].shape} does not match output channels")
    cout = ins[1].shape[0] if op.kind == "Conv" else ins[1].shape[1] * op.attrs["group"]
    problems.extend(verify_epilogue(op, cout))
    return problems


_CONV_ATTRS = {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": 1, **MAC_EPILOGUE_ATTRS}

register_op(OpSpec(
    "Conv", ("x", "weight", "bias?"), _infer_conv, _CONV_ATTRS, verify=_verify_conv,
    doc="2-D convolution. pads = (top, left, bottom, right). Optional fused activation.",
))
register_op(OpSpec(
    "ConvTranspose", ("x", "weight", "bias?"), _infer_conv_transpose,
    {**_CONV_ATTRS, "output_padding": (0, 0)}, verify=_verify_conv,
    doc="2-D transposed convolution; weight is (Cin, Cout/group, kh, kw).",
))
