"""The NPU simulator: runs a decoded Program bit-exactly as docs/numerics.md specifies.

Everything that does not depend on the input values happens once, in
`Simulator.__init__`: buffers are allocated (one arena for activations laid out
by the binary's buffer plan, host buffers for inputs and outputs), the plan is
checked (buffers live at the same time never overlap), and every layer is
*prepared* by its kernel wrapper from the dispatch table {op kind: wrapper}.
A wrapper validates the layer's shapes, dtypes and parameters (numba does no
bounds checks) and precomputes weights in their accumulation type, gather maps
and broadcast strides; it returns a step that only calls numba kernels (or
BLAS) on the preallocated buffers. `run` copies the feeds in, runs the steps in
order and returns copies of the outputs.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping

import numpy as np

from npuc.backends.npu.program import Program, TensorEntry
from npuc.backends.npu.sim import (conversion, data_movement, elementwise, lut, mac, pooling, prelu, resize,
                                  softmax)
from npuc.backends.npu.sim.checks import LayerChecker
from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.backends.npu.sim.float16 import prepare_float16
from npuc.errors import BinaryFormatError, ExecutionError, NpucError, fed_array
from npuc.ir.dtypes import DType
from npuc.quantization.op_params import CONVERSION_KINDS
from npuc.quantization.schemes import dequantize as _dequantize

log = logging.getLogger(__name__)

Prepare = Callable[[LayerContext], Step]

#: op kind -> kernel wrapper (integer layers); float16 layers use `prepare_float16`
DISPATCH: dict[str, Prepare] = {}
for _module in (mac, elementwise, pooling, data_movement, resize, prelu, lut, softmax, conversion):
    DISPATCH.update(_module.PREPARERS)

#: exceptions a wrapper may hit on inconsistent (but decodable) input; reported as BinaryFormatError
_PREPARE_ERRORS = (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError, MemoryError)


def is_float16_layer(kind: str, outputs: list[TensorEntry]) -> bool:
    """A float16 layer writes float16 activations and is not a conversion (as op_params.is_float16_op)."""
    return kind not in CONVERSION_KINDS and any(e.dtype is DType.FLOAT16 for e in outputs)


class Simulator:
    """Prepared, reusable simulator of one program (see the module docstring)."""

    def __init__(self, program: Program, source: str = "<program>") -> None:
        t0 = time.perf_counter()
        self.program = program
        self.source = source
        self._buffers = self._allocate()
        self._steps: list[tuple[str, Step]] = []
        for layer in program.layers:
            self._steps.append((layer.name, self._prepare(layer)))
        self.prepare_seconds = time.perf_counter() - t0
        log.debug("prepared %d layers in %.3f s (arena %d bytes)", len(self._steps), self.prepare_seconds,
                  program.arena_bytes)

    # ------------------------------------------------------------ preparation
    def _bad(self, message: str) -> BinaryFormatError:
        return BinaryFormatError(f"{self.source}: {message}")

    def _allocate(self) -> dict[int, np.ndarray]:
        p = self.program
        acts = [e for e in p.tensors if e.role == "activation"]
        needed = max((e.offset + e.nbytes for e in acts), default=0)
        # an arena never needs more than every buffer side by side (aligned): a larger span is a corrupt plan
        limit = sum(-(-e.nbytes // 64) * 64 for e in acts)
        if needed > max(limit, 0) or needed > int(p.arena_bytes):
            raise self._bad(f"the buffer plan spans {needed} bytes (arena {p.arena_bytes}, buffers {limit})")
        self._arena = np.zeros(max(needed, 1), np.uint8)
        buffers: dict[int, np.ndarray] = {}
        for e in p.tensors:
            dt = e.dtype.numpy
            if e.role == "constant":
                data = p.constants.get(e.id)
                if data is None or data.shape != e.shape:
                    raise self._bad(f"constant '{e.name}' has no data of shape {e.shape}")
                buffers[e.id] = np.ascontiguousarray(data)
            elif e.role == "activation":
                if e.offset % dt.itemsize or e.offset + e.elements * dt.itemsize > self._arena.size:
                    raise self._bad(f"activation '{e.name}' at offset {e.offset} is misaligned or outside the arena")
                buffers[e.id] = np.ndarray(e.shape, dt, buffer=self._arena, offset=e.offset)
            else:
                buffers[e.id] = np.zeros(e.shape, dt)
        self._check_plan()
        return buffers

    def _check_plan(self) -> None:
        """Activations whose lifetimes overlap must not share arena bytes (else results would be wrong)."""
        p = self.program
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for i, layer in enumerate(p.layers):
            for t in layer.outputs:
                first.setdefault(t, i)
                last.setdefault(t, i)
            for t in layer.inputs:
                if t >= 0:
                    last[t] = i
        acts = [e for e in p.tensors if e.role == "activation" and e.nbytes > 0]
        for e in acts:
            if e.id not in first:
                raise self._bad(f"activation '{e.name}' is never written by a layer")
            if last[e.id] < first[e.id] or any(t == e.id for t in p.layers[first[e.id]].inputs):
                raise self._bad(f"activation '{e.name}' is read before it is written")
        acts.sort(key=lambda e: e.offset)
        for i, a in enumerate(acts):
            for b in acts[i + 1:]:
                if b.offset >= a.offset + a.nbytes:
                    break
                if not (last[a.id] < first[b.id] or last[b.id] < first[a.id]):
                    raise self._bad(f"activations '{a.name}' and '{b.name}' are live at the same time "
                                    "and overlap in the arena")

    def _prepare(self, layer) -> Step:
        p = self.program
        in_entries = [None if t < 0 else p.tensors[t] for t in layer.inputs]
        out_entries = [p.tensors[t] for t in layer.outputs]
        params = p.layer_params(layer)
        ctx = LayerContext(layer, [None if t < 0 else self._buffers[t] for t in layer.inputs],
                           [self._buffers[t] for t in layer.outputs], in_entries, out_entries, params,
                           LayerChecker(self.source, layer.name, layer.kind, params))
        if any(e.role in ("constant", "input") for e in out_entries):
            raise ctx.check.fail("a layer may not write a constant or an input")
        if is_float16_layer(layer.kind, out_entries):
            prepare = prepare_float16
        else:
            prepare = DISPATCH.get(layer.kind)
            if prepare is None:
                raise ctx.check.fail("the simulator has no integer kernel for this op kind")
        try:
            return prepare(ctx)
        except NpucError:
            raise
        except _PREPARE_ERRORS as exc:
            raise ctx.check.fail(f"inconsistent layer: {type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------ running
    @property
    def input_entries(self) -> list[TensorEntry]:
        return [self.program.tensors[i] for i in self.program.inputs]

    @property
    def output_entries(self) -> list[TensorEntry]:
        return [self.program.tensors[i] for i in self.program.outputs]

    def run(self, feeds: Mapping[str, np.ndarray], dequantize: bool = False) -> dict[str, np.ndarray]:
        """Outputs by name: integer codes, or float32 ``scale * (q - zp)`` with `dequantize`."""
        for e in self.input_entries:
            arr = fed_array(feeds, e.name, e.shape, f"{e.dtype.value}{list(e.shape)}")
            np.copyto(self._buffers[e.id], arr, casting="unsafe")
        for name, step in self._steps:
            try:
                step()
            except NpucError:
                raise
            except Exception as exc:  # noqa: BLE001 - name the layer in a user-facing error
                raise ExecutionError(f"simulator: layer '{name}' failed: {type(exc).__name__}: {exc}") from exc
        result: dict[str, np.ndarray] = {}
        for e in self.output_entries:
            v = self._buffers[e.id].copy()
            if dequantize and e.quant is not None and v.dtype.kind in "iu":
                v = _dequantize(v, e.quant, np.float32)
            elif dequantize:
                v = v.astype(np.float32)
            result[e.name] = v
        return result


def simulate(program: Program, feeds: Mapping[str, np.ndarray], dequantize: bool = False) -> dict[str, np.ndarray]:
    """Prepare and run a program once."""
    return Simulator(program).run(feeds, dequantize)
