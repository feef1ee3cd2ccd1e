"""fold_normalization: the script's input normalization folds into the first conv's weights and bias.

`normalization(mean, std)` inserts ``(x - mean) * (1 / std)`` after a model
input that takes raw 8-bit pixels. Quantized as layers of their own, these two
ops cost accuracy on every image model whose mean is not an integer: no 8-bit
grid with an integer zero point holds ``x - 127.5`` (the values are half
steps), so every pixel is off by half a step, a constant offset that the
following layers amplify (MediaPipe's BlazeFace back model loses 20-40 % of its
output SNR budget there, docs/tflite.md).

Folded, the conv reads the pixels themselves, shifted by one integer r::

    x  --Sub(r)-->  y = x - r  --Conv(W / std, b + sum W / std * (r - mean))-->

* ``x`` gets the fixed encoding u8, scale 1, zero point 0 (raw pixels, exact),
  and ``y`` u8, scale 1, zero point r: the integer Sub passes the codes through
  unchanged. With r = 0 there is no Sub.
* ``W / std`` scales each input channel of the conv's weight (any group count);
  the bias takes the rest of the mean, ``(r - mean) / std``, for every tap.
* Exact in the interior. Where the conv's padding (or a constant-zero Pad in
  front of it) reaches past the border, the padded value is now ``y = 0``, i.e.
  the pixel r, which normalizes to ``(r - mean) / std`` instead of 0; r is the
  integer nearest to the means, so that is at most half a pixel level when the
  channels share a mean (127.5 -> 128: 0.004 at std 127.5). The pass folds only
  when every channel's ``|r - mean|`` is at most `max_offset` pixel levels, and
  reports a bound of the padded-border change of the conv's output (in its own
  units) as ``border_error_bound``.

Left as layers (logged): a normalization whose output has another reader than
one Conv (or a zero Pad feeding one Conv), a conv with a non-constant weight,
means further apart than `max_offset` (ImageNet's 123.7 / 116.3 / 103.5 have no
common integer shift within half a level: folded, the borders would change by
up to 11.5 levels).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.calibration.normalization import META_KEY
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.quant_params import QuantParams
from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.passes.rewrite import merge_origins, sole_reader

log = logging.getLogger(__name__)


def _zero_pad(graph: Graph, op: Op) -> bool:
    """A Pad with constant zero that pads only the spatial axes (2 and up) of an NCHW tensor."""
    if op.kind != "Pad" or op.attrs.get("mode", "constant") != "constant":
        return False
    ins = graph.inputs_of(op)
    if any(t is not None and not t.is_const for t in ins[1:]):
        return False
    if float(op.attrs.get("value", 0.0) or 0.0) != 0.0:
        return False
    pads = tuple(op.attrs.get("pads", ()))
    rank = len(pads) // 2
    return rank >= 3 and all(pads[i] == 0 and pads[i + rank] == 0 for i in (0, 1))


def _conv_after(graph: Graph, mul: Op) -> tuple[Op, Op | None] | None:
    """(conv, pad or None) when the normalization's output is read only by a Conv (or a zero Pad read only by
    a Conv) with a constant weight and bias."""
    reader = sole_reader(graph, graph.outputs_of(mul)[0])
    pad = None
    if reader is not None and _zero_pad(graph, reader):
        pad, reader = reader, sole_reader(graph, graph.outputs_of(reader)[0])
    if reader is None or reader.kind != "Conv":
        return None
    ins = graph.inputs_of(reader)
    if not ins[1].is_const or (len(ins) > 2 and ins[2] is not None and not ins[2].is_const):
        return None
    return reader, pad


def _input_channel_of_weight(weight_shape: tuple[int, ...], group: int) -> np.ndarray:
    """For a Conv weight (O, Cin/group, kh, kw): the input channel each (o, j) reads, shape (O, Cin/group)."""
    out_ch, per_group = weight_shape[0], weight_shape[1]
    o = np.arange(out_ch)[:, None]
    return (o // (out_ch // group)) * per_group + np.arange(per_group)[None, :]


def _border_error_bound(conv: Op, pad: Op | None, tap_offsets: np.ndarray) -> float:
    """An upper bound of the change of a conv output at the padded border: a padded tap now holds the
    normalized value of pixel r instead of 0, which adds its `tap_offsets` term (weight x offset) there."""
    if not any(conv.attrs.get("pads", ())) and pad is None:
        return 0.0
    return float(np.max(np.abs(tap_offsets).reshape(tap_offsets.shape[0], -1).sum(axis=1)))


@dataclass(frozen=True)
class FoldNormalization(Pass):
    """Fold the script's input normalization into the first conv: raw u8 pixels in, exact in the interior."""

    name: ClassVar[str] = "fold_normalization"
    max_offset: float = option(0.5, "largest |r - mean| (pixel levels) of a channel for the fold; r: one integer shift")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        folded, left, worst = 0, 0, 0.0
        if not graph.meta.get(META_KEY):
            log.warning("fold_normalization: the model has no normalization(...) layer to fold (give the "
                        "script's normalization line first)")
        for input_name, record in graph.meta.get(META_KEY, {}).items():
            if record.get("folded_into"):
                continue
            why = self._fold(graph, input_name, record)
            if isinstance(why, str):
                log.warning("normalization of input '%s' stays as layers: %s", input_name, why)
                left += 1
            else:
                folded += 1
                worst = max(worst, why)
        if folded:
            graph.remove_unused_tensors()
        result = PassResult.from_counts(folded=folded, left=left)
        if folded:
            result.stats["border_error_bound"] = worst
        return result

    def _fold(self, graph: Graph, input_name: str, record: dict) -> float | str:
        sub_name, mul_name = record["ops"]
        if not (graph.has_op(sub_name) and graph.has_op(mul_name)):
            return "its layers were rewritten by an earlier pass"
        sub, mul = graph.op(sub_name), graph.op(mul_name)
        x = graph.tensor(input_name)
        found = _conv_after(graph, mul)
        if found is None:
            return "its output is not read by one Conv with constant weights (or a zero Pad and such a Conv)"
        conv, pad = found
        if record.get("axis") != 1 or x.rank != 4:
            return f"input '{input_name}' is not NCHW (channel axis {record.get('axis')})"
        channels = x.shape[1]
        mean = np.broadcast_to(np.asarray(record["mean"], np.float64), (channels,))
        inv_std = 1.0 / np.broadcast_to(np.asarray(record["std"], np.float64), (channels,))
        r = float(np.rint((mean.max() + mean.min()) / 2.0))
        if not 0.0 <= r <= 255.0:
            return f"the means {list(mean)} are outside the pixel range 0..255"
        if np.max(np.abs(r - mean)) > self.max_offset:
            return (f"the means {list(mean)} have no common integer shift within max_offset={self.max_offset} "
                    f"pixel levels (r = {r:g}: up to {np.max(np.abs(r - mean)):.3g})")
        ins = graph.inputs_of(conv)
        w = np.asarray(ins[1].data, np.float64)
        group = int(conv.attrs.get("group", 1))
        if w.shape[1] * group != channels:
            return f"conv '{conv.name}' reads {w.shape[1] * group} channels, the input has {channels}"
        channel = _input_channel_of_weight(w.shape, group)
        per_tap = w.shape[:2] + (1,) * (w.ndim - 2)
        w_scaled = w * inv_std[channel].reshape(per_tap)
        # pixel r normalizes to (r - mean) / std: each tap adds that times its weight W to the output
        tap_offsets = w_scaled * (r - mean)[channel].reshape(per_tap)
        bias = np.asarray(ins[2].data, np.float64) if len(ins) > 2 and ins[2] is not None else np.zeros(w.shape[0])
        bias = bias + tap_offsets.reshape(w.shape[0], -1).sum(axis=1)
        graph.set_input(conv, 1, graph.add_const(f"{conv.name}.weight", w_scaled.astype(np.float32)))
        graph.set_input(conv, 2, graph.add_const(f"{conv.name}.bias", bias.astype(np.float32)))

        x.meta["fixed_quant"] = QuantParams.per_tensor(1.0, 0, 8, False)
        y = graph.outputs_of(sub)[0] if r else x  # r = 0: the conv (or pad) reads the pixels themselves
        graph.replace_uses(graph.outputs_of(mul)[0], y)
        graph.remove_op(mul)
        if r:
            graph.set_input(sub, 1, graph.add_const(f"{sub.name}.shift", np.float32(r)))
            y.meta["fixed_quant"] = QuantParams.per_tensor(1.0, int(r), 8, False)
        else:
            graph.remove_op(sub)
        ops = [sub.name] if r else []
        conv.origin = merge_origins(conv, mul)
        record.update(ops=ops, folded_into=conv.name, shift=r)
        log.info("normalization of input '%s' folded into '%s' (shift %g)", input_name, conv.name, r)
        return _border_error_bound(conv, pad, tap_offsets)
