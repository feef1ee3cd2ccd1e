"""normalization: fold the script's `normalization(mean, std)` into the model so it takes raw pixels.

Thin pass over `npuc.calibration.normalization.insert_normalization`: a Sub
(means) and a Mul (1/std) right after each selected input. Run it before
`calibrate`, whose data must then be raw pixels (preprocessing mean 0, std 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from npuc.calibration.normalization import insert_normalization
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, option


@dataclass(frozen=True)
class Normalization(Pass):
    """Insert (x - mean) / std after model inputs (every input when `inputs` is empty)."""

    name: ClassVar[str] = "normalization"
    mean: tuple[float, ...] = option((0.0,), "per-channel means, e.g. [123.675, 116.28, 103.53]")
    std: tuple[float, ...] = option((1.0,), "per-channel divisors, e.g. [58.395, 57.12, 57.375]")
    inputs: tuple[str, ...] = option((), "model inputs to normalize; all when empty")
    layer_name: str = option("normalization", "name of the inserted layer (script assignment name)")

    def run(self, graph: Graph, ctx: PassContext) -> PassResult:
        names = list(self.inputs) or [t.name for t in graph.inputs]
        inserted = 0
        for i, input_name in enumerate(names):
            label = self.layer_name if len(names) == 1 else f"{self.layer_name}_{i}"
            inserted += insert_normalization(graph, self.mean, self.std, input_name, label)
        return PassResult.from_counts(inserted=inserted)
