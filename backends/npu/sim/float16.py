"""float16 layers (docs/numerics.md section 9): read float16, compute in float32, round once to float16.

The float32 result of a layer depends on the order of its float32 operations,
so bit-exactness with the reference is only possible with the same operation
order: these layers run the float kernel of their op kind (the one float
definition npuc has, `npuc.backends.reference.kernels`) on float16 inputs
widened exactly to float32, then round to float16 (round half to even). The
integer paths, not these, are the simulator's own numba kernels.
"""
from __future__ import annotations

import numpy as np

from npuc.backends.npu.sim.context import LayerContext, Step
from npuc.errors import ExecutionError, NpucError
from npuc.ir.op import Op


def prepare_float16(ctx: LayerContext) -> Step:
    from npuc.backends.reference.kernels import FLOAT_KERNELS

    fn = FLOAT_KERNELS.get(ctx.kind)
    ctx.check.need(fn is not None, f"no float kernel for a float16 {ctx.kind} layer")
    op = Op(ctx.layer.name, ctx.kind, dict(ctx.attrs), tuple(ctx.layer.origin))
    ins = ctx.inputs
    wide = [None if a is None else (np.empty(a.shape, np.float32) if a.dtype == np.float16 else None) for a in ins]
    const_wide = {i: ins[i].astype(np.float32) for i in range(len(ins))
                  if ctx.constant(i) is not None and ins[i].dtype == np.float16}
    outs = ctx.outputs
    name = ctx.layer.name

    def step() -> None:
        args = []
        for i, a in enumerate(ins):
            if i in const_wide:
                args.append(const_wide[i])
            elif wide[i] is not None:
                np.copyto(wide[i], a)
                args.append(wide[i])
            else:
                args.append(a)
        try:
            with np.errstate(all="ignore"):
                results = fn(op, args)
        except NpucError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the layer in a user-facing error
            raise ExecutionError(f"float16 layer '{name}' ({op.kind}) failed: {type(exc).__name__}: {exc}") from None
        if len(results) != len(outs):
            raise ExecutionError(f"float16 layer '{name}' gave {len(results)} results for {len(outs)} outputs")
        for r, o in zip(results, outs):
            r = np.asarray(r)
            if r.shape != o.shape:
                raise ExecutionError(f"float16 layer '{name}' gave shape {r.shape}, the binary declares {o.shape}")
            if o.dtype == np.float16:
                np.copyto(o, r.astype(np.float32, copy=False).astype(np.float16))
            else:
                np.copyto(o, r, casting="unsafe")
    return step
