"""Op kinds: what inputs and attributes an op takes, how its output types are inferred.

The registry is open: plugins register new kinds the same way the built-ins do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from npuc.errors import PluginError
from npuc.ir.dtypes import DType

if TYPE_CHECKING:
    from npuc.ir.op import Op
    from npuc.ir.tensor import Tensor

#: Attribute default meaning "must be given".
REQUIRED = object()

OutputType = tuple[tuple[int, ...], DType]
InferFn = Callable[["Op", list["Tensor | None"]], list[OutputType]]
VerifyFn = Callable[["Op", list["Tensor | None"]], list[str]]


@dataclass(frozen=True)
class OpSpec:
    """Description of one op kind.

    inputs: input names in port order; a trailing '?' marks an optional input,
    a trailing '*' on the last name makes it variadic (one or more).
    attrs: attribute names with defaults (REQUIRED when there is none).
    infer: returns (shape, dtype) of each output from the op and its inputs.
    verify: extra checks returning a list of problems (empty when fine).
    layout_only: the op only moves data (Reshape/Transpose/...): pruned at
    the tail, priced as data movement by the timing model.
    """

    kind: str
    inputs: tuple[str, ...]
    infer: InferFn
    attrs: Mapping[str, Any] = field(default_factory=dict)
    verify: VerifyFn | None = None
    layout_only: bool = False
    doc: str = ""

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[-1].endswith("*")

    @property
    def min_inputs(self) -> int:
        return sum(1 for n in self.inputs if not n.endswith("?") and not n.endswith("*")) + (1 if self.variadic else 0)

    @property
    def max_inputs(self) -> int | None:
        return None if self.variadic else len(self.inputs)

    def input_name(self, port: int) -> str:
        if port < len(self.inputs):
            return self.inputs[port].rstrip("?*")
        return self.inputs[-1].rstrip("*") + str(port)

    def with_defaults(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Attributes filled with defaults; unknown or missing required names raise ValueError."""
        given = dict(attrs or {})
        unknown = sorted(set(given) - set(self.attrs))
        if unknown:
            raise ValueError(f"{self.kind}: unknown attribute(s) {unknown}; known: {sorted(self.attrs)}")
        out: dict[str, Any] = {}
        for name, default in self.attrs.items():
            if name in given:
                out[name] = given[name]
            elif default is REQUIRED:
                raise ValueError(f"{self.kind}: attribute '{name}' is required")
            else:
                out[name] = default
        return out


class OpRegistry:
    """Op kinds by name, remembering where each came from (for `npuc passes` and clash errors)."""

    def __init__(self) -> None:
        self._specs: dict[str, OpSpec] = {}
        self._sources: dict[str, str] = {}

    def register(self, spec: OpSpec, source: str = "builtin") -> OpSpec:
        if spec.kind in self._specs:
            raise PluginError(
                f"op kind '{spec.kind}' is registered twice: by {self._sources[spec.kind]} and by {source}"
            )
        self._specs[spec.kind] = spec
        self._sources[spec.kind] = source
        return spec

    def get(self, kind: str) -> OpSpec:
        try:
            return self._specs[kind]
        except KeyError:
            raise KeyError(f"unknown op kind '{kind}'") from None

    def source(self, kind: str) -> str:
        return self._sources[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._specs

    def kinds(self) -> list[str]:
        return sorted(self._specs)


#: The process-wide registry. Built-in kinds are added by importing npuc.ir.ops.
OPS = OpRegistry()


def register_op(spec: OpSpec, source: str = "builtin") -> OpSpec:
    return OPS.register(spec, source)
