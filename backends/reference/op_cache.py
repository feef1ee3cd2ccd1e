"""Per-op cache of values derived from constant inputs (re-laid-out weights, folded BN factors).

A kernel runs once per inference, but re-deriving e.g. a transposed weight
matrix every time costs more than the arithmetic on small layers. Entries are
keyed by the Op and invalidated when any source array is a different object
(constants are read-only, so identity is enough); the cache holds the source
arrays so their ids cannot be reused while an entry exists.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np

from npuc.ir.op import Op

_CACHE: "weakref.WeakKeyDictionary[Op, dict[str, tuple[tuple, Any]]]" = weakref.WeakKeyDictionary()


def derived(op: Op, key: str, sources: Sequence[np.ndarray | None], make: Callable[[], Any]) -> Any:
    """make() computed once per (op, key) while the `sources` arrays stay the same objects."""
    if not all(s is None or not s.flags.writeable for s in sources):
        return make()  # a writeable source may change under us: never cache it
    entries = _CACHE.get(op)
    if entries is None:
        entries = _CACHE[op] = {}
    hit = entries.get(key)
    if hit is not None and len(hit[0]) == len(sources) and all(a is b for a, b in zip(hit[0], sources)):
        return hit[1]
    value = make()
    entries[key] = (tuple(sources), value)
    return value
