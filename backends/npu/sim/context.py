"""What a kernel wrapper gets when the simulator prepares one layer, and what it returns."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from npuc.backends.npu.program import LayerEntry, TensorEntry
from npuc.backends.npu.sim.checks import LayerChecker

log = logging.getLogger("npuc.backends.npu.sim")

#: A prepared layer: reads its input buffers and writes its output buffers, nothing else.
Step = Callable[[], None]


@dataclass
class LayerContext:
    """One layer's preallocated buffers, constants, parameters and attributes.

    `inputs`/`outputs` are the very arrays the layer reads and writes on every run
    (arena views, host buffers or constants); a wrapper may precompute anything from
    their shapes and from the constants once, and must validate what its numba kernel
    relies on through `check` (BinaryFormatError naming the layer).
    """

    layer: LayerEntry
    inputs: list[np.ndarray | None]
    outputs: list[np.ndarray]
    input_entries: list[TensorEntry | None]
    output_entries: list[TensorEntry]
    params: dict[str, np.ndarray]
    check: LayerChecker

    @property
    def attrs(self) -> dict[str, Any]:
        return self.layer.attrs

    @property
    def kind(self) -> str:
        return self.layer.kind

    def constant(self, index: int) -> np.ndarray | None:
        """The data of input `index` when it is a constant of the binary, else None."""
        if index >= len(self.inputs):
            return None
        e = self.input_entries[index]
        return self.inputs[index] if e is not None and e.role == "constant" else None

    def out_dtype(self, index: int = 0) -> np.dtype:
        return self.outputs[index].dtype

    def log_choice(self, text: str) -> None:
        log.debug("layer %s (%s): %s", self.layer.name, self.layer.kind, text)
