"""Registry of float reference kernels, one per op kind.

A kernel is ``fn(op, inputs) -> outputs``: it reads the op's attributes and a
list of numpy arrays (None for an absent optional input) and returns one array
per op output. Kernels never modify their inputs. A kind may also register an
*in-place* variant with the same signature that is allowed to overwrite
``inputs[0]`` (and return it); the executor only uses it when it owns that
array exclusively, so plugins never need one.

Built-in kernels live in the ``*_kernels.py`` modules next to this one and are
registered when this module is imported. Plugins call :func:`register_kernel`.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from npuc.errors import ExecutionError, PluginError
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor  # noqa: F401 - named in annotations

log = logging.getLogger(__name__)

Kernel = Callable[[Op, list], list]

#: op kind -> float kernel.
FLOAT_KERNELS: dict[str, Kernel] = {}
#: op kind -> in-place variant (may overwrite and return inputs[0]).
INPLACE_KERNELS: dict[str, Kernel] = {}
#: op kind -> who registered its kernel (for clash errors and listings).
KERNEL_SOURCES: dict[str, str] = {}

#: A preparer sees an op and its input tensors (shapes, dtypes, constant data) once, when the
#: executor plans, and returns a kernel specialised for them (weights already re-laid-out,
#: attributes parsed) or None. The specialised kernel must give the generic kernel's results
#: and fall back to it whenever the inputs are not what it was prepared for.
Preparer = Callable[[Op, Sequence["Tensor | None"]], "Kernel | None"]
#: op kind -> preparer of the built-in kernel (only used while that kernel is the registered one).
PREPARERS: dict[str, Preparer] = {}


def preparer(kind: str) -> Callable[[Preparer], Preparer]:
    """Decorator registering the preparer of a built-in kernel."""

    def deco(fn: Preparer) -> Preparer:
        PREPARERS[kind] = fn
        return fn

    return deco


def prepared_kernel(op: Op, inputs: Sequence["Tensor | None"]) -> Kernel:
    """The kernel the executor runs for `op`: a prepared specialisation when there is one, else the generic."""
    generic = kernel_for(op.kind)
    prep = PREPARERS.get(op.kind)
    if prep is None or KERNEL_SOURCES.get(op.kind) != "builtin":
        return generic
    try:
        fast = prep(op, inputs)
    except Exception:  # noqa: BLE001 - a preparer that cannot handle the op leaves it to the generic kernel
        log.debug("preparer of %s failed for op %s; generic kernel used", op.kind, op.name, exc_info=True)
        return generic
    return generic if fast is None else fast


def register_kernel(kind: str, fn: Kernel, source: str = "builtin", inplace: Kernel | None = None) -> Kernel:
    """Register the float kernel of `kind`; a second registration is a PluginError naming both sources."""
    if kind in FLOAT_KERNELS:
        raise PluginError(
            f"float kernel for op kind '{kind}' is registered twice: by {KERNEL_SOURCES[kind]} and by {source}"
        )
    FLOAT_KERNELS[kind] = fn
    KERNEL_SOURCES[kind] = source
    if inplace is not None:
        INPLACE_KERNELS[kind] = inplace
    log.debug("float kernel %s registered by %s", kind, source)
    return fn


def kernel(kind: str, inplace: Kernel | None = None) -> Callable[[Kernel], Kernel]:
    """Decorator form of :func:`register_kernel` used by the built-in kernel modules."""

    def deco(fn: Kernel) -> Kernel:
        return register_kernel(kind, fn, "builtin", inplace=inplace)

    return deco


def kernel_for(kind: str) -> Kernel:
    """The float kernel of `kind`, or an ExecutionError listing what exists."""
    try:
        return FLOAT_KERNELS[kind]
    except KeyError:
        raise ExecutionError(
            f"no float reference kernel for op kind '{kind}' (kinds with kernels: {len(FLOAT_KERNELS)}); "
            "a plugin that adds an op kind must also register its kernel with "
            "npuc.backends.reference.kernels.register_kernel"
        ) from None


def evaluate_op(op: Op, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate one op on concrete input arrays (used by constant folding).

    Errors are ExecutionErrors naming the op, its kind, origin and input shapes.
    """
    fn = kernel_for(op.kind)
    ins = list(inputs)
    try:
        with np.errstate(all="ignore"):
            outs = fn(op, ins)
    except Exception as exc:  # noqa: BLE001 - any kernel failure becomes a user-facing error naming the op
        raise kernel_failure(op, ins, exc) from exc
    return list(outs)


def describe_inputs(inputs: Sequence[np.ndarray | None]) -> str:
    """Input shapes and dtypes as text for error messages."""
    parts = []
    for a in inputs:
        parts.append("absent" if a is None else f"{np.asarray(a).dtype}{list(np.shape(a))}")
    return "[" + ", ".join(parts) + "]"


def kernel_failure(op: Op, inputs: Sequence[np.ndarray | None], exc: BaseException) -> ExecutionError:
    """The error reported when a kernel raises: names the op, kind, origin and input shapes."""
    origin = f", origin {list(op.origin)}" if op.origin else ""
    return ExecutionError(
        f"{op.kind} op '{op.name}'{origin} failed on inputs {describe_inputs(inputs)}: "
        f"{type(exc).__name__}: {exc}"
    )


def _register_builtins() -> None:
    # Imported here (not at the top) because the kernel modules import register_kernel from this module.
    from npuc.backends.reference import (  # noqa: F401
        conv_kernels,
        data_movement_kernels,
        dense_kernels,
        elementwise_kernels,
        normalization_kernels,
        pooling_kernels,
        resize_kernels,
    )


_register_builtins()
