"""Lookup-table activations: ``q_out = lut[q_in - qmin_in]`` (256 entries for 8-bit, 65,536 for 16-bit)."""
from __future__ import annotations

import numpy as np

from npuc.backends.reference.integer_kernels import integer_kernel
from npuc.quantization.op_params import LUT_KINDS


def apply_lut(op, inputs, params, outs):
    q = inputs[0]
    qmin = int(np.iinfo(q.dtype).min)
    idx = q.astype(np.int64) - qmin if qmin else q
    return [params["lut"][idx].astype(outs[0][1])]


for _kind in LUT_KINDS:
    integer_kernel(_kind)(apply_lut)
