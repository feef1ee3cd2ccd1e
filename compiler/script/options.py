"""Option types of script commands, and conversion of AST values to Python values.

A command's positional parameters and keyword options each have an
`OptionType`. `convert` checks an AST value against it and returns the
Python value (layer selectors are returned as a `LayerSelection`, resolved
against a model's layers later by the binder).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from npuc.script import ast
from npuc.script.diagnostics import did_you_mean
from npuc.script.printer import print_value


class Kind(str, Enum):
    """What an option holds."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    ENUM = "enum"
    LIST = "list"
    LAYERS = "layers"
    TENSOR = "tensor"
    PATH = "path"
    ANY = "any"


@dataclass(frozen=True)
class OptionType:
    """The type of one option: a kind plus its constraints."""

    kind: Kind
    choices: tuple[Any, ...] = ()  # ENUM: the allowed values
    item: "OptionType | None" = None  # LIST: the type of each item
    length: int | None = None  # LIST: exact length, if fixed
    minimum: float | None = None  # INT/FLOAT: inclusive bounds
    maximum: float | None = None
    min_exclusive: bool = False  # FLOAT: minimum itself not allowed (e.g. > 0)
    nullable: bool = False  # `None` is accepted

    def describe(self) -> str:
        """Short human text, used in errors and in the docs: `int >= 1`, `one of a|b`."""
        if self.kind is Kind.ENUM:
            text = "one of " + "|".join(str(c) for c in self.choices)
        elif self.kind is Kind.LIST:
            inner = self.item.describe() if self.item else "any"
            text = f"list of {self.length} × {inner}" if self.length else f"list of {inner}"
        elif self.kind is Kind.LAYERS:
            text = "layer selector"
        elif self.kind is Kind.TENSOR:
            text = "tensor name"
        else:
            text = self.kind.value
        if self.minimum is not None and self.maximum is not None:
            lo = "(" if self.min_exclusive else "["
            text += f" in {lo}{_num(self.minimum)}, {_num(self.maximum)}]"
        elif self.minimum is not None:
            text += f" {'>' if self.min_exclusive else '>='} {_num(self.minimum)}"
        elif self.maximum is not None:
            text += f" <= {_num(self.maximum)}"
        if self.nullable:
            text += " or None"
        return text

    def with_nullable(self) -> "OptionType":
        return OptionType(
            self.kind, self.choices, self.item, self.length, self.minimum, self.maximum, self.min_exclusive, True
        )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ---- constructors -------------------------------------------------------------------

INT = OptionType(Kind.INT)
FLOAT = OptionType(Kind.FLOAT)
BOOL = OptionType(Kind.BOOL)
STR = OptionType(Kind.STR)
PATH = OptionType(Kind.PATH)
LAYERS = OptionType(Kind.LAYERS)
TENSOR = OptionType(Kind.TENSOR)
ANY = OptionType(Kind.ANY)


def enum(*choices: Any) -> OptionType:
    """One of the given values (bare words or strings in a script)."""
    return OptionType(Kind.ENUM, choices=tuple(choices))


def int_in(minimum: int | None = None, maximum: int | None = None) -> OptionType:
    """An int within inclusive bounds."""
    return OptionType(Kind.INT, minimum=minimum, maximum=maximum)


def float_in(minimum: float | None = None, maximum: float | None = None, min_exclusive: bool = False) -> OptionType:
    """A float within bounds (minimum exclusive if asked)."""
    return OptionType(Kind.FLOAT, minimum=minimum, maximum=maximum, min_exclusive=min_exclusive)


