"""Parse model scripts (.alls) into the AST with the lark grammar in npuc.grammar."""
from __future__ import annotations

import functools
import importlib.resources
import logging
import re
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from npuc.errors import ScriptError
from npuc.script import ast
from npuc.script.diagnostics import DiagnosticSink
from npuc.script.postlex import BracketPostLex
from npuc.script.recovery import split_statements

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z%]*)$")
_GLOB_CHARS = frozenset("*?[")
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_TERMINAL_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "ELLIPSIS": "'...'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COLON": "':'",
    "_NL": "end of line",
    "$END": "end of file",
}


@functools.cache
def grammar_text() -> str:
    """The grammar source, read once from the installed npuc.grammar package."""
    return importlib.resources.files("npuc.grammar").joinpath("alls.lark").read_text(encoding="utf-8")


@functools.cache
def _lark() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        postlex=BracketPostLex(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse(text: str, file: str = "<script>") -> ast.Script:
    """Parse script text. Raises ScriptDiagnosticError listing every syntax error."""
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 BOM written by some Windows editors
    sink = DiagnosticSink(text)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput:
        _report_all_syntax_errors(text, file, sink)
        sink.raise_if_errors()
        raise  # pragma: no cover - recovery always finds the error it was sent for
    statements = _ToAst(file, sink).transform(tree)
    sink.raise_if_errors()
    return ast.Script(tuple(statements), span=ast.Span(file, 1, 1, max(text.count("\n"), 1), 1), source=text)


def parse_file(path: str | Path) -> ast.Script:
    """Read and parse a script file (UTF-8; CRLF or LF line endings)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScriptError(f"cannot read script {str(p)!r}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{p}: not a UTF-8 text file (byte {exc.start}: {data[exc.start]:#04x})") from None
    return parse(text, str(path))


# ---- tree -> AST -----------------------------------------------------------------


def _tok_span(file: str, tok: Token) -> ast.Span:
    return ast.Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _meta_span(file: str, meta) -> ast.Span:
    if getattr(meta, "empty", True):
        return ast.Span(file, 0, 0, 0, 0)
    return ast.Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def unescape(body: str) -> str:
    """Undo backslash escapes; an unknown escape keeps its backslash (`C:\\data`)."""
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def number_node(text: str, span: ast.Span) -> ast.Int | ast.Float | ast.NumberWithUnit:
    """Classify a NUMBER token's text."""
    m = _NUMBER.match(text)
    if m is None:  # pragma: no cover - the terminal's regex guarantees the shape
        raise ValueError(f"not a number: {text!r}")
    digits, unit = m.groups()
    is_float = any(c in digits for c in ".eE")
    value: int | float = float(digits) if is_float else int(digits)
    if unit:
        return ast.NumberWithUnit(value, unit, span=span)
    return ast.Float(value, span=span) if is_float else ast.Int(value, span=span)


def word_node(text: str, span: ast.Span) -> ast.Value:
    """Classify a bare word: None, a bool, a glob, a scoped name or a plain name."""
    if text == "None":
        return ast.NoneValue(span=span)
    if text in ("True", "true"):
        return ast.Bool(True, span=span)
    if text in ("False", "false"):
        return ast.Bool(False, span=span)
    return selector_node(text, span)


def selector_node(text: str, span: ast.Span) -> ast.Name | ast.ScopedName | ast.Glob:
    """Classify a word used as a layer selector."""
    if any(c in _GLOB_CHARS for c in text):
        return ast.Glob(text, span=span)
    if "/" in text:
        return ast.ScopedName(text, span=span)
    return ast.Name(text, span=span)


@v_args(meta=True)
class _ToAst(Transformer):
    """Turns the lark tree into AST nodes; semantic syntax errors go to the sink."""

    def __init__(self, file: str, sink: DiagnosticSink) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.sink = sink

    def _span(self, meta) -> ast.Span:
        return _meta_span(self.file, meta)

    def start(self, meta, children):
        return [c for c in children if c is not None]

    def command(self, meta, children):
        (call,) = children
        return ast.Command(call, span=self._span(meta))

    def assignment(self, meta, children):
        target, call = children
        return ast.Assignment(target, call, span=self._span(meta))

    def call(self, meta, children):
        name_tok, *args = children
        span = _tok_span(self.file, name_tok)
        name = str(name_tok)
        if any(c in _GLOB_CHARS for c in name) or "/" in name:
            self.sink.error(f"'{name}' is not a valid command name", span)
        return ast.Call(name, tuple(args), span=self._span(meta), name_span=span)

    def posarg(self, meta, children):
        return ast.Arg(children[0], span=self._span(meta))

    def kwarg(self, meta, children):
        key, value = children
        return ast.KwArg(str(key), value, span=self._span(meta), key_span=_tok_span(self.file, key))

    def _target_name(self, tok: Token) -> ast.Name | ast.ScopedName:
        node = selector_node(str(tok), _tok_span(self.file, tok))
        if isinstance(node, ast.Glob):
            self.sink.error(f"cannot assign to the pattern '{tok}'", node.span)
            return ast.Name(str(tok), span=node.span)
        return node

    def name_target(self, meta, children):
        return self._target_name(children[0])

    def tuple_target(self, meta, children):
        return ast.TupleTarget(tuple(self._target_name(t) for t in children), span=self._span(meta))

    def dict_target(self, meta, children):
        return ast.DictTarget(tuple(children), span=self._span(meta))

    def dict_entry(self, meta, children):
        key, value = children
        return ast.DictEntry(str(key), value, span=self._span(meta))

    def number(self, meta, children):
        tok = children[0]
        return number_node(str(tok), _tok_span(self.file, tok))

    def string(self, meta, children):
        tok = children[0]
        return ast.String(unescape(str(tok)[1:-1]), span=_tok_span(self.file, tok))

    def word(self, meta, children):
        tok = children[0]
        return word_node(str(tok), _tok_span(self.file, tok))

    def selector_word(self, meta, children):
        tok = children[0]
        return selector_node(str(tok), _tok_span(self.file, tok))

    def range(self, meta, children):
        tok = children[0]
        start = selector_node(str(tok), _tok_span(self.file, tok))
        if isinstance(start, ast.Glob):
            self.sink.error(f"a range must start at one layer, not at the pattern '{tok}'", start.span)
            start = ast.Name(str(tok), span=start.span)
        return ast.Range(start, span=self._span(meta))

    def list(self, meta, children):
        return ast.List(tuple(children), span=self._span(meta))

    def braces(self, meta, children):
        return ast.BraceList(tuple(children), span=self._span(meta))


# ---- syntax errors -----------------------------------------------------------------


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    return f"'{tok}'"


def _expected(expected) -> str:
    names = sorted({_TERMINAL_NAMES.get(t, f"'{t}'") for t in expected if not t.startswith("__")})
    if not names:
        return ""
    if len(names) > 6:
        return ""
    return "; expected " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1])


