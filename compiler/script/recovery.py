"""Error recovery: split a script into statements without the grammar.

Used only after a parse failed, so every broken statement can be reported at
once: each chunk is parsed on its own, and bracket and string problems are
found here first, where they can be described precisely (an unterminated
list points at its '[', not at whatever token happened to follow it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}
_WHAT = {"(": "call", "[": "list", "{": "brace selector"}
_WORD = r"[A-Za-z_][\w./@\-]*"
# Lines that can only be the start of a new statement, at column 1.
_STATEMENT_START = re.compile(
    rf"^(?:{_WORD}\s*\(|{_WORD}(?:\s*,\s*{_WORD})*\s*,?\s*=(?!=)|\{{[^=]*\}}\s*=(?!=))"
)


@dataclass
class Chunk:
    """One statement's text: lines first_line..last_line (1-based, inclusive)."""

    first_line: int
    last_line: int
    problems: list[tuple[str, int, int, int]] = field(default_factory=list)  # (message, line, col, width)


def split_statements(text: str) -> list[Chunk]:
    """Split `text` at newlines outside brackets, noting bracket and string problems."""
    lines = text.split("\n")
    chunks: list[Chunk] = []
    start = 0
    while start < len(lines):
        chunk, next_start = _scan_chunk(lines, start)
        if chunk is not None:
            chunks.append(chunk)
        start = next_start
    return chunks


def _scan_chunk(lines: list[str], start: int) -> tuple[Chunk | None, int]:
    """Scan one statement from line index `start`; return it and the next start index."""
    stack: list[tuple[str, int, int]] = []  # (opener, line index, column index)
    chunk = Chunk(start + 1, start + 1)
    seen_code = False
    i = start
    while i < len(lines):
        line = lines[i]
        j = 0
        string_broken = False
        while j < len(line):
            ch = line[j]
            if ch == "#":
                break
            if ch in "\"'":
                end = _string_end(line, j)
                if end < 0:
                    chunk.problems.append(("unterminated string: the closing quote is missing", i + 1, j + 1, len(line.rstrip()) - j))
                    string_broken = True
                    break
                j = end + 1
                seen_code = True
                continue
            if ch in _PAIRS:
                stack.append((ch, i, j))
            elif ch in _CLOSERS:
                if stack and stack[-1][0] == _CLOSERS[ch]:
                    stack.pop()
                elif stack:
                    opener, oi, oj = stack.pop()
                    chunk.problems.append(
                        (f"unterminated {_WHAT[opener]}: '{opener}' is closed by '{ch}' (expected '{_PAIRS[opener]}')", oi + 1, oj + 1, 1)
                    )
                    if stack and stack[-1][0] == _CLOSERS[ch]:
                        stack.pop()
                else:
                    chunk.problems.append((f"unmatched '{ch}'", i + 1, j + 1, 1))
            if not ch.isspace():
                seen_code = True
            j += 1
        chunk.last_line = i + 1
        i += 1
        if string_broken:
            stack.clear()
        if not stack:
            return (chunk if seen_code else None), i
        # A bracket is still open: the statement goes on, unless the next line
        # clearly starts a new statement at column 1 (a missing closer).
        if i < len(lines) and _STATEMENT_START.match(lines[i]):
            break
    opener, oi, oj = stack[-1]  # the innermost open bracket is the likely culprit
    chunk.problems.append((f"unterminated {_WHAT[opener]}: '{opener}' is never closed", oi + 1, oj + 1, 1))
    return chunk, i


def _string_end(line: str, start: int) -> int:
    """Index of the quote closing the string opened at `start`, or -1."""
    quote = line[start]
    j = start + 1
    while j < len(line):
        if line[j] == "\\":
            j += 2
            continue
        if line[j] == quote:
            return j
        j += 1
    return -1
