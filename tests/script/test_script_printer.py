"""The printer: golden output for the corpus, round trip and fixed point."""
from __future__ import annotations

import dataclasses

import pytest

from npuc.script import ast
from npuc.script.parser import parse, parse_file
from npuc.script.printer import print_script

from script_testing import CORPUS, GOLDEN, UPDATE_GOLDEN


def dump(node, indent: int = 0) -> str:
    """A stable, position-free, indented text of an AST (for the AST golden files)."""
    pad = "  " * indent
    if isinstance(node, tuple):
        if not node:
            return pad + "()"
        return "\n".join(dump(n, indent) for n in node)
    if not isinstance(node, ast.Node):
        return pad + repr(node)
    fields = [f for f in dataclasses.fields(node) if not isinstance(getattr(node, f.name), ast.Span) and f.name != "source"]
    simple = [f"{f.name}={getattr(node, f.name)!r}" for f in fields if not isinstance(getattr(node, f.name), (ast.Node, tuple))]
    lines = [pad + type(node).__name__ + (" " + " ".join(simple) if simple else "")]
    for f in fields:
        value = getattr(node, f.name)
        if isinstance(value, (ast.Node, tuple)):
            lines.append(f"{pad}  .{f.name}:")
            lines.append(dump(value, indent + 2))
    return "\n".join(lines)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with NPUC_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_printer_golden(path):
    check_golden(path.stem + ".alls.txt", print_script(parse_file(path)))


@pytest.mark.parametrize("stem", ["01_spec_example", "18_dict_target", "26_range", "27_ints_floats", "32_nested_lists"])
def test_ast_golden(stem):
    script = parse_file(GOLDEN.parent / "corpus" / f"{stem}.alls")
    check_golden(stem + ".ast.txt", dump(script.statements) + "\n")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_round_trip_and_fixed_point(path):
    first = parse_file(path)
    printed = print_script(first)
    second = parse(printed, "printed.alls")
    assert ast.strip_positions(second.statements) == ast.strip_positions(first.statements)
    assert print_script(second) == printed


def test_strip_positions_differs_only_in_spans():
    a = parse("f(x, k=[1, 2])", "a.alls")
    b = parse("\n\n   f( x ,\n k = [1,2] )", "b.alls")
    assert a.statements != b.statements
    assert ast.strip_positions(a.statements) == ast.strip_positions(b.statements)


@pytest.mark.parametrize(
    "text, printed",
    [
        ("f(1e-5)", "f(1e-05)"),
        ("f(.5, 5.)", "f(0.5, 5.0)"),
        ("f(1e999)", "f(1e999)"),
        ("f('it\\'s')", 'f("it\'s")'),
        ('f("tab\\there")', 'f("tab\\there")'),
        ("f(true, false, None)", "f(True, False, None)"),
        ("{ k : [a,b] , j: c } = g( )", "{k: [a, b], j: c} = g()"),
        ("a ,b = g()", "a, b = g()"),
        ("f({x ...}, [y])", "f({x...}, [y])"),
    ],
)
def test_canonical_forms(text, printed):
    assert print_script(parse(text)) == printed + "\n"
