"""An example npuc plugin: one pass, `fold_mul_by_one`, that removes multiplications by a constant 1.

Use it without installing anything:

    npuc --plugin examples/plugin_example/my_plugin.py passes fold_mul_by_one
    npuc --plugin examples/plugin_example/my_plugin.py dump model.onnx --passes fold_constants,fold_mul_by_one

or install it (`pip install examples/plugin_example`): its pyproject.toml declares the
entry point `example = "my_plugin:PLUGIN"` in the group `npuc.plugins`, and npuc then
loads it on every start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from npuc.passes.base import Pass, PassContext, PassResult, option
from npuc.plugins import Plugin


@dataclass(frozen=True)
class FoldMulByOne(Pass):
    """Remove Mul by a constant 1 and Div by a constant 1 (exporters leave them behind)."""

    name: ClassVar[str] = "fold_mul_by_one"
    tolerance: float = option(0.0, "how far from 1.0 a factor may be and still count as one")

    def run(self, graph, ctx: PassContext) -> PassResult:
        removed = 0
        for op in graph.ops():
            if op.kind not in ("Mul", "Div"):
                continue
            a, b = graph.inputs_of(op)
            pairs = [(a, b), (b, a)] if op.kind == "Mul" else [(a, b)]
            out = graph.outputs_of(op)[0]
            for x, one in pairs:
                if not one.is_const or x.shape != out.shape or x.dtype != out.dtype:
                    continue
                if np.all(np.abs(np.asarray(one.data, dtype=np.float64) - 1.0) <= self.tolerance):
                    if graph.is_output(out):
                        break  # keep it: removing it would rename a model output
                    graph.replace_uses(out, x)  # readers of the product now read x
                    graph.remove_op(op)
                    removed += 1
                    break
        graph.remove_unused_tensors()
        return PassResult.from_counts(removed=removed)


# Loaders are called when the plugin is activated; keep imports of heavy modules inside them.
PLUGIN = Plugin(
    name="example",
    passes=lambda: [FoldMulByOne],
    description="example plugin: the fold_mul_by_one pass",
)
