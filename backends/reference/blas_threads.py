"""Per-op BLAS thread count for the float reference executor.

A multi-threaded BLAS call pays a hand-off to its worker threads on every
call; on the small matmuls of small models (a few million MACs) that costs
more than the arithmetic, and on a machine whose cores are shared it is
catastrophic: the caller waits a scheduler time slice for a descheduled
worker (measured: a 576x96x288 float32 matmul takes 1.1 ms on one OpenBLAS
thread and 28 ms on two when the 2 cores are oversubscribed). So the
executor runs small ops with one BLAS thread and keeps the thread count the
environment configured (OPENBLAS_NUM_THREADS, ...) for ops of at least
:data:`MIN_MACS_FOR_BLAS_THREADS` multiply-adds.

Only OpenBLAS (what numpy's wheels ship) is controlled, through its
``openblas_set_num_threads_local``; with any other BLAS, or when the library
cannot be found, :func:`blas_threads_control` returns None and nothing changes.
"""
from __future__ import annotations

import ctypes
import logging
from functools import lru_cache
from typing import Callable

log = logging.getLogger(__name__)

#: Ops with fewer multiply-adds than this run with one BLAS thread.
MIN_MACS_FOR_BLAS_THREADS = 50_000_000

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
def blas_threads_control() -> SetThreads | None:
    """set(n) -> previous n, setting the BLAS thread count of the calling thread; None when unavailable."""
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
