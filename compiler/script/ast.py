"""AST of a model script: frozen dataclasses, each with its source span.

Every node carries a `Span` (file, line, column, end line, end column;
1-based, end column exclusive). Two ASTs of the same text parsed from
different places differ only in their spans: compare them with
`strip_positions`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Span:
    """Where a node is in the source (1-based line and column, end column exclusive)."""

    file: str = "<script>"
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NO_SPAN = Span("", 0, 0, 0, 0)


@dataclass(frozen=True)
class Node:
    """Base of every AST node."""

    span: Span = field(default=NO_SPAN, kw_only=True)

    @property
    def file(self) -> str:
        return self.span.file

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    @property
    def end_column(self) -> int:
        return self.span.end_column


# ---- values -----------------------------------------------------------------


@dataclass(frozen=True)
class Int(Node):
    """An integer literal: `8`, `-1`."""

    value: int


@dataclass(frozen=True)
class Float(Node):
    """A float literal: `0.5`, `.5`, `1e-5`."""

    value: float


@dataclass(frozen=True)
class NumberWithUnit(Node):
    """A number with a unit suffix: `25m`, `1.5GB`, `99%`."""

    value: int | float
    unit: str


@dataclass(frozen=True)
class String(Node):
    """A quoted string, single or double quotes; `value` is unescaped."""

    value: str


@dataclass(frozen=True)
class Bool(Node):
    """`True`, `False`, `true` or `false`."""

    value: bool


@dataclass(frozen=True)
class NoneValue(Node):
    """`None`."""


@dataclass(frozen=True)
class Name(Node):
    """A bare word: an enum value (`enabled`, `a16_w16`) or a layer name (`conv12`).

    Which one it is depends on the parameter it is bound to.
    """

    text: str


@dataclass(frozen=True)
class ScopedName(Node):
    """A name with a scope: `yolov5s/conv12`, `net/normalization1`."""

    text: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.text.split("/"))

    @property
    def tail(self) -> str:
        """The part after the last '/' (the name without its network scope)."""
        return self.text.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Glob(Node):
    """An fnmatch pattern: `conv*`, `conv[0-9]*`, `*`, `net/*`."""

    pattern: str


@dataclass(frozen=True)
class Range(Node):
    """`X...` inside braces: layer X and every layer after it in topological order."""

    start: Name | ScopedName


@dataclass(frozen=True)
class BraceList(Node):
    """A braced selector: `{conv*}`, `{conv1, conv5, fc1}`, `{Concat_155...}`, `{}`."""

    items: tuple[Name | ScopedName | Glob | Range, ...]


@dataclass(frozen=True)
class List(Node):
    """A bracket list: `[1, 2, 3]`, `[net/conv1, conv2]`, nested lists."""

    items: tuple["Value", ...]


Selector = Union[Name, ScopedName, Glob, Range, BraceList]
Value = Union[Int, Float, NumberWithUnit, String, Bool, NoneValue, Name, ScopedName, Glob, BraceList, List]

# ---- calls and statements -------------------------------------------------------


@dataclass(frozen=True)
class Arg(Node):
    """A positional argument."""

    value: Value


@dataclass(frozen=True)
class KwArg(Node):
    """A keyword argument `key=value`; `key_span` locates the key alone."""

    key: str
    value: Value
    key_span: Span = field(default=NO_SPAN, kw_only=True)


@dataclass(frozen=True)
class Call(Node):
    """`name(args...)`; the name may be dotted (`my_context_0.place`)."""

    name: str
    args: tuple[Arg | KwArg, ...] = ()
    name_span: Span = field(default=NO_SPAN, kw_only=True)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    @property
    def positional(self) -> tuple[Arg, ...]:
        return tuple(a for a in self.args if isinstance(a, Arg))

    @property
    def keywords(self) -> tuple[KwArg, ...]:
        return tuple(a for a in self.args if isinstance(a, KwArg))


@dataclass(frozen=True)
class TupleTarget(Node):
    """`a, b, c = ...`."""

    names: tuple[Name | ScopedName, ...]


@dataclass(frozen=True)
class DictEntry(Node):
    """`key: value` inside a dict target."""

    key: str
    value: Value


@dataclass(frozen=True)
class DictTarget(Node):
    """`{} = ...` or `{k: [a, b]} = ...`."""

    entries: tuple[DictEntry, ...]


Target = Union[Name, ScopedName, TupleTarget, DictTarget]


@dataclass(frozen=True)
class Command(Node):
    """A statement that is just a call: `quantization_param({conv*}, precision_mode=a16_w16)`."""

    call: Call


@dataclass(frozen=True)
class Assignment(Node):
    """`target = call(...)`."""

    target: Target
    call: Call


Statement = Union[Command, Assignment]


@dataclass(frozen=True)
class Script(Node):
    """A whole script: its statements in source order."""

    statements: tuple[Statement, ...]
    source: str = field(default="", compare=False, repr=False, kw_only=True)

    @property
    def lines(self) -> list[str]:
        """The source split into lines (for diagnostics)."""
        return self.source.splitlines()


def strip_positions(node):
    """Return a copy of `node` with every span (recursively) replaced by NO_SPAN."""
    if isinstance(node, tuple):
        return tuple(strip_positions(n) for n in node)
    if not isinstance(node, Node):
        return node
    changes = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Span):
            changes[f.name] = NO_SPAN
        elif isinstance(value, (Node, tuple)):
            changes[f.name] = strip_positions(value)
    return dataclasses.replace(node, **changes)


def statement_call(statement: Statement) -> Call:
    """The call of a statement (both kinds have one)."""
    return statement.call
