"""Resolve layer selectors against a model's layers.

A selector item matches a layer by its op name or any of its origin names
(the source-model names it came from). Names and fnmatch globs are tried
first against full names; when that finds nothing, against the part after
the last '/' on both sides, because scripts written for another toolchain
prefix layer names with the network name (`yolov5s/conv12`); when that
finds nothing either, both again ignoring case (`{conv*}` finds `Conv_12`
in a model whose exporter capitalized op names).
`X...` is layer X and every layer after it in topological order.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from npuc.script import ast
from npuc.script.layers import LayerRef


def _tail(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ItemMatch:
    """What one selector item matched (indices into the layer list, ascending)."""

    item: ast.Node
    indices: tuple[int, ...]


class LayerIndex:
    """Lookup structures over a model's layers; results are cached per selector text."""

    def __init__(self, layers: Sequence[LayerRef]) -> None:
        self.layers: tuple[LayerRef, ...] = tuple(layers)
        self._full: dict[str, set[int]] = {}
        self._tails: dict[str, set[int]] = {}
        self._folded: dict[str, set[int]] = {}
        self._folded_tails: dict[str, set[int]] = {}
        self.tensors: set[str] = set()
        for i, layer in enumerate(self.layers):
            for key in (layer.name, *layer.origin):
                self._full.setdefault(key, set()).add(i)
                self._tails.setdefault(_tail(key), set()).add(i)
                self._folded.setdefault(key.casefold(), set()).add(i)
                self._folded_tails.setdefault(_tail(key).casefold(), set()).add(i)
            self.tensors.update(layer.outputs)
        self._cache: dict[tuple[str, str], tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def keys(self) -> list[str]:
        """Every name a selector can match (op names and origin names)."""
        return list(self._full)

    def match_name(self, text: str) -> tuple[int, ...]:
        """Layers called `text` (full name first, then without the scope)."""
        key = ("name", text)
        if key not in self._cache:
            found = (
                self._full.get(text)
                or self._tails.get(_tail(text))
                or self._folded.get(text.casefold())
                or self._folded_tails.get(_tail(text).casefold())
                or set()
            )
            self._cache[key] = tuple(sorted(found))
        return self._cache[key]

    def match_glob(self, pattern: str) -> tuple[int, ...]:
        """Layers whose name or origin matches the fnmatch `pattern` (case-sensitive)."""
        key = ("glob", pattern)
        if key not in self._cache:
            self._cache[key] = self._glob(pattern)
        return self._cache[key]

    def _glob(self, pattern: str) -> tuple[int, ...]:
        tiers = (
            (pattern, self._full, 0),
            (_tail(pattern), self._tails, 0),
            (pattern, self._full, re.IGNORECASE),
            (_tail(pattern), self._tails, re.IGNORECASE),
        )
        for text, keys, flags in tiers:
            regex = re.compile(fnmatch.translate(text), flags)
            found: set[int] = set()
            for name, indices in keys.items():
                if regex.match(name):
                    found |= indices
            if found:
                return tuple(sorted(found))
        return ()

    def match_item(self, item: ast.Node) -> tuple[int, ...]:
        """Indices matched by one selector item (Name, ScopedName, Glob or Range)."""
        if isinstance(item, ast.Glob):
            return self.match_glob(item.pattern)
        if isinstance(item, (ast.Name, ast.ScopedName)):
            return self.match_name(item.text)
        if isinstance(item, ast.Range):
            start = self.match_name(item.start.text)
            return tuple(range(start[0], len(self.layers))) if start else ()
        raise TypeError(f"not a selector item: {type(item).__name__}")

    def resolve(self, items: Sequence[ast.Node]) -> tuple[tuple[str, ...], list[ItemMatch]]:
        """Layer names selected by the union of `items`, in topological order, and per-item matches."""
        matches = [ItemMatch(item, self.match_item(item)) for item in items]
        chosen = sorted({i for m in matches for i in m.indices})
        return tuple(self.layers[i].name for i in chosen), matches

    def suggest(self, text: str) -> list[str]:
        """Close layer names for a selector that matched nothing."""
        probe = text.rstrip("*?").split("[", 1)[0] or text
        close = difflib.get_close_matches(probe, self.keys, n=1, cutoff=0.6)
        if not close and "/" in probe:
            close = difflib.get_close_matches(_tail(probe), [_tail(k) for k in self.keys], n=1, cutoff=0.6)
        return close


def item_text(item: ast.Node) -> str:
    """How a diagnostic names a selector item."""
    if isinstance(item, ast.Glob):
        return item.pattern
    if isinstance(item, ast.Range):
        return item.start.text + "..."
    return getattr(item, "text", str(item))
