"""Quantized-mode reference executor: runs the quantized IR in integer arithmetic (docs/numerics.md).

Every op's integer constants come from `derive_op_params` (computed once per
executor), every kernel from `integer_kernels`. Graph inputs are fed as floats
(a Quantize op follows them); graph outputs are integer tensors, dequantized on
request. Intermediates are released after their last use.
"""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np

from npuc.backends.reference.executor import OnTensor, ops_feeding
from npuc.backends.reference.integer_kernels import integer_kernel_for
from npuc.backends.reference.integer_kernels.float16 import run_float16
from npuc.errors import ExecutionError, NpucError, fed_array
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.tensor import Tensor
from npuc.quantization.op_params import derive_op_params, is_float16_op
from npuc.quantization.schemes import dequantize as _dequantize

log = logging.getLogger(__name__)


class QuantizedExecutor:
    """Runs a quantized graph; parameters are derived once and reused across runs."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._ops = graph.ops()
        self._params: dict[str, dict[str, np.ndarray]] = {}
        self._float16 = {op.name: is_float16_op(graph, op) for op in self._ops}

    def params(self, op: Op) -> dict[str, np.ndarray]:
        """derive_op_params(graph, op), cached."""
        p = self._params.get(op.name)
        if p is None:
            p = self._params[op.name] = derive_op_params(self.graph, op)
        return p

    def _needed(self, outputs: Sequence[Tensor]) -> list[Op]:
        needed = ops_feeding(self.graph, outputs)
        return [op for op in self._ops if id(op) in needed]

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None,
            dequantize: bool = True, on_tensor: OnTensor | None = None) -> dict[str, np.ndarray]:
        """Outputs by name: float32 when `dequantize` (real = scale * (q - zp)), else the integer codes.

        on_tensor(tensor, value) sees every computed activation (integer codes) as it is produced.
        """
        g = self.graph
        wanted = [g.tensor(n) for n in outputs] if outputs is not None else list(g.outputs)
        values: dict[int, np.ndarray] = {}
        for t in g.inputs:
            arr = fed_array(feeds, t.name, t.shape, t.type_str())
            values[id(t)] = arr.astype(t.dtype.numpy, copy=False)
        steps = self._needed(wanted)
        remaining: dict[int, int] = {}
        for op in steps:
            for t in g.inputs_of(op):
                if t is not None:
                    remaining[id(t)] = remaining.get(id(t), 0) + 1
        keep = {id(t) for t in wanted}
        for op in steps:
            ins_t = g.inputs_of(op)
            ins = [None if t is None else (t.data if t.is_const else values[id(t)]) for t in ins_t]
            outs_t = g.outputs_of(op)
            specs = [(t.shape, t.dtype.numpy) for t in outs_t]
            try:
                if self._float16[op.name]:
                    results = run_float16(op, ins, {}, specs)
                else:
                    results = integer_kernel_for(op.kind)(op, ins, self.params(op), specs)
            except NpucError:
                raise
            except Exception as exc:  # noqa: BLE001 - name the op in a user-facing error
                raise ExecutionError(f"integer kernel of {op.kind} '{op.name}' failed: {type(exc).__name__}: {exc}") from exc
            for t, r in zip(outs_t, results):
                values[id(t)] = r
                if on_tensor is not None:
                    on_tensor(t, r)
            for t in ins_t:
                if t is not None and not t.is_const:
                    remaining[id(t)] -= 1
                    if remaining[id(t)] == 0 and id(t) not in keep:
                        values.pop(id(t), None)
        result: dict[str, np.ndarray] = {}
        for t in wanted:
            v = t.data if t.is_const else values[id(t)]
            if dequantize and t.quant is not None and np.asarray(v).dtype.kind in "iu":
                v = _dequantize(v, t.quant, np.float32)
            elif dequantize:
                v = np.asarray(v, dtype=np.float32)
            result[t.name] = v
        return result


def run_quantized(graph: Graph, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None,
                  dequantize: bool = True) -> dict[str, np.ndarray]:
    """Run a quantized graph once (see QuantizedExecutor.run)."""
    return QuantizedExecutor(graph).run(feeds, outputs, dequantize)
