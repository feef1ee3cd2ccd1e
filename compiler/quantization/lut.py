"""Lookup tables for activations on quantized inputs (docs/numerics.md, "LUT activations").

A table has one entry per input integer (256 for 8-bit, 65,536 for 16-bit inputs),
indexed by ``q - qmin_in``. Entry ``q`` is ``quantize(f(s_in * (q - zp_in)), qp_out)``:
the float math is numpy float64, the float->int step is round-half-to-even with
saturation. Tables are built once at compile time and stored in the binary, so the
reference executor and the simulator share them bit for bit.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.quant_params import QuantParams
from npuc.quantization.schemes import quantize

#: Largest input width a table may be indexed by.
MAX_LUT_BITS = 16


def lut_inputs(qp_in: QuantParams) -> np.ndarray:
    """The real input of every table entry, ``s_in * (q - zp_in)`` for q = qmin..qmax (float64)."""
    if qp_in.is_per_channel:
        raise QuantizationError("lookup-table activations need per-tensor input QuantParams")
    if qp_in.bits > MAX_LUT_BITS:
        raise QuantizationError(f"lookup tables support inputs of at most {MAX_LUT_BITS} bits, got {qp_in.bits}")
    q = np.arange(qp_in.qmin, qp_in.qmax + 1, dtype=np.int64)
    return qp_in.scale[0] * (q - qp_in.zero_point[0]).astype(np.float64)


def build_lut(fn: Callable[[np.ndarray], np.ndarray], qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table of ``quantize(fn(x), qp_out)`` over every quantized input; fn is vectorised float64 -> float64."""
    if qp_out.is_per_channel:
        raise QuantizationError("lookup-table activations need per-tensor output QuantParams")
    x = lut_inputs(qp_in)
    with np.errstate(over="ignore"):
        y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape:
        raise QuantizationError(f"LUT function returned shape {y.shape} for {x.shape} inputs")
    if np.isnan(y).any():
        raise QuantizationError("LUT function returned NaN")
    return quantize(y, qp_out)


def apply_lut(q: np.ndarray, table: np.ndarray, qp_in: QuantParams) -> np.ndarray:
    """Look every input integer up: ``table[q - qmin_in]``."""
    qa = np.asarray(q).astype(np.int64)
    if table.shape != (qp_in.qmax - qp_in.qmin + 1,):
        raise QuantizationError(f"table has {table.shape} entries, input type needs {qp_in.qmax - qp_in.qmin + 1}")
    if qa.size and (int(qa.min()) < qp_in.qmin or int(qa.max()) > qp_in.qmax):
        raise QuantizationError("LUT input outside its integer range")
    return table[qa - qp_in.qmin]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x)."""
    return x * sigmoid(x)


def hard_sigmoid(x: np.ndarray, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    """ONNX HardSigmoid: max(0, min(1, alpha*x + beta))."""
    return np.clip(alpha * x + beta, 0.0, 1.0)


def hard_swish(x: np.ndarray) -> np.ndarray:
    """ONNX HardSwish: x * max(0, min(1, x/6 + 1/2))."""
    return x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def sigmoid_lut(qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table for Sigmoid."""
    return build_lut(sigmoid, qp_in, qp_out)


def tanh_lut(qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table for Tanh."""
    return build_lut(np.tanh, qp_in, qp_out)


def silu_lut(qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table for SiLU / Swish (x * sigmoid(x))."""
    return build_lut(silu, qp_in, qp_out)


def hard_swish_lut(qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table for HardSwish."""
    return build_lut(hard_swish, qp_in, qp_out)


def hard_sigmoid_lut(qp_in: QuantParams, qp_out: QuantParams, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    """Table for HardSigmoid (ONNX defaults alpha=0.2, beta=0.5)."""
    return build_lut(lambda x: hard_sigmoid(x, alpha, beta), qp_in, qp_out)


def leaky_relu_lut(qp_in: QuantParams, qp_out: QuantParams, alpha: float = 0.01) -> np.ndarray:
    """Table for LeakyRelu."""
    return build_lut(lambda x: np.where(x >= 0, x, alpha * x), qp_in, qp_out)


def exp_lut(qp_in: QuantParams, qp_out: QuantParams) -> np.ndarray:
    """Table for a plain Exp activation (softmax uses `softmax.exp_table` instead)."""
    return build_lut(np.exp, qp_in, qp_out)


#: Activation name -> table builder (name, qp_in, qp_out) as the quantize pass looks them up.
LUT_BUILDERS: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": sigmoid_lut,
    "tanh": tanh_lut,
    "silu": silu_lut,
    "hard_swish": hard_swish_lut,
    "hard_sigmoid": hard_sigmoid_lut,
    "leaky_relu": leaky_relu_lut,
    "exp": exp_lut,
}