def _lark_error(exc: UnexpectedInput, file: str, line_offset: int, sink: DiagnosticSink) -> None:
    """Turn one lark exception into a diagnostic."""
    if isinstance(exc, UnexpectedCharacters):
        line = exc.line + line_offset
        sink.error(f"unexpected character {exc.char!r}", ast.Span(file, line, exc.column, line, exc.column + 1))
        return
    if isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        tok = exc.token
        line = (tok.line or 1) + line_offset
        column = tok.column or 1
        end = tok.end_column if tok.end_column and tok.end_line == tok.line else column + 1
        expected = getattr(exc, "expected", ()) or ()
        interactive = getattr(exc, "interactive_parser", None)
        if interactive is not None:
            try:  # exact for this state, where exc.expected has LALR-merged extras
                expected = interactive.accepts()
            except Exception:  # pragma: no cover - keep the coarser set
                log.debug("accepts() failed", exc_info=True)
        sink.error(
            f"unexpected {_describe_token(tok)}{_expected(expected)}",
            ast.Span(file, line, column, line, end),
        )
        return
    sink.error(str(exc).splitlines()[0], ast.Span(file, (exc.line or 1) + line_offset, exc.column or 1))  # pragma: no cover


def _report_all_syntax_errors(text: str, file: str, sink: DiagnosticSink) -> None:
    """Parse statement by statement so every broken statement gets its own error."""
    lines = text.split("\n")
    for chunk in split_statements(text):
        if chunk.problems:
            for message, line, column, width in chunk.problems:
                sink.error(message, ast.Span(file, line, column, line, column + max(width, 1)))
            continue
        # Padding with newlines keeps lark's line numbers those of the whole file.
        piece = "\n" * (chunk.first_line - 1) + "\n".join(lines[chunk.first_line - 1 : chunk.last_line])
        try:
            tree = _lark().parse(piece)
        except UnexpectedInput as exc:
            _lark_error(exc, file, 0, sink)
            continue
        except VisitError as exc:  # pragma: no cover - no callbacks during parse
            raise exc.orig_exc
        _ToAst(file, sink).transform(tree)  # semantic syntax errors (e.g. a glob as a target)
    if not sink.errors:  # pragma: no cover - a safety net: report lark's own first error
        try:
            _lark().parse(text)
        except UnexpectedInput as exc:
            _lark_error(exc, file, 0, sink)


