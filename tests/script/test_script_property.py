"""Property tests: scripts generated from a grammar-shaped strategy parse, and print -> parse is identity."""
from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.script import ast
from npuc.script.parser import parse
from npuc.script.printer import print_script, print_value, quote

RESERVED = {"True", "False", "true", "false", "None"}

_FIRST = string.ascii_letters + "_"
_REST = string.ascii_letters + string.digits + "_"
_segment = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(_REST, max_size=5))
_more = st.text(_REST, min_size=1, max_size=4)


@st.composite
def plain_names(draw) -> str:
    head = draw(_segment)
    rest = draw(st.lists(st.tuples(st.sampled_from("-.@"), _more), max_size=2))
    text = head + "".join(sep + part for sep, part in rest)
    return text if text not in RESERVED else text + "_x"


@st.composite
def scoped_names(draw) -> str:
    return "/".join(draw(st.lists(plain_names(), min_size=2, max_size=3)))


@st.composite
def glob_patterns(draw) -> str:
    base = draw(st.one_of(plain_names(), scoped_names(), st.just("")))
    wildcard = draw(st.sampled_from(["*", "?", "[0-9]", "[abc]*", "[!x]"]))
    where = draw(st.integers(0, len(base)))
    text = base[:where] + wildcard + base[where:]
    # a wildcard right after '-', '.', '/' or '@' is fine; at the very start only * and ? are
    if text[0] == "[":
        text = "*" + text
    return text


names = plain_names().map(ast.Name)
scoped = scoped_names().map(ast.ScopedName)
globs = glob_patterns().map(ast.Glob)
ranges = st.one_of(names, scoped).map(ast.Range)
brace_lists = st.lists(st.one_of(names, scoped, globs, ranges), max_size=3).map(lambda xs: ast.BraceList(tuple(xs)))

units = st.text(string.ascii_letters + "%", min_size=1, max_size=3)
finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
scalars = st.one_of(
    st.integers(-(10**12), 10**12).map(ast.Int),
    finite_floats.map(ast.Float),
    st.tuples(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False)), units).map(
        lambda t: ast.NumberWithUnit(*t)
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8).map(ast.String),
    st.booleans().map(ast.Bool),
    st.just(ast.NoneValue()),
    names,
    scoped,
    globs,
    brace_lists,
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(lambda xs: ast.List(tuple(xs))), max_leaves=6)

keys = plain_names().filter(lambda s: all(c not in s for c in "-.@"))
args = st.one_of(values.map(ast.Arg), st.tuples(keys, values).map(lambda kv: ast.KwArg(*kv)))


@st.composite
def calls(draw) -> ast.Call:
    name = draw(keys)
    if draw(st.booleans()):
        name = draw(keys) + "." + name
    return ast.Call(name, tuple(draw(st.lists(args, max_size=4))))


targets = st.one_of(
    names,
    scoped,
    st.lists(st.one_of(names, scoped), min_size=2, max_size=3).map(lambda xs: ast.TupleTarget(tuple(xs))),
    st.lists(st.tuples(keys, values), max_size=2).map(
        lambda kvs: ast.DictTarget(tuple(ast.DictEntry(k, v) for k, v in kvs))
    ),
)
statements = st.one_of(calls().map(ast.Command), st.tuples(targets, calls()).map(lambda tc: ast.Assignment(*tc)))
scripts = st.lists(statements, max_size=5).map(lambda xs: ast.Script(tuple(xs)))

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scripts)
def test_print_then_parse_is_identity(script):
    text = print_script(script)
    parsed = parse(text, "gen.alls")
    assert ast.strip_positions(parsed.statements) == script.statements
    assert print_script(parsed) == text


# ---- the same ASTs written the way people write them: odd spacing, comments, CRLF, line breaks


@st.composite
def noisy_scripts(draw) -> tuple[ast.Script, str]:
    script = draw(scripts)
    inside = st.sampled_from(["", " ", "  ", "\n", "\n    ", "\t", " # note\n  ", "\r\n "])
    outside = st.sampled_from(["", " ", "\t"])

    def sep() -> str:
        return draw(inside)

    def comma_list(items: list[str]) -> str:
        body = ("," + sep()).join(items)
        if items and draw(st.booleans()):
            body += "," + sep()  # trailing comma
        return sep() + body + sep()

    def value(v: ast.Node) -> str:
        if isinstance(v, ast.List):
            return "[" + comma_list([value(i) for i in v.items]) + "]"
        if isinstance(v, ast.BraceList):
            return "{" + comma_list([value(i) for i in v.items]) + "}"
        if isinstance(v, ast.String) and "'" not in v.value and draw(st.booleans()):
            return "'" + quote(v.value)[1:-1].replace('\\"', '"') + "'"
        return print_value(v)

    def call(c: ast.Call) -> str:
        parts = [f"{a.key}{sep()}={sep()}{value(a.value)}" if isinstance(a, ast.KwArg) else value(a.value) for a in c.args]
        return c.name + draw(outside) + "(" + comma_list(parts) + ")"

    def target(t: ast.Node) -> str:
        if isinstance(t, ast.TupleTarget):
            return (draw(outside) + "," + draw(outside)).join(n.text for n in t.names)
        if isinstance(t, ast.DictTarget):
            return "{" + comma_list([f"{e.key}{sep()}:{sep()}{value(e.value)}" for e in t.entries]) + "}"
        return t.text

    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = []
    for s in script.statements:
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# comment", "   ", "\t# indented comment"])))
        text = call(s.call) if isinstance(s, ast.Command) else f"{target(s.target)}{draw(outside)}={draw(outside)}{call(s.call)}"
        lines.append(draw(outside) + text + draw(st.sampled_from(["", "  # trailing"])))
    body = newline.join(lines)
    if draw(st.booleans()):
        body += newline
    return script, body


@SETTINGS
@given(noisy_scripts())
def test_noisy_text_parses_to_the_same_ast(case):
    script, text = case
    parsed = parse(text, "noisy.alls")
    assert ast.strip_positions(parsed.statements) == script.statements
