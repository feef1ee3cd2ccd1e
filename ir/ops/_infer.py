"""Shape-inference helpers shared by the built-in op specs."""
from __future__ import annotations

import numpy as np

from npuc.ir.dtypes import DType


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"shapes {list(shapes)} do not broadcast") from None


def norm_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % max(rank, 1)


def conv_out_dim(size: int, k: int, stride: int, pad_begin: int, pad_end: int, dilation: int, ceil: bool = False) -> int:
    if stride < 1 or dilation < 1 or k < 1 or pad_begin < 0 or pad_end < 0:
        raise ValueError(f"bad window: kernel {k}, stride {stride}, dilation {dilation}, pads ({pad_begin}, {pad_end})")
    eff = dilation * (k - 1) + 1
    span = size + pad_begin + pad_end - eff
    if span < 0:
        raise ValueError(f"kernel {k} (dilation {dilation}) larger than padded input {size + pad_begin + pad_end}")
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window must start inside the input or left padding (ONNX rule)
    return out


def same_as_input(op, ins):
    return [(ins[0].shape, ins[0].dtype)]


def float_like(dtype: DType) -> DType:
    return dtype if dtype.is_float else DType.FLOAT32
