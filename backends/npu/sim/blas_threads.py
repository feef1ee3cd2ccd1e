"""Thread count of numpy's OpenBLAS, switched per layer.

A multi-threaded BLAS call on a tiny matrix costs far more in thread wake-up
(and, on a loaded machine, in waiting for descheduled worker threads) than the
arithmetic: the PP-OCR cls model ran 15x slower with 2 BLAS threads than with 1.
The simulator therefore runs small GEMMs single-threaded and large ones with the
library's default. The setter is looked up in the OpenBLAS that numpy loaded
(no extra dependency); when none is found, switching is a no-op.
"""
from __future__ import annotations

import ctypes
import logging
from typing import Callable

log = logging.getLogger(__name__)

#: GEMMs with fewer multiply-accumulates than this run on one BLAS thread. Measured on the
#: 2-core development machine under load, even a 64x384x196 GEMM ran 10x slower on two
#: OpenBLAS threads than on one, so by default every GEMM of the simulator is single-threaded.
SMALL_GEMM_MACS = 1 << 62

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")


def _find() -> tuple[Callable[[int], None], int] | None:
    import numpy  # noqa: F401 - make sure numpy's BLAS is loaded

    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            return setter, int(getter())
    return None


_FOUND = _find()
if _FOUND is None:
    log.debug("OpenBLAS thread control not found; small GEMMs use the BLAS default")


def single_threaded(step: Callable[[], None]) -> Callable[[], None]:
    """`step` run with one BLAS thread (the default count restored afterwards)."""
    if _FOUND is None or _FOUND[1] <= 1:
        return step
    setter, default = _FOUND

    def wrapped() -> None:
        setter(1)
        try:
            step()
        finally:
            setter(default)
    return wrapped


def for_gemm(step: Callable[[], None], macs: int) -> Callable[[], None]:
    """Small GEMMs single-threaded, large ones with the BLAS default."""
    return single_threaded(step) if macs < SMALL_GEMM_MACS else step
