"""Post-lexer for the .alls grammar: newlines are statement ends only outside brackets."""
from __future__ import annotations

from collections.abc import Iterator

from lark import Token

OPENERS = frozenset({"LPAR", "LSQB", "LBRACE"})
CLOSERS = frozenset({"RPAR", "RSQB", "RBRACE"})
NEWLINE = "_NL"


class BracketPostLex:
    """Drop newlines inside (), [] and {}; collapse runs of newlines; end with one.

    This is what lets a call span several lines with any indentation, and
    lets the grammar accept a script with or without a final newline, with
    leading blank lines or comment-only lines, without ambiguity.
    """

    always_accept = (NEWLINE,)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        last: Token | None = None
        after_newline = True  # nothing emitted yet counts as "at a line start"
        for tok in stream:
            kind = tok.type
            if kind == NEWLINE:
                if depth == 0 and not after_newline:
                    after_newline = True
                    yield tok
                continue
            if kind in OPENERS:
                depth += 1
            elif kind in CLOSERS and depth:
                depth -= 1
            after_newline = False
            last = tok
            yield tok
        if not after_newline and last is not None:
            yield Token.new_borrow_pos(NEWLINE, "", last)
