"""Run one layer of the quantized graph on float activations: quantize inputs, integer kernel, dequantize.

This is the "only layer n quantized" building block: the layer's activation
inputs are taken from the float run (walking back through conversion ops to
the float tensor they convert), quantized with the encodings the quantized
graph gives them, the layer runs its integer (or float16) kernel with the
parameters `derive_op_params` derives, and its outputs are dequantized so the
float model can continue from them.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from npuc.analysis.layers import CONVERSION_KINDS, AnalysisLayer
from npuc.backends.reference.integer_kernels import integer_kernel_for
from npuc.backends.reference.integer_kernels.float16 import run_float16
from npuc.errors import ExecutionError, NpucError
from npuc.ir.graph import Graph
from npuc.ir.tensor import Tensor
from npuc.quantization.op_params import derive_op_params, is_float16_op
from npuc.quantization.schemes import dequantize, quantize


def float_source(q: Graph, tensor: Tensor) -> Tensor:
    """The tensor a chain of conversion ops started from (the tensor itself when none produces it)."""
    seen = 0
    while True:
        op = q.producer(tensor)
        if op is None or op.kind not in CONVERSION_KINDS:
            return tensor
        tensor = q.inputs_of(op)[0]
        seen += 1
        if seen > 64:  # conversions never chain this long; a cycle would be an IR bug
            raise NpucError(f"conversion chain above '{tensor.name}' does not end")


def to_layer_input(value: np.ndarray, tensor: Tensor) -> np.ndarray:
    """A float activation in the type the quantized graph gives `tensor` (integer codes, float16, float32)."""
    if tensor.quant is not None and tensor.dtype.is_integer:
        return quantize(value, tensor.quant)
    return np.asarray(value, dtype=tensor.dtype.numpy)


def to_float(value: np.ndarray, tensor: Tensor) -> np.ndarray:
    """A quantized-graph value as float32 (dequantized integer codes, widened float16)."""
    arr = np.asarray(value)
    if tensor.quant is not None and arr.dtype.kind in "iu":
        return dequantize(arr, tensor.quant, np.float32)
    return arr.astype(np.float32, copy=False)


class SingleLayerRunner:
    """Runs single layers of a quantized graph; op parameters are derived once and cached."""

    def __init__(self, q: Graph) -> None:
        self.q = q
        self._params: dict[str, dict[str, np.ndarray]] = {}
        self._sources: dict[str, list[tuple[Tensor | None, str | None]]] = {}

    def _inputs(self, layer: AnalysisLayer) -> list[tuple[Tensor | None, str | None]]:
        """(quantized input tensor, float tensor name to read) per input port."""
        got = self._sources.get(layer.name)
        if got is None:
            op = self.q.op(layer.name)
            got = []
            for t in self.q.inputs_of(op):
                if t is None or t.is_const:
                    got.append((t, None))
                else:
                    got.append((t, float_source(self.q, t).name))
            self._sources[layer.name] = got
        return got

    def run(self, layer: AnalysisLayer, float_values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{output tensor name: dequantized float32 value} of `layer` run quantized on float inputs."""
        q = self.q
        op = q.op(layer.name)
        ins = []
        for tensor, source in self._inputs(layer):
            if tensor is None:
                ins.append(None)
            elif source is None:
                ins.append(tensor.data)
            else:
                if source not in float_values:
                    raise ExecutionError(
                        f"layer '{layer.name}': input '{tensor.name}' comes from '{source}', which the float "
                        "model does not compute")
                ins.append(to_layer_input(float_values[source], tensor))
        outs_t = q.outputs_of(op)
        specs = [(t.shape, t.dtype.numpy) for t in outs_t]
        try:
            if is_float16_op(q, op):
                results = run_float16(op, ins, {}, specs)
            else:
                params = self._params.get(op.name)
                if params is None:
                    params = self._params[op.name] = derive_op_params(q, op)
                results = integer_kernel_for(op.kind)(op, ins, params, specs)
        except NpucError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the layer in a user-facing error
            raise ExecutionError(f"integer kernel of {op.kind} '{op.name}' failed: {type(exc).__name__}: {exc}") from exc
        return {t.name: to_float(r, t) for t, r in zip(outs_t, results)}
