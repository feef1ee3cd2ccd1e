"""stream_equalization: per-channel rescaling of residual streams, chosen to lower the 8-bit noise of all
their activation grids together.

The problem. In a residual network the tensor that carries the skip path (the
*stream*: ``x -> Add -> Relu -> (MaxPool) -> (channel Pad) -> Add -> ...``)
is read by two layers, so cross-layer equalization (one producer, one reader)
never touches it. Its channels keep ranges a few times apart, and every
tensor of the stream has one 8-bit grid set by its widest channel. On
MediaPipe's BlazeFace the stream tensors (add outputs, ReLUs, pools) are
3 of the 5 activation grids of each block, and their channel ranges differ
2-6x.

Channel classes. Channel c of a tensor is tied to channel c of the tensors it
is added to, of the ReLU / MaxPool / AveragePool / Resize of it, and to channel
c + before of a zero ``Pad`` of it. Union-find over (tensor, channel) gives
classes; a class may be divided by any s > 0 without changing the float
model (ReLU, max/average pooling and resizing are positively homogeneous, zero padding
stays zero) as long as every tensor of its component is

* produced by a Conv / Gemm with constant float weights and no activation or
  ReLU (its output rows and bias are divided by s: per-channel weights, no
  precision lost), or by one of the linking ops above, and
* read only by linking ops, by Convs of group 1 (their input channels are
  multiplied by s) or depthwise Convs (their channel's filter is multiplied
  by s), and neither a graph input nor a graph output.

A component that breaks a rule is left alone. Only components with an Add
(residual streams) are rescaled; single producer -> reader pairs are the
business of `cross_layer_equalization` / `noise_aware_equalization`.

Choice of scales. Per-channel statistics over calibration items (lo, hi, mean
square ms; a tensor read only by a ReLU is taken after it, as calibration
does) give a modelled noise-to-signal ratio per grid:

* stream tensor k, one 8-bit grid of step (max_c hi/s_c - min_c lo/s_c) / 255:
  ``sum_c (step s_c)^2 / 12  /  sum_c ms_c`` (noise back in original units);
* group-1 Conv reading the stream (weights W (O, C, taps), per-output-channel
  8-bit grids): ``sum_o (max_{c,t} |W s_c| / 127)^2 / 12 * sum_{c,t} ms_c / s_c^2
  / sum_{o,c,t} W^2 ms_c``.

Their sum is minimized by coordinate descent on log2 s_c (steps of 1, 1/2,
1/4, 1/8, `sweeps` sweeps at most). The result is applied when it lowers the
modelled sum by at least `min_gain` (a fraction).

Needs calibration data (an NpucError otherwise).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult, option

log = logging.getLogger(__name__)

LINK_KINDS = ("Add", "Relu", "MaxPool", "AveragePool", "Pad", "Resize")
STEPS = (1.0, 0.5, 0.25, 0.125)


@dataclass(frozen=True)
class StreamEqualization(Pass):
    """Rescale the channels of residual streams (add/relu/pool chains read by several layers), with one scale
    per tied channel, to lower the modelled 8-bit noise of all their grids (calibration data)."""

    name: ClassVar[str] = "stream_equalization"

    items: int = option(64, "calibration items measuring channel ranges and mean squares")
    min_gain: float = option(0.05, "rescale a stream only when its modelled noise falls by this fraction")
    sweeps: int = option(30, "maximum coordinate-descent sweeps per stream")
    activation_bits: int = option(8, "bits of the activation grids")
    weight_bits: int = option(8, "bits of the readers' (per-output-channel) weights")

    def __post_init__(self) -> None:
        if self.items < 1 or self.sweeps < 1:
            raise ValueError("items and sweeps must be >= 1")
        if not 0.0 <= self.min_gain < 1.0:
            raise ValueError(f"min_gain must be in [0, 1), got {self.min_gain}")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        from npuc.passes.layer_data import calibration_items, float_values

        comps = streams(graph)
        if not comps:
            return PassResult.unchanged()
        items = calibration_items(ctx, graph, self.items, self.name)
        names = [t for comp in comps for t in comp.tensors]
        stats: dict[str, list[np.ndarray]] = {}

        def reduce(name: str, _i: int, value: np.ndarray) -> None:
            v = np.asarray(value, np.float64)
            x = np.moveaxis(v.reshape(v.shape[0], v.shape[1], -1), 1, 0).reshape(v.shape[1], -1)
            lo, hi, sq = x.min(axis=1), x.max(axis=1), np.sum(x * x, axis=1)
            old = stats.get(name)
            stats[name] = [lo, hi, sq, x.shape[1]] if old is None else [
                np.minimum(old[0], lo), np.maximum(old[1], hi), old[2] + sq, old[3] + x.shape[1]]

        float_values(graph, items, names, reduce)
        done = 0
        for comp in comps:
            model = _NoiseModel(graph, comp, stats, self.activation_bits, self.weight_bits)
            u, before, after = model.optimize(self.sweeps)
            if after > (1.0 - self.min_gain) * before:
                continue
            comp.apply(graph, np.exp2(u))
            done += 1
            log.debug("%s: stream of %d tensor(s), %d class(es): modelled noise x%.3f", self.name,
                      len(comp.tensors), comp.classes, after / before)
        if done:
            graph.remove_unused_tensors()
        log.info("%s: rescaled %d of %d stream(s)", self.name, done, len(comps))
        return PassResult(done > 0, {"streams": len(comps), "rescaled": done})


class _Stream:
    """A valid component: its tensors, each channel's class, producers and readers to rescale."""

    def __init__(self, tensors: list[str], cls: dict[str, np.ndarray], classes: int,
                 producers: list[tuple[Op, str]], readers: list[tuple[Op, str]]) -> None:
        self.tensors, self.cls, self.classes = tensors, cls, classes
        self.producers, self.readers = producers, readers

    def apply(self, graph: Graph, s: np.ndarray) -> None:
        """Stream values / s: producer rows and biases / s, reader input channels * s (new constants)."""
        factors: dict[str, dict[str, np.ndarray]] = {}
        for op, t in self.producers:
            factors.setdefault(op.name, {})["out"] = s[self.cls[t]]
        for op, t in self.readers:
            factors.setdefault(op.name, {})["in"] = s[self.cls[t]]
        for name, f in factors.items():
            op = graph.op(name)
            ins = graph.inputs_of(op)
            w = np.asarray(ins[1].data, np.float64)
            depthwise = int(op.attrs.get("group", 1)) > 1
            if "in" in f:
                shape = (-1,) + (1,) * (w.ndim - 1) if depthwise else (1, -1) + (1,) * (w.ndim - 2)
                w = w * f["in"].reshape(shape)
            if "out" in f:
                w = w / f["out"].reshape((-1,) + (1,) * (w.ndim - 1))
            dt = ins[1].dtype
            graph.set_input(op, 1, graph.add_const(f"{name}.weight_seq", w.astype(dt.numpy), dtype=dt))
            if "out" in f and len(ins) > 2 and ins[2] is not None:
                b = np.asarray(ins[2].data, np.float64).reshape(-1) / f["out"]
                graph.set_input(op, 2, graph.add_const(f"{name}.bias_seq", b.astype(ins[2].dtype.numpy),
                                                       dtype=ins[2].dtype))
            graph.reinfer(op)


