"""A compiled program: the in-memory form of a .npub binary (tensors, layers, data, buffer plan)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.quant_params import QuantParams

ROLES = ("input", "output", "activation", "constant")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the program. Activations live at `offset` in the arena; constants in the weights."""

    id: int
    name: str
    dtype: DType
    shape: tuple[int, ...]
    role: str
    quant: QuantParams | None = None
    layout: str | None = None
    offset: int = 0
    nbytes: int = 0

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class LayerEntry:
    """One layer: its kind, attributes, tensor ids (-1 = absent optional input) and parameter ids."""

    index: int
    name: str
    kind: str
    origin: tuple[str, ...]
    attrs: dict[str, Any]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    params: dict[str, int] = field(default_factory=dict)


@dataclass
class Program:
    """Everything a simulator needs to run a model, and nothing it must recompute."""

    name: str
    tensors: list[TensorEntry]
    layers: list[LayerEntry]
    constants: dict[int, np.ndarray]  # tensor id -> data
    params: list[tuple[str, np.ndarray]]  # parameter id -> (name, integer/float array)
    inputs: list[int]
    outputs: list[int]
    arena_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def tensor(self, tid: int) -> TensorEntry:
        return self.tensors[tid]

    def layer_params(self, layer: LayerEntry) -> dict[str, np.ndarray]:
        return {name: self.params[pid][1] for name, pid in layer.params.items()}
