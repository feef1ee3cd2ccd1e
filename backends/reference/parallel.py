"""Coarse-grained work sharing for the big float kernels (conv blocks), robust on shared cores.

Why not let BLAS thread each matmul: a multi-threaded OpenBLAS call syncs its
threads several times per call, and when the cores are oversubscribed every
sync waits a scheduler slice for a descheduled worker (measured on 2 shared
cores: det at 640x640 took 3.6 s with 2 BLAS threads, 0.65 s with one). Here
the caller splits an op into independent chunks (row blocks, channel ranges)
that each run single-threaded BLAS or numba code with the GIL released; the
calling thread takes chunks itself, so a worker that is not scheduled only
means the caller does more of the chunks -- never a wait, except for a chunk a
worker has already started.

The executor enables it per run with :func:`threads` (the thread count the
environment configured for BLAS); elsewhere :func:`parallel_for` is a plain loop.
"""
from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_local = threading.local()


def current_threads() -> int:
    """Threads the calling thread may use for chunked kernels (1 outside an executor run)."""
    return getattr(_local, "threads", 1)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Let chunked kernels called from this thread use `n` threads (this one included) meanwhile."""
    prev = current_threads()
    _local.threads = max(1, int(n))
    try:
        yield
    finally:
        _local.threads = prev


class _Job:
    def __init__(self, fn: Callable[[int], None], n: int) -> None:
        self.fn, self.n = fn, n
        self.next = itertools.count().__next__  # atomic under the GIL
        self.done = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        while True:
            i = self.next()
            if i >= self.n:
                return
            try:
                if self.error is None:
                    self.fn(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                self.error = exc
            finally:
                with self.lock:
                    self.done += 1
                    if self.done == self.n:
                        self.finished.set()


class _Pool:
    """Daemon worker threads that join the current job; one job at a time (others run serially)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._job: _Job | None = None
        self._gen = 0
        self._workers: list[threading.Thread] = []
        self._busy = threading.Lock()

    def _ensure(self, workers: int) -> None:
        while len(self._workers) < workers:
            t = threading.Thread(target=self._loop, name=f"npuc-ref-{len(self._workers)}", daemon=True)
            self._workers.append(t)
            t.start()

    def _loop(self) -> None:
        from npuc.backends.reference.blas_threads import blas_threads_control

        set_threads = blas_threads_control()
        if set_threads is not None:
            set_threads(1)  # chunks are the parallelism: BLAS inside a chunk stays single-threaded
        seen = 0
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._gen != seen)
                seen, job = self._gen, self._job
            if job is not None:
                job.work()

    def run(self, n: int, fn: Callable[[int], None], threads: int) -> None:
        if not self._busy.acquire(blocking=False):  # another thread's job is running: do this one alone
            for i in range(n):
                fn(i)
            return
        try:
            self._ensure(threads - 1)
            job = _Job(fn, n)
            with self._cv:
                self._job = job
                self._gen += 1
                self._cv.notify_all()
            job.work()
            job.finished.wait()
        finally:
            with self._cv:  # also on KeyboardInterrupt: a late worker must not pick the job up
                self._job = None
            self._busy.release()
        if job.error is not None:
            raise job.error


_POOL = _Pool()


def parallel_for(n: int, fn: Callable[[int], None]) -> None:
    """fn(0) ... fn(n - 1), shared with the pool's workers when the caller enabled threads.

    The chunks must be independent (disjoint outputs) and should release the GIL
    (numpy BLAS calls, numba nogil kernels) for the threads to pay off.
    """
    t = current_threads()
    if t <= 1 or n <= 1:
        for i in range(n):
            fn(i)
        return
    _POOL.run(n, fn, t)
