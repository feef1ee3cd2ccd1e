"""Format-neutral facts about a model file, for `npuc check` and import errors.

Every front-end (ONNX now, TFLite later) describes a model with these records
before importing it: declared inputs/outputs (dynamic dims kept as written),
an operator histogram and the operators npuc cannot import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: how many node names an unsupported-op report shows per op type
SHOWN_NODE_NAMES = 3

Dim = int | str


@dataclass(frozen=True)
class ValueSummary:
    """A model input or output as declared in the file; dims are ints or symbolic names ('?' = unknown)."""

    name: str
    dtype: str
    dims: tuple[Dim, ...] | None

    @property
    def is_static(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) and d > 0 for d in self.dims)

    def shape_text(self) -> str:
        if self.dims is None:
            return "[unknown rank]"
        return "[" + ", ".join(str(d) for d in self.dims) + "]"


@dataclass(frozen=True)
class UnsupportedOp:
    """One operator type (or unsupported variant of one) and the nodes that use it."""

    op: str
    nodes: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(f"'{n}'" for n in self.nodes[:SHOWN_NODE_NAMES])
        more = f" and {len(self.nodes) - SHOWN_NODE_NAMES} more" if len(self.nodes) > SHOWN_NODE_NAMES else ""
        return f"{self.op} ({len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}: {shown}{more})"


def unsupported_message(source: str, found: Sequence[UnsupportedOp]) -> str:
    """The one-paragraph report raised as UnsupportedOpsError."""
    total = sum(len(u.nodes) for u in found)
    listing = "; ".join(u.describe() for u in found)
    return (f"{source} uses {len(found)} operator type(s) npuc cannot import, in {total} node(s): {listing}. "
            "Nothing was imported. Cut the model before them by naming the tensors to keep as outputs "
            "(parse end), or add the operators with a plugin.")


@dataclass
class ModelSummary:
    """What `npuc check` prints about a model file."""

    path: str
    format: str
    details: dict[str, Any] = field(default_factory=dict)
    inputs: list[ValueSummary] = field(default_factory=list)
    outputs: list[ValueSummary] = field(default_factory=list)
    op_histogram: dict[str, int] = field(default_factory=dict)
    unsupported: list[UnsupportedOp] = field(default_factory=list)