def list_of(item: OptionType, length: int | None = None) -> OptionType:
    """A bracket list whose items all have type `item`."""
    return OptionType(Kind.LIST, item=item, length=length)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One positional parameter or keyword option of a command."""

    name: str
    type: OptionType
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# ---- conversion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSelection:
    """A converted layer selector: the selector items, resolved later against a model."""

    items: tuple[ast.Node, ...]
    text: str
    span: ast.Span = field(default=ast.NO_SPAN, compare=False)

    def __str__(self) -> str:
        return self.text


class OptionValueError(Exception):
    """A value does not fit its option type; `span` locates the offending value."""

    def __init__(self, message: str, span: ast.Span) -> None:
        super().__init__(message)
        self.message = message
        self.span = span


_LAYER_ITEMS = (ast.Name, ast.ScopedName, ast.Glob, ast.Range)
_ON_WORDS = {"enabled": True, "disabled": False, "yes": True, "no": False, "on": True, "off": False}


def describe_value(node: ast.Node) -> str:
    """How an error message names a value: `the string "eight"`, `the list [1, 2]`."""
    text = print_value(node)
    kind = {
        ast.String: "the string",
        ast.Int: "the int",
        ast.Float: "the float",
        ast.NumberWithUnit: "the number with unit",
        ast.Bool: "the bool",
        ast.List: "the list",
        ast.BraceList: "the selector",
        ast.Glob: "the pattern",
    }.get(type(node), "")
    return f"{kind} {text}" if kind else f"'{text}'"


def convert(node: ast.Node, t: OptionType, base_dir: Path | None = None) -> Any:
    """Check `node` against `t` and return its Python value; raise OptionValueError."""
    if isinstance(node, ast.NoneValue):
        if t.nullable or t.kind is Kind.ANY:
            return None
        raise OptionValueError(f"expected {t.describe()}, got None", node.span)
    converter = _CONVERTERS[t.kind]
    return converter(node, t, base_dir)


def _fail(node: ast.Node, t: OptionType) -> OptionValueError:
    return OptionValueError(f"expected {t.describe()}, got {describe_value(node)}", node.span)


def _check_bounds(value: float, node: ast.Node, t: OptionType) -> None:
    low_bad = t.minimum is not None and (value <= t.minimum if t.min_exclusive else value < t.minimum)
    high_bad = t.maximum is not None and value > t.maximum
    if low_bad or high_bad:
        raise OptionValueError(f"{print_value(node)} is out of range: expected {t.describe()}", node.span)


def _int(node, t, base_dir):
    if not isinstance(node, ast.Int):
        if isinstance(node, ast.Float) and float(node.value).is_integer():
            raise OptionValueError(f"expected {t.describe()}, got the float {print_value(node)} (write {int(node.value)})", node.span)
        raise _fail(node, t)
    _check_bounds(node.value, node, t)
    return node.value


def _float(node, t, base_dir):
    if not isinstance(node, (ast.Int, ast.Float)):
        raise _fail(node, t)
    value = float(node.value)
    if not math.isfinite(value):
        raise OptionValueError(f"expected a finite {t.describe()}, got {print_value(node)}", node.span)
    _check_bounds(value, node, t)
    return value


def _bool(node, t, base_dir):
    if isinstance(node, ast.Bool):
        return node.value
    if isinstance(node, ast.Name) and node.text.lower() in _ON_WORDS:
        return _ON_WORDS[node.text.lower()]
    raise _fail(node, t)


def _str(node, t, base_dir):
    if isinstance(node, ast.String):
        return node.value
    if isinstance(node, (ast.Name, ast.ScopedName)):
        return node.text
    if isinstance(node, ast.Glob):
        return node.pattern
    raise _fail(node, t)


def _path(node, t, base_dir):
    text = _str(node, t, base_dir)
    if not text:
        raise OptionValueError("expected a path, got an empty string", node.span)
    p = Path(text).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p  # relative paths are relative to the script, not the working directory
    return str(p)


def _enum(node, t, base_dir):
    if isinstance(node, (ast.Name, ast.String)):
        word = node.text if isinstance(node, ast.Name) else node.value
    elif isinstance(node, (ast.Int, ast.Bool)):
        word = node.value
    else:
        raise _fail(node, t)
    if word in t.choices:
        return word
    if isinstance(word, str):
        for choice in t.choices:
            if isinstance(choice, str) and choice.lower() == word.lower():
                return choice  # SPATIAL and spatial are the same enum value
    text_choices = [str(c) for c in t.choices]
    hint = did_you_mean(str(word), text_choices)
    raise OptionValueError(f"invalid value '{word}': expected one of {', '.join(text_choices)}{hint}", node.span)


def _list(node, t, base_dir):
    if not isinstance(node, ast.List):
        raise _fail(node, t)
    if t.length is not None and len(node.items) != t.length:
        raise OptionValueError(f"expected a list of {t.length} items, got {len(node.items)}", node.span)
    item_type = t.item or ANY
    return [convert(item, item_type, base_dir) for item in node.items]


def _layers(node, t, base_dir):
    items: list[ast.Node] = []
    _collect_layer_items(node, items, top=True)
    return LayerSelection(tuple(items), print_value(node), node.span)


def _collect_layer_items(node: ast.Node, out: list[ast.Node], top: bool) -> None:
    if isinstance(node, _LAYER_ITEMS):
        out.append(node)
    elif isinstance(node, ast.String):
        out.append(ast.Name(node.value, span=node.span))
    elif isinstance(node, (ast.BraceList, ast.List)):
        for item in node.items:
            _collect_layer_items(item, out, top=False)
    else:
        raise OptionValueError(f"expected a layer selector, got {describe_value(node)}", node.span)


def _tensor(node, t, base_dir):
    return _str(node, t, base_dir)


def _any(node, t, base_dir):
    if isinstance(node, (ast.Int, ast.Float, ast.Bool)):
        return node.value
    if isinstance(node, ast.String):
        return node.value
    if isinstance(node, ast.List):
        return [_any(i, t, base_dir) for i in node.items]
    return print_value(node)


_CONVERTERS = {
    Kind.INT: _int,
    Kind.FLOAT: _float,
    Kind.BOOL: _bool,
    Kind.STR: _str,
    Kind.PATH: _path,
    Kind.ENUM: _enum,
    Kind.LIST: _list,
    Kind.LAYERS: _layers,
    Kind.TENSOR: _tensor,
    Kind.ANY: _any,
}