def _is_mac(graph: Graph, op: Op) -> bool:
    ins = graph.inputs_of(op)
    if op.kind != "Conv" or len(ins) < 2 or ins[1] is None or not ins[1].is_const or not ins[1].dtype.is_float:
        return False
    return len(ins) < 3 or ins[2] is None or (ins[2].is_const and ins[2].dtype.is_float)


def _homogeneous(op: Op) -> bool:
    act = op.attrs.get("activation")
    if act in (None, "relu"):
        return True
    return act == "clip" and op.attrs.get("clip_min") in (0, 0.0) and op.attrs.get("clip_max") is None


def _reader_kind(graph: Graph, op: Op, port: int) -> str | None:
    """'link', 'plain' (group-1 conv), 'depthwise', or None (breaks the stream)."""
    if op.kind in LINK_KINDS:
        if op.kind == "Pad" and not _zero_pad(graph, op):
            return None
        if op.kind == "Add" and not _same_shape_add(graph, op):
            return None
        return "link" if port == 0 or op.kind == "Add" else None
    if port == 0 and _is_mac(graph, op):
        w = graph.inputs_of(op)[1]
        group = int(op.attrs.get("group", 1))
        if group == 1:
            return "plain"
        if w.shape[1] == 1 and group == w.shape[0]:
            return "depthwise"
    return None


