"""Integer kernels of the quantized reference executor, one module per op family.

An integer kernel is ``fn(op, inputs, params, outs) -> list[np.ndarray]``:
`inputs` are integer arrays (activations and integer constants; float arrays only
at Quantize and in float16 layers), `params` is `derive_op_params(graph, op)`,
`outs` gives the (shape, numpy dtype) of every output. Kernels follow
docs/numerics.md exactly; the numba simulator mirrors them bit for bit.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from npuc.errors import ExecutionError
from npuc.ir.op import Op

OutSpec = tuple[tuple[int, ...], np.dtype]
IntegerKernel = Callable[[Op, list, dict, Sequence[OutSpec]], list]

#: op kind -> integer kernel
INTEGER_KERNELS: dict[str, IntegerKernel] = {}


def register_integer_kernel(kind: str, fn: IntegerKernel) -> IntegerKernel:
    """Register the integer kernel of `kind` (a second registration is an error)."""
    if kind in INTEGER_KERNELS:
        raise ExecutionError(f"integer kernel for op kind '{kind}' is registered twice")
    INTEGER_KERNELS[kind] = fn
    return fn


def integer_kernel(*kinds: str) -> Callable[[IntegerKernel], IntegerKernel]:
    """Decorator registering one function for several kinds."""

    def deco(fn: IntegerKernel) -> IntegerKernel:
        for k in kinds:
            register_integer_kernel(k, fn)
        return fn

    return deco


def integer_kernel_for(kind: str) -> IntegerKernel:
    try:
        return INTEGER_KERNELS[kind]
    except KeyError:
        raise ExecutionError(f"no integer kernel for op kind '{kind}'") from None


def _register_builtins() -> None:
    from npuc.backends.reference.integer_kernels import (  # noqa: F401
        conversions, data_movement, elementwise, float16, lut, mac, pooling, softmax)


_register_builtins()
