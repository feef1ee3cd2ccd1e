"""Parsing: every surface form of the script language, as written in the wild."""
from __future__ import annotations

import pytest

from npuc.script import ast
from npuc.script.parser import parse, parse_file

from script_testing import CORPUS


def one(text: str) -> ast.Statement:
    script = parse(text, "t.alls")
    assert len(script.statements) == 1
    return script.statements[0]


def args_of(text: str) -> tuple:
    return one(text).call.args


def value_of(text: str) -> ast.Node:
    """The value of the only argument of `f(<text>)`."""
    (arg,) = args_of(f"f({text})")
    return ast.strip_positions(arg.value)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_script_parses(path):
    script = parse_file(path)
    assert script.span.file == str(path)
    for statement in script.statements:
        assert statement.span.line >= 1 and statement.span.column >= 1


def test_command_with_positional_and_keyword_args():
    call = one("model_optimization_config(calibration, batch_size=8, calibset_size=64)").call
    assert call.name == "model_optimization_config"
    assert ast.strip_positions(call.args) == (
        ast.Arg(ast.Name("calibration")),
        ast.KwArg("batch_size", ast.Int(8)),
        ast.KwArg("calibset_size", ast.Int(64)),
    )


@pytest.mark.parametrize("text", ["f()", "f( )", "f(\n)"])
def test_no_arguments(text):
    assert one(text).call.args == ()


def test_spaces_around_equals_and_trailing_comma():
    a = ast.strip_positions(one("f(a , k = 1 ,)").call)
    b = ast.strip_positions(one("f(a, k=1)").call)
    assert a == b


def test_dotted_command_name():
    call = one("my_context_0.place(0, [conv1, conv2])").call
    assert call.name == "my_context_0.place"
    assert call.parts == ("my_context_0", "place")


def test_comments_blank_lines_crlf_and_no_final_newline():
    text = "# head\r\n\r\nf(1)  # trailing\r\n   # indented\r\n\r\ng(2)"
    script = parse(text)
    assert [s.call.name for s in script.statements] == ["f", "g"]
    assert [s.span.line for s in script.statements] == [3, 6]


def test_multiline_call_with_any_indentation():
    text = "f(\n    a,\n  b=[1,\n2],\n        c={x,\n y},\n)\ng()\n"
    script = parse(text)
    assert [s.call.name for s in script.statements] == ["f", "g"]
    f = script.statements[0]
    assert (f.span.line, f.span.end_line) == (1, 7)


def test_line_continuation():
    assert len(parse("f(1, \\\n  2)\ng()\n").statements) == 2


def test_assignment_targets():
    assert ast.strip_positions(one("normalization1 = normalization([1], [2])").target) == ast.Name("normalization1")
    assert ast.strip_positions(one("net/normalization1 = normalization([1], [2])").target) == ast.ScopedName(
        "net/normalization1"
    )
    assert ast.strip_positions(one("a, b, c = defuse(x, 2)").target) == ast.TupleTarget(
        (ast.Name("a"), ast.Name("b"), ast.Name("c"))
    )
    assert ast.strip_positions(one("{} = defuse_block(matmul1, defuse_count=4)").target) == ast.DictTarget(())
    assert ast.strip_positions(one("{k: [a, b]} = f()").target) == ast.DictTarget(
        (ast.DictEntry("k", ast.List((ast.Name("a"), ast.Name("b")))),)
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("conv12", ast.Name("conv12")),
        ("yolov5s/conv12", ast.ScopedName("yolov5s/conv12")),
        ("conv36_d0-2", ast.Name("conv36_d0-2")),
        ("regnetx_1.6gf_fpn/conv4", ast.ScopedName("regnetx_1.6gf_fpn/conv4")),
        ("Conv@12", ast.Name("Conv@12")),
        ("output_layer*", ast.Glob("output_layer*")),
        ("{conv*}", ast.BraceList((ast.Glob("conv*"),))),
        ("{*}", ast.BraceList((ast.Glob("*"),))),
        ("{conv[0-9]*}", ast.BraceList((ast.Glob("conv[0-9]*"),))),
        ("{conv1, conv5, fc1}", ast.BraceList((ast.Name("conv1"), ast.Name("conv5"), ast.Name("fc1")))),
        ("{Concat_155...}", ast.BraceList((ast.Range(ast.Name("Concat_155")),))),
        ("{net/conv4 ...}", ast.BraceList((ast.Range(ast.ScopedName("net/conv4")),))),
        ("{}", ast.BraceList(())),
        ("[net/conv1, conv2]", ast.List((ast.ScopedName("net/conv1"), ast.Name("conv2")))),
    ],
)
def test_layer_selectors(text, expected):
    assert value_of(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8", ast.Int(8)),
        ("-1", ast.Int(-1)),
        ("+3", ast.Int(3)),
        ("0.5", ast.Float(0.5)),
        (".5", ast.Float(0.5)),
        ("-.25", ast.Float(-0.25)),
        ("1e-5", ast.Float(1e-5)),
        ("-2.5E3", ast.Float(-2500.0)),
        ("5.", ast.Float(5.0)),
        ("25m", ast.NumberWithUnit(25, "m")),
        ("1.5GB", ast.NumberWithUnit(1.5, "GB")),
        ("99%", ast.NumberWithUnit(99, "%")),
        ('"double"', ast.String("double")),
        ("'single'", ast.String("single")),
        (r'"a\"b\\c"', ast.String('a"b\\c')),
        (r'"C:\data"', ast.String("C:\\data")),
        ("''", ast.String("")),
        ("enabled", ast.Name("enabled")),
        ("a16_w16", ast.Name("a16_w16")),
        ("SPATIAL", ast.Name("SPATIAL")),
        ("None", ast.NoneValue()),
        ("True", ast.Bool(True)),
        ("False", ast.Bool(False)),
        ("true", ast.Bool(True)),
        ("false", ast.Bool(False)),
        ("[1, [2, 3], []]", ast.List((ast.Int(1), ast.List((ast.Int(2), ast.Int(3))), ast.List(())))),
        ("[1, 2,]", ast.List((ast.Int(1), ast.Int(2)))),
    ],
)
def test_values(text, expected):
    assert value_of(text) == expected


def test_hash_inside_string_is_not_a_comment():
    assert value_of('"a#b"') == ast.String("a#b")


def test_positions_of_tokens():
    call = one("quantization_param({conv*}, precision_mode=a16_w16)").call
    assert (call.name_span.line, call.name_span.column, call.name_span.end_column) == (1, 1, 19)
    selector = call.args[0].value
    assert (selector.column, selector.end_column) == (20, 27)
    kw = call.args[1]
    assert (kw.key_span.column, kw.key_span.end_column) == (29, 43)
    assert (kw.value.column, kw.value.end_column) == (44, 51)


def test_utf8_bom_is_skipped():
    assert len(parse("\ufefff(1)\n").statements) == 1


def test_parse_file_errors(tmp_path):
    from npuc.errors import ScriptError

    with pytest.raises(ScriptError, match="cannot read script"):
        parse_file(tmp_path / "missing.alls")
    bad = tmp_path / "latin1.alls"
    bad.write_bytes(b"f(\xe9)\n")
    with pytest.raises(ScriptError, match="not a UTF-8 text file"):
        parse_file(bad)


def test_grammar_is_loaded_once():
    from npuc.script import parser

    assert parser._lark() is parser._lark()
    assert "start:" in parser.grammar_text()
