"""Run BLAS single-threaded while the analysis runs.

The analysis makes tens of thousands of small matmuls (1x1 convolutions of one
sample). OpenBLAS wakes its worker threads for each, and on a small, shared
machine the threads spin against each other: on the 2-core build machine the
cls analysis ran ~5x slower with the default thread count than with one thread.
This sets the thread count of the OpenBLAS numpy loaded (through its exported
setter; threadpoolctl does the same) and restores it afterwards. When no known
BLAS is found nothing changes.
"""
from __future__ import annotations

import ctypes
import logging
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)

_SYMBOLS = (  # (setter, getter) as exported by the OpenBLAS builds numpy ships or links
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def _loaded_blas() -> list[ctypes.CDLL]:
    """OpenBLAS libraries mapped into this process (Linux: from /proc/self/maps)."""
    import numpy  # noqa: F401 - make sure numpy's BLAS is loaded

    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.rstrip("\n").split(" ")[-1]
                if "openblas" in path.lower() and path not in paths:
                    paths.append(path)
    except OSError:
        return []
    libs = []
    for path in paths:
        try:
            libs.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libs


def _controls() -> list[tuple[object, object]]:
    found = []
    for lib in _loaded_blas():
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                found.append((getattr(lib, set_name), getattr(lib, get_name)))
                break
    return found


@contextmanager
def blas_threads(count: int = 1) -> Iterator[None]:
    """Within the block, BLAS uses `count` threads (restored afterwards)."""
    controls = _controls()
    previous = []
    for setter, getter in controls:
        try:
            previous.append((setter, int(getter())))  # type: ignore[operator]
            setter(int(count))  # type: ignore[operator]
        except (OSError, ValueError, TypeError):  # pragma: no cover - foreign BLAS builds
            continue
    if not controls:
        log.debug("no OpenBLAS thread control found; BLAS threads unchanged")
    try:
        yield
    finally:
        for setter, n in previous:
            setter(n)  # type: ignore[operator]
