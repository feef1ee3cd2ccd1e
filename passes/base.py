"""What a pass is: a frozen dataclass of options with `run(graph, ctx) -> PassResult`.

A pass subclass sets the class attribute `name` (snake_case; the module name,
the script keyword and the test file share it) and declares its options as
dataclass fields with simple types (int, float, bool, str, typing.Literal,
tuple[str, ...]) so the script language and the CLI can set them::

    @dataclass(frozen=True)
    class FoldMulByOne(Pass):
        "Remove multiplications by a constant 1."
        name: ClassVar[str] = "fold_mul_by_one"
        tolerance: float = option(0.0, "how far from 1.0 a factor may be")

        def run(self, graph, ctx):
            ...
            return PassResult(changed=n > 0, stats={"removed": n})

`requires` names facts that earlier passes must have put into `ctx.state`
(e.g. quantize requires "calibration"); `ensures` names the facts this pass
puts there. The PassManager checks both and fails with a PassError that says
what is missing. `check(graph, ctx)` may add problems of its own.
"""
from __future__ import annotations

import dataclasses
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

if typing.TYPE_CHECKING:
    from npuc.ir.graph import Graph

Stat = int | float | str


def option(default: Any, doc: str = "") -> Any:
    """A pass option: a dataclass field with a default and a one-line description."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("pass options must be immutable (use a tuple)")
    return field(default=default, metadata={"doc": doc})


@dataclass
class PassResult:
    """What a pass did: whether the graph changed, and counters for reports (e.g. {'folded': 12})."""

    changed: bool = False
    stats: dict[str, Stat] = field(default_factory=dict)

    @classmethod
    def unchanged(cls) -> "PassResult":
        return cls(False, {})

    @classmethod
    def from_counts(cls, **counts: int) -> "PassResult":
        """changed = any count is non-zero; zero counts are dropped from stats."""
        stats: dict[str, Stat] = {k: v for k, v in counts.items() if v}
        return cls(bool(stats), stats)


@dataclass
class PassRecord:
    """One completed pass run, as kept in `PassContext.history`."""

    index: int
    name: str
    pass_: "Pass"
    result: PassResult
    seconds: float


@dataclass
class PassContext:
    """State shared by the passes of one pipeline run.

    state: facts and data passes hand to later passes, by key ('calibration',
      'target', ...). `requires`/`ensures` of a pass are keys of this dict.
    history: the passes run so far (filled by the PassManager).
    options: pipeline-wide settings from the driver/script (target name, ...).
    """

    state: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    history: list[PassRecord] = field(default_factory=list)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("npuc.passes"))

    def has(self, key: str) -> bool:
        return key in self.state

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    def set(self, key: str, value: Any = True) -> None:
        self.state[key] = value

    @property
    def passes_run(self) -> list[str]:
        return [r.name for r in self.history]


@dataclass(frozen=True)
class OptionInfo:
    """One pass option, for listings and for binding script/CLI values."""

    name: str
    type: Any
    default: Any
    doc: str

    @property
    def type_name(self) -> str:
        return type_name(self.type)


@dataclass(frozen=True)
class Pass:
    """Base of every pass. Subclasses are frozen dataclasses; see the module docstring."""

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    ensures: ClassVar[tuple[str, ...]] = ()

    def run(self, graph: "Graph", ctx: PassContext) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError(f"pass '{self.name}' does not implement run()")

    def check(self, graph: "Graph", ctx: PassContext) -> list[str]:
        """Extra preconditions; return human-readable problems (empty when the pass can run)."""
        return []

    # ------------------------------------------------------------ description
    @classmethod
    def summary(cls) -> str:
        """First paragraph of the class docstring, on one line."""
        doc = (cls.__doc__ or "").strip()
        return " ".join(doc.split("\n\n")[0].split()) if doc else ""

    @classmethod
    def options(cls) -> list[OptionInfo]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            out.append(OptionInfo(f.name, hints.get(f.name, f.type), default, f.metadata.get("doc", "")))
        return out

    def option_values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        """name(opt=value, ...) showing only options that differ from their defaults."""
        changed = [
            f"{o.name}={getattr(self, o.name)!r}" for o in self.options() if getattr(self, o.name) != o.default
        ]
        return f"{self.name}({', '.join(changed)})" if changed else self.name


def type_name(tp: Any) -> str:
    """Readable name of an option type: int, float, Literal['a', 'b'], tuple[str, ...]."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + "|".join(str(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_name(args[0])}"
        return "tuple"
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(type_name(a) for a in args) + " or none"
    return getattr(tp, "__name__", str(tp))


def coerce_option(tp: Any, value: Any, what: str = "option") -> Any:
    """Convert a value (often a string from the CLI) to an option's declared type.

    Raises ValueError with a message a user can act on.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce_option(a, value, what)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{what}: bad value {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ValueError(f"{what}: {value!r} is not one of {', '.join(map(str, allowed))}")
    if origin is tuple:
        args = typing.get_args(tp)
        elem = args[0] if args else str
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]") or text.startswith("(") and text.endswith(")"):
                text = text[1:-1]
            items: list[Any] = [s.strip() for s in text.replace(";", ",").split(",") if s.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        return tuple(coerce_option(elem, v, what) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "enabled"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "off", "0", "disabled"):
            return False
        raise ValueError(f"{what}: {value!r} is not a boolean (true/false)")
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{what}: {value!r} is not an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: {value!r} is not an integer") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: {value!r} is not a number") from None
    if tp is str:
        return str(value)
    return value
