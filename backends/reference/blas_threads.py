"""Control of the BLAS thread count of the calling thread (OpenBLAS, as numpy's wheels ship).

The float reference executor runs BLAS single-threaded and does its own
coarse-grained threading (parallel.py): a multi-threaded BLAS call pays a
hand-off to its worker threads on every call, which on the small matmuls of
small models costs more than the arithmetic and, when the cores are shared,
stalls for scheduler slices (measured: a 576x96x288 float32 matmul takes
1.1 ms on one OpenBLAS thread and 28 ms on two when the 2 cores are
oversubscribed).

Only OpenBLAS is controlled, through its ``openblas_set_num_threads_local``
(in the pthreads builds numpy ships it acts process-wide despite its name, so
callers restore :func:`configured_blas_threads`, read once, never "the value
before"); with any other BLAS, or when the library cannot be found,
:func:`blas_threads_control` returns None and nothing changes.
"""
from __future__ import annotations

import ctypes
import logging
from functools import lru_cache
from typing import Callable

log = logging.getLogger(__name__)

SetThreads = Callable[[int], int]


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


@lru_cache(maxsize=1)
def configured_blas_threads() -> int | None:
    """The BLAS thread count configured by the environment (read on first use); None when not controllable."""
    set_threads = blas_threads_control()
    if set_threads is None:
        return None
    n = set_threads(1)
    set_threads(n)
    return max(1, n)


@lru_cache(maxsize=1)
def blas_threads_control() -> SetThreads | None:
    """set(n) -> previous n, setting the BLAS thread count (process-wide in numpy's builds); None when unavailable."""
    import numpy  # noqa: F401 - maps numpy's BLAS into the process first

    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
            fn = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_int]
        log.debug("BLAS threads controlled through %s", path)
        return fn
    return None