def _zero_pad(graph: Graph, op: Op) -> bool:
    ins = graph.inputs_of(op)
    if op.attrs.get("mode", "constant") != "constant":
        return False
    value = op.attrs.get("value", 0.0)
    if len(ins) > 2 and ins[2] is not None:
        if not ins[2].is_const:
            return False
        value = float(np.asarray(ins[2].data).reshape(-1)[0]) if np.size(ins[2].data) else 0.0
    if value not in (0, 0.0):
        return False
    if len(ins) > 1 and ins[1] is not None:
        return False  # pads as a tensor input: not read here
    pads = op.attrs.get("pads")
    return pads is not None and len(pads) == 2 * len(graph.inputs_of(op)[0].shape)


def _same_shape_add(graph: Graph, op: Op) -> bool:
    ins = graph.inputs_of(op)
    return (len(ins) == 2 and all(t is not None and not t.is_const for t in ins)
            and tuple(ins[0].shape) == tuple(ins[1].shape))


def streams(graph: Graph) -> list[_Stream]:
    """Valid residual-stream components of `graph` (see the module docstring)."""
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    def channels(t: Tensor) -> int:
        return int(t.shape[1]) if len(t.shape) >= 2 else 0

    tensors: dict[str, Tensor] = {}
    for op in graph.ops():
        if op.kind not in LINK_KINDS:
            continue
        ins, outs = graph.inputs_of(op), graph.outputs_of(op)
        if len(outs) != 1 or len(outs[0].shape) < 3:
            continue
        out = outs[0]
        srcs = [t for t in ins[:2 if op.kind == "Add" else 1] if t is not None and not t.is_const]
        if op.kind == "Add" and not _same_shape_add(graph, op) or op.kind == "Pad" and not _zero_pad(graph, op):
            continue
        before = 0
        if op.kind == "Pad":
            pads = op.attrs["pads"]
            before = int(pads[1])
            if before < 0 or int(pads[1 + len(out.shape)]) < 0:
                continue
        for t in [out, *srcs]:
            tensors[t.name] = t
        for t in srcs:
            for c in range(channels(t)):
                union((t.name, c), (out.name, c + before))
        for c in range(channels(out)):
            find((out.name, c))
    groups: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for node in list(parent):
        groups.setdefault(find(node), []).append(node)
    # components: connected tensors (through their classes)
    comp_of: dict[str, int] = {}
    comps: list[set[str]] = []
    for members in groups.values():
        names = {n for n, _ in members}
        hit = {comp_of[n] for n in names if n in comp_of}
        if hit:
            keep = min(hit)
            for k in sorted(hit - {keep}):
                for n in comps[k]:
                    comp_of[n] = keep
                comps[keep] |= comps[k]
                comps[k] = set()
            comps[keep] |= names
        else:
            comps.append(set(names))
            keep = len(comps) - 1
        for n in names:
            comp_of[n] = keep
    out: list[_Stream] = []
    for comp in comps:
        if not comp:
            continue
        stream = _validate(graph, comp, tensors, find)
        if stream is not None:
            out.append(stream)
    return out


def _validate(graph: Graph, comp: set[str], tensors: dict[str, Tensor], find) -> _Stream | None:
    producers: list[tuple[Op, str]] = []
    readers: list[tuple[Op, str]] = []
    has_add = False
    for name in sorted(comp):
        t = tensors[name]
        if graph.is_output(t) or t in graph.inputs or not t.dtype.is_float:
            return None
        prod = graph.producer(t)
        if prod is None:
            return None
        if prod.kind in LINK_KINDS:
            has_add |= prod.kind == "Add"
            if any(x is not None and not x.is_const and x.name not in comp
                   for x in graph.inputs_of(prod)[:2 if prod.kind == "Add" else 1]):
                return None
        elif _is_mac(graph, prod) and _homogeneous(prod):
            producers.append((prod, name))
        else:
            return None
        for op, port in graph.consumers(t):
            kind = _reader_kind(graph, op, port)
            if kind is None:
                return None
            if kind == "link":
                if any(o.name not in comp for o in graph.outputs_of(op)):
                    return None
            else:
                readers.append((op, name))
    if not has_add:
        return None
    roots: dict[tuple[str, int], int] = {}
    cls: dict[str, np.ndarray] = {}
    for name in sorted(comp):
        n = int(tensors[name].shape[1])
        cls[name] = np.array([roots.setdefault(find((name, c)), len(roots)) for c in range(n)], np.int64)
    seen_ops: dict[str, str] = {}
    for op, name in readers:  # a reader of two stream tensors (port 0 only) cannot happen; keep it simple
        if seen_ops.setdefault(op.name, name) != name:
            return None
    return _Stream(sorted(comp), cls, len(roots), producers, readers)


