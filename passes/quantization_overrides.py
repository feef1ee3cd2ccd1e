"""quantization_overrides: import AIMET/SNPE encodings as fixed encodings that calibration never overwrites.

Thin pass over `npuc.calibration.encodings.apply_encodings`; the named tensors
get ``meta["fixed_quant"]`` (or ``meta["fixed_dtype"]`` for float entries).
Run it before `calibrate` (those tensors are then not observed) and `quantize`
(fixed encodings win over calibration).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from npuc.calibration.encodings import apply_encodings
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, option


@dataclass(frozen=True)
class QuantizationOverrides(Pass):
    """Load per-tensor encodings ({activation,param}_encodings JSON) as fixed encodings."""

    name: ClassVar[str] = "quantization_overrides"
    path: str = option("", "the encodings JSON file")

    def check(self, graph: Graph, ctx: PassContext) -> list[str]:
        return [] if self.path else ["needs path= (the encodings JSON file)"]

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        return PassResult.from_counts(**apply_encodings(graph, self.path))
