"""Diagnostics: `file:line:col: severity: message`, the source line, a caret, a hint."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from npuc.errors import ScriptError
from npuc.script.ast import Span

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a script, located by a span."""

    severity: Severity
    message: str
    span: Span
    source_line: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, show_source: bool = True) -> str:
        """Render as the compiler-style three lines (location, source, caret)."""
        head = f"{self.span.file}:{self.span.line}:{self.span.column}: {self.severity}: {self.message}"
        if not show_source or not self.source_line or self.span.line <= 0:
            return head
        return f"{head}\n{self.source_line}\n{caret_line(self.source_line, self.span)}"

    def __str__(self) -> str:
        return self.format()


def caret_line(source_line: str, span: Span) -> str:
    """`^~~~` under the span's first line: tabs are kept so the caret lines up."""
    start = max(span.column - 1, 0)
    if span.end_line == span.line and span.end_column > span.column:
        end = min(span.end_column - 1, len(source_line))
    else:
        end = len(source_line.rstrip())
    width = max(end - start, 1)
    pad = "".join("\t" if ch == "\t" else " " for ch in source_line[:start])
    return pad + "^" + "~" * (width - 1)


def did_you_mean(word: str, candidates: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """`; did you mean 'x'?` for the closest candidate, or '' when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=n, cutoff=cutoff)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class DiagnosticSink:
    """Collects diagnostics for one script so they can all be reported at once."""

    def __init__(self, source: str = "") -> None:
        self._lines = source.splitlines()
        self.items: list[Diagnostic] = []

    def _line(self, span: Span) -> str:
        if 1 <= span.line <= len(self._lines):
            return self._lines[span.line - 1]
        return ""

    def error(self, message: str, span: Span) -> None:
        self.items.append(Diagnostic("error", message, span, self._line(span)))

    def warning(self, message: str, span: Span) -> None:
        self.items.append(Diagnostic("warning", message, span, self._line(span)))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    def raise_if_errors(self, what: str = "script") -> None:
        """Raise ScriptDiagnosticError listing every error (warnings ride along)."""
        if self.errors:
            raise ScriptDiagnosticError(self.items, what)


class ScriptDiagnosticError(ScriptError):
    """A script has errors; `diagnostics` holds all of them (and the warnings)."""

    def __init__(self, diagnostics: Sequence[Diagnostic], what: str = "script") -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        files = sorted({d.span.file for d in errors})
        where = files[0] if len(files) == 1 else what
        head = f"{where}: {len(errors)} error{'s' if len(errors) != 1 else ''}"
        super().__init__(head + "\n" + "\n".join(d.format() for d in errors))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]
