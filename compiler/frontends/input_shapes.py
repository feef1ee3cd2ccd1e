"""Parsing of `--input-shape NAME=D0,D1,...` options."""
from __future__ import annotations

import re
from typing import Iterable

from npuc.errors import ModelImportError

_SPEC = re.compile(r"^\s*(?P<name>[^=]+?)\s*[=:]\s*\[?(?P<dims>[0-9xX,\s]+?)\]?\s*$")


def parse_input_shapes(specs: Iterable[str] | None) -> dict[str, tuple[int, ...]]:
    """{'x': (1, 3, 48, 192)} from ['x=1,3,48,192'] ('x=1x3x48x192' and 'x:[1,3,48,192]' work too).

    A bad spec or a name given twice is a ModelImportError naming the option.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or ():
        m = _SPEC.match(spec)
        dims = [d for d in re.split(r"[,xX\s]+", m.group("dims").strip()) if d] if m else []
        if not m or not dims:
            raise ModelImportError(
                f"bad --input-shape '{spec}': expected NAME=D0,D1,... with positive integers, e.g. x=1,3,48,192")
        shape = tuple(int(d) for d in dims)
        if any(d <= 0 for d in shape):
            raise ModelImportError(f"bad --input-shape '{spec}': dimensions must be positive integers")
        name = m.group("name")
        if name in shapes:
            raise ModelImportError(f"--input-shape gives input '{name}' twice")
        shapes[name] = shape
    return shapes
