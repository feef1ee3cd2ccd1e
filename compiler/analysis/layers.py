"""Which ops of a quantized graph are layers to analyse, and their float counterparts.

`quantize` keeps op and activation names, so a compute op of the quantized graph
has a float op of the same name in the fp-optimized graph whose outputs have the
same tensor names. Conversion ops (Quantize, Dequantize, Requantize, Cast) are
not layers: their effect is counted at the layer whose input they feed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from npuc.errors import NpucError
from npuc.ir.graph import Graph
from npuc.ir.op import Op

log = logging.getLogger(__name__)

CONVERSION_KINDS = frozenset({"Quantize", "Dequantize", "Requantize", "Cast"})
#: op kinds whose input port 1 is the weight tensor
WEIGHT_KINDS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


@dataclass(frozen=True)
class AnalysisLayer:
    """One analysed layer: a compute op present in both graphs."""

    name: str
    kind: str
    origin: tuple[str, ...]
    index: int  # position in the quantized graph's topological order (among layers)
    outputs: tuple[str, ...]  # activation tensor names, the same in both graphs
    dtype: str  # dtype of the quantized output (u8, i16, f16, ...)
    weight: str | None = None  # weight constant name in the quantized graph (port 1 of a MAC op)
    float_weight: str | None = None  # its float counterpart in the fp-optimized graph


def _weights(fp: Graph, q: Graph, q_op: Op, fp_op: Op) -> tuple[str | None, str | None]:
    if q_op.kind not in WEIGHT_KINDS:
        return None, None
    q_ins, f_ins = q.inputs_of(q_op), fp.inputs_of(fp_op)
    if len(q_ins) < 2 or len(f_ins) < 2:
        return None, None
    qw, fw = q_ins[1], f_ins[1]
    if qw is None or fw is None or not qw.is_const or not fw.is_const or qw.quant is None or qw.shape != fw.shape:
        return None, None
    return qw.name, fw.name


def find_layers(fp: Graph, q: Graph) -> list[AnalysisLayer]:
    """The analysable layers of `q` in topological order (raises when there is none)."""
    layers: list[AnalysisLayer] = []
    for op in q.ops():
        if op.kind in CONVERSION_KINDS:
            continue
        if not fp.has_op(op.name):
            log.debug("op '%s' of the quantized graph has no float counterpart; not analysed", op.name)
            continue
        fp_op = fp.op(op.name)
        outs = q.outputs_of(op)
        fouts = fp.outputs_of(fp_op)
        if [t.name for t in outs] != [t.name for t in fouts] or any(a.shape != b.shape for a, b in zip(outs, fouts)):
            log.debug("op '%s': outputs differ between the float and quantized graphs; not analysed", op.name)
            continue
        weight, float_weight = _weights(fp, q, op, fp_op)
        layers.append(AnalysisLayer(
            name=op.name, kind=op.kind, origin=tuple(op.origin), index=len(layers),
            outputs=tuple(t.name for t in outs), dtype=str(outs[0].dtype.value) if outs else "",
            weight=weight, float_weight=float_weight))
    if not layers:
        raise NpucError(f"model '{q.name}': no layer of the quantized graph matches a float layer; nothing to analyse")
    return layers
