"""insert_dtype_conversions: make every change of data type an explicit, visible op.

After `quantize` each activation knows its target type (``tensor.meta["qdtype"]``)
and the encodings its differently-typed consumers need
(``tensor.meta["encodings"][dtype]``). This pass gives every activation its
target dtype and, wherever an op reads a tensor of another type or encoding,
inserts one conversion:

* float32/float16 -> integer: ``Quantize`` (e.g. right after each graph input);
* integer -> float32/float16: ``Dequantize`` (into a float16 layer);
* integer -> integer (other width, signedness or encoding): ``Requantize``
  (e.g. i8 -> i16 at a mixed-precision boundary);
* float32 <-> float16: ``Cast``.

A converted copy is shared by every consumer that needs the same type, so each
(tensor, type) pair costs at most one conversion. Concat/Add inputs with
different scales but the op's type need none: their integer kernels rescale each
input (docs/numerics.md section 8), and `quantize` already gave merge ops the
type most of their inputs have.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.passes.base import Pass, PassContext, PassResult
from npuc.passes.quantize import ENCODINGS, QDTYPE

log = logging.getLogger(__name__)


def conversion_kind(src: DType, dst: DType) -> str:
    """Which op converts a `src` tensor to `dst`."""
    if src.is_float and dst.is_float:
        return "Cast"
    if src.is_float:
        return "Quantize"
    if dst.is_float:
        return "Dequantize"
    return "Requantize"


@dataclass(frozen=True)
class InsertDtypeConversions(Pass):
    """Insert Quantize/Dequantize/Requantize/Cast ops wherever a tensor crosses data types."""

    name: ClassVar[str] = "insert_dtype_conversions"
    requires: ClassVar[tuple[str, ...]] = ("quantized",)
    ensures: ClassVar[tuple[str, ...]] = ("dtype_conversions",)

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        ops = graph.ops()
        retyped = 0
        for t in graph.tensors():
            target = t.meta.get(QDTYPE)
            if target is not None and not t.is_const and t.dtype is not target:
                t.dtype = target
                retyped += 1
        made: dict[tuple[int, DType], Tensor] = {}
        counts: dict[str, int] = {}
        for op in ops:
            outs = graph.outputs_of(op)
            if not outs or QDTYPE not in outs[0].meta:
                continue
            target = outs[0].meta[QDTYPE]
            for port, t in enumerate(graph.inputs_of(op)):
                if t is None or t.is_const or not _needs_conversion(t, target):
                    continue
                key = (id(t), target)
                conv = made.get(key)
                if conv is None:
                    conv = made[key] = self._convert(graph, t, target, op)
                    kind = graph.producer(conv).kind
                    counts[kind] = counts.get(kind, 0) + 1
                graph.set_input(op, port, conv)
        for op in ops:
            graph.reinfer(op)
        stats = {k.lower(): v for k, v in sorted(counts.items())}
        if retyped:
            stats["retyped"] = retyped
        log.info("inserted conversions: %s", stats or "none")
        ctx.set("dtype_conversions")
        return PassResult(bool(stats), stats)

    @staticmethod
    def _convert(graph: Graph, t: Tensor, target: DType, consumer: Op) -> Tensor:
        kind = conversion_kind(t.dtype, target)
        quant = None
        if target.is_integer:
            quant = t.meta.get(ENCODINGS, {}).get(target)
            if quant is None:
                raise QuantizationError(
                    f"'{t.name}' ({t.dtype}) feeds {consumer.kind} '{consumer.name}' ({target}) but quantize "
                    "recorded no encoding for that type; run quantize right before insert_dtype_conversions")
        op = graph.add_op(kind, [t], {"to": target}, name=f"{t.name}_to_{target}",
                          origin=_origin(graph, t), outputs=[f"{t.name}:{target}"])
        out = graph.outputs_of(op)[0]
        out.quant = quant
        out.layout = t.layout
        return out


def _needs_conversion(t: Tensor, target: DType) -> bool:
    if t.dtype is not target:
        return True
    return False


def _origin(graph: Graph, t: Tensor) -> tuple[str, ...]:
    prod = graph.producer(t)
    return prod.origin if prod is not None and prod.origin else (t.name,)
