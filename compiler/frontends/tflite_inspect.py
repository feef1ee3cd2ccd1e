"""Summarise a .tflite file without lowering it (for `npuc check` and the front-end registry)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from npuc.frontends.summary import ModelSummary, UnsupportedOp, ValueSummary
from npuc.frontends.tflite_reader import TflModel, TflOperator, TflTensor, read_tflite


def find_unsupported(model: TflModel, ops: Sequence[TflOperator]) -> list[UnsupportedOp]:
    """Unsupported operator kinds (custom ops by their custom code) with the output tensors naming each use."""
    from npuc.frontends.tflite_ops import CONVERTERS

    uses: dict[str, list[str]] = {}
    for op in ops:
        if op.opcode not in CONVERTERS:
            label = model.tensors[op.outputs[0]].name if op.outputs and op.outputs[0] >= 0 else f"#{op.index}"
            uses.setdefault(op.display_name, []).append(label or f"#{op.index}")
    return [UnsupportedOp(name, tuple(nodes)) for name, nodes in sorted(uses.items())]


def _value(t: TflTensor) -> ValueSummary:
    dims = t.shape_signature if t.shape_signature else t.shape
    return ValueSummary(t.name, t.type_name.lower(), tuple(d if d > 0 else "?" for d in dims))


def inspect_tflite(path_or_bytes: str | Path | bytes) -> ModelSummary:
    """Declared inputs/outputs (NHWC as stored), operator histogram and unsupported operators."""
    model = read_tflite(path_or_bytes)
    label = str(path_or_bytes) if isinstance(path_or_bytes, (str, Path)) else "<bytes>"
    hist = Counter(op.display_name for op in model.operators)
    return ModelSummary(
        path=label,
        format="tflite",
        details={"schema_version": model.schema_version, "subgraphs": model.num_subgraphs,
                 "operators": len(model.operators), "description": model.description, "layout": "NHWC"},
        inputs=[_value(model.tensors[i]) for i in model.inputs],
        outputs=[_value(model.tensors[i]) for i in model.outputs],
        op_histogram=dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        unsupported=find_unsupported(model, model.operators),
    )
