"""An operation node in the IR."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Op:
    """One operation. Inputs and outputs are graph edges, never copied here.

    `origin` keeps the names of the source-model nodes this op came from, so
    selectors, reports and overrides still find a layer after fusion.
    `meta` holds transient analysis data and is never saved.
    """

    name: str
    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    origin: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Op({self.name!r}, {self.kind})"

    def __hash__(self) -> int:
        return id(self)
