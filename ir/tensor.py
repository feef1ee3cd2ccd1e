"""A value in the IR: an activation, a model input or a constant (weights)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.quant_params import QuantParams


@dataclass(eq=False)
class Tensor:
    """One value. Facts about it (type, shape, quantization, constant data) live here once.

    Tensors are graph nodes and compare by identity. `meta` holds transient
    analysis data (calibration statistics, ...) and is never saved.
    """

    name: str
    dtype: DType
    shape: tuple[int, ...]
    data: np.ndarray | None = None
    quant: QuantParams | None = None
    layout: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        if self.data is not None:
            arr = np.asarray(self.data)
            # np.ascontiguousarray turns 0-d arrays into shape (1,): only copy when really needed
            self.data = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
            if tuple(self.data.shape) != self.shape:
                raise ValueError(f"tensor '{self.name}': data shape {self.data.shape} != declared {self.shape}")

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * max(1, self.dtype.bits // 8)

    def digest(self) -> str:
        """Short content hash of the constant data (for dumps)."""
        if self.data is None:
            return ""
        return hashlib.sha256(np.ascontiguousarray(self.data).tobytes()).hexdigest()[:10]

    def type_str(self) -> str:
        dims = "x".join(str(d) for d in self.shape) if self.shape else "scalar"
        text = f"{self.dtype}[{dims}]"
        if self.quant is not None:
            text += f" {self.quant}"
        if self.layout:
            text += f" {self.layout}"
        return text

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.type_str()}{', const' if self.is_const else ''})"

    def __hash__(self) -> int:
        return id(self)