class _NoiseModel:
    """The modelled sum of noise-to-signal ratios of a stream's grids and its group-1 readers' weights."""

    def __init__(self, graph: Graph, stream: _Stream, stats, activation_bits: int, weight_bits: int) -> None:
        self.n = stream.classes
        self.terms_act = []
        for name in stream.tensors:
            lo, hi, sq, count = stats[name]
            t = graph.tensor(name)
            readers = graph.consumers(t)
            if readers and all(op.kind == "Relu" for op, _ in readers):
                lo = np.maximum(lo, 0.0)  # observed after the ReLU, as calibration does
            ms = sq / max(count, 1)
            self.terms_act.append((stream.cls[name], lo, hi, float(np.sum(ms)) or 1.0))
        self.levels_a = float((1 << activation_bits) - 1)
        self.levels_w = float((1 << (weight_bits - 1)) - 1)
        self.terms_w = []
        for op, name in stream.readers:
            if int(op.attrs.get("group", 1)) != 1:
                continue  # depthwise readers: per-channel weights scale with their channel, no cost
            w = np.asarray(graph.inputs_of(op)[1].data, np.float64)
            w = w.reshape(w.shape[0], w.shape[1], -1)
            lo, hi, sq, count = stats[name]
            ms = sq / max(count, 1)
            signal = float(np.sum(w * w * ms[None, :, None])) or 1.0
            self.terms_w.append((stream.cls[name], np.max(np.abs(w), axis=2), ms, w.shape[2], signal))

    def _terms(self, s: np.ndarray, which) -> np.ndarray:
        """Cost of each term index in `which` (activation terms first, then weight terms)."""
        out = np.empty(len(which))
        n_act = len(self.terms_act)
        for j, k in enumerate(which):
            if k < n_act:
                idx, lo, hi, signal = self.terms_act[k]
                sc = s[idx]
                step = (max(0.0, float(np.max(hi / sc))) - min(0.0, float(np.min(lo / sc)))) / self.levels_a
                out[j] = step * step * float(np.sum(sc * sc)) / 12.0 / signal
            else:
                idx, wmax, ms, taps, signal = self.terms_w[k - n_act]
                sc = s[idx]
                dw = np.max(wmax * sc[None, :], axis=1) / self.levels_w
                out[j] = float(np.sum(dw * dw)) / 12.0 * float(np.sum(ms / (sc * sc))) * taps / signal
        return out

    def cost(self, u: np.ndarray) -> float:
        everything = range(len(self.terms_act) + len(self.terms_w))
        return float(np.sum(self._terms(np.exp2(u), everything)))

    def optimize(self, sweeps: int) -> tuple[np.ndarray, float, float]:
        """Coordinate descent on u = log2 s; only the terms holding a class are re-evaluated when it moves."""
        terms = [t[0] for t in self.terms_act] + [t[0] for t in self.terms_w]
        touching: list[list[int]] = [[] for _ in range(self.n)]
        for k, idx in enumerate(terms):
            for c in np.unique(idx):
                touching[int(c)].append(k)
        u = np.zeros(self.n)
        per_term = self._terms(np.ones(self.n), range(len(terms)))
        base = best = float(np.sum(per_term))
        for step in STEPS:
            for _ in range(sweeps):
                moved = False
                for c in range(self.n):
                    ks = touching[c]
                    if not ks:
                        continue
                    old = float(np.sum(per_term[ks]))
                    for d in (step, -step):
                        u[c] += d
                        new = self._terms(np.exp2(u), ks)
                        if float(np.sum(new)) < old - 1e-12 * max(best, 1e-300):
                            best += float(np.sum(new)) - old
                            per_term[ks] = new
                            moved = True
                            break
                        u[c] -= d
                if not moved:
                    break
        return u, base, float(np.sum(per_term))
