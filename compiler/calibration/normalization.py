"""Fold the script's `normalization(mean, std)` into the model as its first layer.

After `insert_normalization` the model takes raw pixels: a `Sub` (per-channel
means) and a `Mul` (per-channel 1/std) sit between the input and its former
readers. The input tensor keeps its name, so feeds and selectors still work.
`graph.meta["normalization"]` records what was inserted (one entry per input)
so the quantizer can make the input take raw u8 pixels and model info can say
so; calibration data must then be raw pixels (preprocessing mean 0, std 1).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from npuc.errors import ScriptError
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

META_KEY = "normalization"


def channel_axis(tensor: Tensor) -> int:
    """The channel axis of an image-like input: from `tensor.layout`, else NCHW for rank 4 with C in {1,3}."""
    layout = (tensor.layout or "").upper()
    if layout and "C" in layout and len(layout) == tensor.rank:
        return layout.index("C")
    if tensor.rank == 4 and tensor.shape[1] not in (1, 3) and tensor.shape[3] in (1, 3):
        return 3
    return 1 if tensor.rank >= 2 else 0


def insert_normalization(
    graph: Graph,
    mean: Sequence[float],
    std: Sequence[float],
    input_name: str | None = None,
    name: str = "normalization",
) -> bool:
    """Insert `(x - mean) / std` after a model input (the first one by default).

    Returns True when the graph changed; inserting the same normalization on the
    same input again is a no-op (False), a different one is an error.
    """
    x = _pick_input(graph, input_name)
    mean_arr = np.asarray(mean, dtype=np.float64).reshape(-1)
    std_arr = np.asarray(std, dtype=np.float64).reshape(-1)
    axis = channel_axis(x)
    channels = x.shape[axis] if x.rank else 1
    for label, arr in (("mean", mean_arr), ("std", std_arr)):
        if arr.size not in (1, channels):
            raise ScriptError(
                f"{name}(...): {arr.size} {label} value(s) for input '{x.name}' {x.shape} with {channels} channels")
    if not np.all(np.isfinite(std_arr)) or np.any(std_arr == 0.0) or not np.all(np.isfinite(mean_arr)):
        raise ScriptError(f"{name}(...): std must be finite and non-zero and mean finite, got {list(std_arr)}")

    record = {"mean": [float(v) for v in mean_arr], "std": [float(v) for v in std_arr], "axis": axis}
    done = graph.meta.setdefault(META_KEY, {})
    if x.name in done:
        previous = {k: done[x.name][k] for k in ("mean", "std", "axis")}
        if previous == record:
            log.info("normalization of input '%s' is already in the model", x.name)
            return False
        raise ScriptError(
            f"input '{x.name}' already has a normalization layer (mean {previous['mean']}, std {previous['std']}); "
            f"a second one (mean {record['mean']}, std {record['std']}) would normalize twice")

    shape = [1] * x.rank
    if x.rank:
        shape[axis] = mean_arr.size
    mean_t = graph.add_const(f"{name}/mean", mean_arr.astype(np.float32).reshape(shape if mean_arr.size > 1 else ()))
    shape_s = list(shape)
    if x.rank:
        shape_s[axis] = std_arr.size
    inv_std = (1.0 / std_arr).astype(np.float32).reshape(shape_s if std_arr.size > 1 else ())
    inv_t = graph.add_const(f"{name}/inv_std", inv_std)

    readers = graph.consumers(x)
    was_output = graph.is_output(x)
    sub = graph.add_op("Sub", [x, mean_t], name=f"{name}/sub", origin=(name,))
    centred = graph.outputs_of(sub)[0]
    mul = graph.add_op("Mul", [centred, inv_t], name=f"{name}/mul", origin=(name,))
    normalized = graph.outputs_of(mul)[0]
    for op, port in readers:
        graph.set_input(op, port, normalized)
    if was_output:
        graph.outputs = [normalized if t is x else t for t in graph.outputs]

    record.update(ops=[sub.name, mul.name], output=normalized.name)
    done[x.name] = record
    log.info("inserted normalization on input '%s': mean %s std %s", x.name, record["mean"], record["std"])
    return True


def _pick_input(graph: Graph, input_name: str | None) -> Tensor:
    if not graph.inputs:
        raise ScriptError(f"normalization(...): model '{graph.name}' has no inputs")
    if input_name is None:
        return graph.inputs[0]
    for t in graph.inputs:
        if t.name == input_name:
            return t
    raise ScriptError(
        f"normalization(...): '{input_name}' is not a model input (inputs: {[t.name for t in graph.inputs]})")
