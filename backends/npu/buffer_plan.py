"""Arena placement of activation buffers: lifetimes from the layer order, first-fit reuse."""
from __future__ import annotations

from dataclasses import dataclass

from npuc.backends.npu.isa import align


@dataclass(frozen=True)
class Interval:
    key: int  # tensor id
    size: int
    first: int  # index of the producing layer
    last: int  # index of the last reading layer


def plan_buffers(intervals: list[Interval]) -> tuple[dict[int, int], int]:
    """Offsets for buffers whose lifetimes overlap never overlapping in memory.

    Greedy by size (largest first, ties by id for determinism), each placed at
    the lowest aligned offset that does not collide with an already placed,
    time-overlapping buffer. Returns ({key: offset}, arena size).
    """
    placed: list[tuple[Interval, int]] = []
    offsets: dict[int, int] = {}
    for iv in sorted(intervals, key=lambda i: (-i.size, i.key)):
        busy = sorted(
            (off, off + align(other.size))
            for other, off in placed
            if not (other.last < iv.first or iv.last < other.first)
        )
        offset = 0
        for start, end in busy:
            if offset + align(iv.size) <= start:
                break
            offset = max(offset, end)
        offsets[iv.key] = offset
        placed.append((iv, offset))
    arena = max((off + align(iv.size) for iv, off in placed), default=0)
    return offsets, arena
