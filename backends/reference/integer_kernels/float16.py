"""Float16 layers: the float kernel computes in float32 on the float16 inputs (exact widening) and the
result is rounded once to float16 (round half to even), as integer_ops.round_to_float16 states."""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.kernels import kernel_for
from npuc.quantization.integer_ops import round_to_float16


def run_float16(op, inputs, params, outs):
    """Evaluate a float16 layer; integer inputs (indices) pass through unchanged."""
    ins = [None if a is None else (a.astype(np.float32) if a.dtype == np.float16 else a) for a in inputs]
    with np.errstate(all="ignore"):
        results = kernel_for(op.kind)(op, ins)
    return [round_to_float16(r) if spec[1] == np.float16 else np.asarray(r).astype(spec[1])
            for r, spec in zip(results, outs)]
