"""Element types of IR tensors and their mapping to numpy and ONNX."""
from __future__ import annotations

import enum

import numpy as np


class DType(enum.Enum):
    """Element type of a tensor. The value is the short name used in dumps."""

    FLOAT32 = "f32"
    FLOAT16 = "f16"
    INT4 = "i4"
    UINT4 = "u4"
    INT8 = "i8"
    UINT8 = "u8"
    INT16 = "i16"
    UINT16 = "u16"
    INT32 = "i32"
    INT64 = "i64"
    BOOL = "bool"

    @property
    def numpy(self) -> np.dtype:
        """numpy storage type (4-bit types are stored one value per byte)."""
        return np.dtype(_TO_NUMPY[self])

    @property
    def bits(self) -> int:
        return _BITS[self]

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT32, DType.FLOAT16)

    @property
    def is_integer(self) -> bool:
        return not self.is_float and self is not DType.BOOL

    @property
    def signed(self) -> bool:
        return self in (DType.INT4, DType.INT8, DType.INT16, DType.INT32, DType.INT64)

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @classmethod
    def from_numpy(cls, dt: np.dtype | type) -> "DType":
        key = np.dtype(dt)
        for member, name in _TO_NUMPY.items():
            if member not in (DType.INT4, DType.UINT4) and np.dtype(name) == key:
                return member
        raise ValueError(f"numpy dtype {key} has no npuc equivalent")

    @classmethod
    def integer(cls, bits: int, signed: bool) -> "DType":
        """The integer type with this width and signedness."""
        for member in cls:
            if member.is_integer and member.bits == bits and member.signed == signed:
                return member
        raise ValueError(f"no {'signed' if signed else 'unsigned'} {bits}-bit integer type")

    @classmethod
    def parse(cls, text: str) -> "DType":
        """Accept short names ('i8') and long ones ('int8', 'float16')."""
        t = text.strip().lower()
        for member in cls:
            if t in (member.value, member.name.lower()):
                return member
        raise ValueError(f"unknown data type '{text}'")

    def __str__(self) -> str:
        return self.value


_TO_NUMPY = {
    DType.FLOAT32: "float32",
    DType.FLOAT16: "float16",
    DType.INT4: "int8",
    DType.UINT4: "uint8",
    DType.INT8: "int8",
    DType.UINT8: "uint8",
    DType.INT16: "int16",
    DType.UINT16: "uint16",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.BOOL: "bool",
}

_BITS = {
    DType.FLOAT32: 32,
    DType.FLOAT16: 16,
    DType.INT4: 4,
    DType.UINT4: 4,
    DType.INT8: 8,
    DType.UINT8: 8,
    DType.INT16: 16,
    DType.UINT16: 16,
    DType.INT32: 32,
    DType.INT64: 64,
    DType.BOOL: 8,
}
