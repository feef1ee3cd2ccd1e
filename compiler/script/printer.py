"""Print an AST back as canonical script text.

One statement per line, `name(a, b, key=value)` with no trailing comma,
double-quoted strings, `repr` floats. Comments are not part of the AST and
are not printed. `parse(print_script(s))` equals `s` modulo positions, and
printing is a fixed point: `print_script(parse(print_script(s))) == print_script(s)`.
"""
from __future__ import annotations

import math
from functools import singledispatch

from npuc.script import ast

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def print_script(script: ast.Script) -> str:
    """The canonical text of a whole script (ends with a newline unless empty)."""
    return "".join(print_statement(s) + "\n" for s in script.statements)


def print_statement(statement: ast.Statement) -> str:
    """One statement, without its newline."""
    if isinstance(statement, ast.Assignment):
        return f"{print_target(statement.target)} = {print_call(statement.call)}"
    return print_call(statement.call)


def print_call(call: ast.Call) -> str:
    """`name(args)`."""
    return f"{call.name}({', '.join(print_arg(a) for a in call.args)})"


def print_arg(arg: ast.Arg | ast.KwArg) -> str:
    """`value` or `key=value`."""
    if isinstance(arg, ast.KwArg):
        return f"{arg.key}={print_value(arg.value)}"
    return print_value(arg.value)


def print_target(target: ast.Target) -> str:
    """An assignment target."""
    if isinstance(target, ast.TupleTarget):
        return ", ".join(n.text for n in target.names)
    if isinstance(target, ast.DictTarget):
        return "{" + ", ".join(f"{e.key}: {print_value(e.value)}" for e in target.entries) + "}"
    return target.text


def format_number(value: int | float) -> str:
    """An int as digits, a float as its shortest round-tripping repr."""
    if isinstance(value, bool):  # pragma: no cover - bools are never numbers in the AST
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def quote(text: str) -> str:
    """A double-quoted string literal for `text`."""
    return '"' + "".join(_STRING_ESCAPES.get(c, c) for c in text) + '"'


@singledispatch
def print_value(value: ast.Node) -> str:
    """The text of one value or selector."""
    raise TypeError(f"cannot print {type(value).__name__}")


@print_value.register
def _(value: ast.Int) -> str:
    return format_number(value.value)


@print_value.register
def _(value: ast.Float) -> str:
    return format_number(float(value.value))


@print_value.register
def _(value: ast.NumberWithUnit) -> str:
    return format_number(value.value) + value.unit


@print_value.register
def _(value: ast.String) -> str:
    return quote(value.value)


@print_value.register
def _(value: ast.Bool) -> str:
    return "True" if value.value else "False"


@print_value.register
def _(value: ast.NoneValue) -> str:
    return "None"


@print_value.register
def _(value: ast.Name) -> str:
    return value.text


@print_value.register
def _(value: ast.ScopedName) -> str:
    return value.text


@print_value.register
def _(value: ast.Glob) -> str:
    return value.pattern


@print_value.register
def _(value: ast.Range) -> str:
    return value.start.text + "..."


@print_value.register
def _(value: ast.BraceList) -> str:
    return "{" + ", ".join(print_value(i) for i in value.items) + "}"


@print_value.register
def _(value: ast.List) -> str:
    return "[" + ", ".join(print_value(i) for i in value.items) + "]"
