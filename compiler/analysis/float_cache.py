"""Float activations of one sample, computed once and shared by every analysis of that sample."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from npuc.backends.reference.executor import Executor
from npuc.ir.graph import Graph


class FloatCache:
    """Runs the fp-optimized graph and keeps every activation (read-only arrays) of the last sample."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._executor = Executor(graph)

    def capture(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{tensor name: value} for every graph input and every computed tensor.

        Arrays are made read-only: the suffix runs read them, never overwrite them
        (the executor never writes in place into an array someone else holds).
        """
        values: dict[str, np.ndarray] = {}

        def keep(tensor, value: np.ndarray) -> None:
            values[tensor.name] = value

        self._executor.run({k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()}, on_tensor=keep)
        for v in values.values():
            if isinstance(v, np.ndarray) and v.flags.owndata:
                v.flags.writeable = False
        return values
