"""A quantized IR graph -> a standard QDQ ONNX model (QuantizeLinear/DequantizeLinear pairs).

The exported model computes in float between Q/DQ pairs, the way ONNX
quantization tools write it (docs/qdq-export.md):

* every integer activation `t` (u8/i8/u16/i16, per-tensor `quant`) is
  `QuantizeLinear -> t_q -> DequantizeLinear -> t`: the float value named
  like the IR tensor is its dequantized copy, so every layer reads exactly the
  values npuc's integer kernels see;
* integer weights are integer initializers + DequantizeLinear (per channel
  with `axis` when the encoding is per channel), biases int32 (or their stored
  width) + DequantizeLinear; a bias stored on `s_x * s_w * 2**k` (k > 0, which
  no QDQ runtime expects) is written as its exact float values instead;
* 16-bit activations and weights use opset 21 int16/uint16 Q/DQ; 4-bit weights
  are stored as int8 initializers holding values in [-8, 7];
* float16 layers compute in float32 with a Cast to float16 and back on each
  output (the rounding npuc's float16 layers do);
* conversion ops: Quantize and Requantize are a QuantizeLinear (+ DQ),
  Dequantize is the DQ copy itself;
* model outputs are the dequantized float32 values, named like the IR outputs;
* scales are written as float32 rounded towards zero (`float32_scale_below`), except
  the weight scales of Conv/Gemm, moved by a few ulps so that the requantization
  multiplier onnxruntime derives from the float32 scales is the float32 nearest to
  npuc's Q31 multiplier (`rounding.py`);
* an Add/Sub/Mul whose encodings put results exactly on rounding ties gets a tiny
  `Add(tie_offset)` before its QuantizeLinear so ties round up as in npuc (`rounding.py`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from npuc.export.errors import ExportError
from npuc.export.onnx_builder import OnnxBuilder
from npuc.export.onnx_ops import emit_op, supported
from npuc.export.rounding import TIE_KINDS, mac_weight_scales, tie_offset
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op import Op
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor
from npuc.quantization.float32_requantization import float32_scale_below
from npuc.quantization.op_params import MAC_KINDS

log = logging.getLogger(__name__)

_CONVERSIONS = ("Quantize", "Dequantize", "Requantize", "Cast")
_BIASED = ("Conv", "ConvTranspose", "Gemm")


def exactness_note(graph: Graph) -> str | None:
    """A note for the user when the QDQ export cannot be bit-exact by construction: integer MAC layers
    with npuc's default requantization (onnxruntime requantizes them in float32; docs/qdq-export.md)."""
    macs = [op for op in graph.ops() if op.kind in MAC_KINDS
            and graph.outputs_of(op)[0].dtype.is_integer and op.attrs.get("requantization") != "float32"]
    if not macs:
        return None
    return (f"{len(macs)} MAC layer(s) use npuc's integer requantization: onnxruntime requantizes them in float32 "
            f"and may differ by one LSB on rare near-ties, which a deep model can amplify. For a bit-exact "
            f"export, compile with 'quantize(requantization=float32)' in the script (docs/qdq-export.md).")


def _storage(dtype: DType) -> np.dtype:
    """numpy type of an integer tensor in ONNX (4-bit values live in 8-bit storage)."""
    return {DType.INT4: np.dtype(np.int8), DType.UINT4: np.dtype(np.uint8)}.get(dtype, dtype.numpy)


class _QdqWriter:
    """Walks a quantized graph once, writing ONNX nodes; `vals` maps IR tensors to float32 ONNX values."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.b = OnnxBuilder(graph.name)
        self.vals: dict[int, str] = {}

    # ------------------------------------------------------------ Q/DQ pieces
    def _qparams(self, base: str, q: QuantParams, dtype: np.dtype, scales32=None) -> tuple[str, str]:
        shape = () if q.axis is None else (len(q.scale),)
        s32 = float32_scale_below(q.scale) if scales32 is None else np.asarray(scales32, np.float32)
        scale = self.b.const(f"{base}.scale", s32.reshape(shape))
        zp = self.b.const(f"{base}.zero_point", np.asarray(q.zero_point, dtype=dtype).reshape(shape))
        return scale, zp

    def _dq(self, src: str, q: QuantParams, dtype: np.dtype, out: str, base: str, scales32=None) -> str:
        scale, zp = self._qparams(base, q, dtype, scales32)
        axis = None if q.axis is None else int(q.axis)
        return self.b.node("DequantizeLinear", [src, scale, zp], [out], name=f"{base}/dq", axis=axis)[0]

    def _qdq(self, src: str, t: Tensor) -> str:
        """QuantizeLinear + DequantizeLinear of float value `src` with t's encoding; returns t's float value."""
        if t.quant is None:
            raise ExportError(f"integer tensor '{t.name}' ({t.type_str()}) has no quantization parameters")
        dtype = _storage(t.dtype)
        scale, zp = self._qparams(t.name, t.quant, dtype)
        (q,) = self.b.node("QuantizeLinear", [src, scale, zp], [self.b.fresh(f"{t.name}_q")],
                           name=f"{t.name}/q", output_dtype=None)
        return self.b.node("DequantizeLinear", [q, scale, zp], [self.b.fresh(t.name)], name=f"{t.name}/dq")[0]

    def _f16_round(self, src: str, name: str) -> str:
        (half,) = self.b.node("Cast", [src], [self.b.fresh(f"{name}_f16")], name=f"{name}/to_f16",
                              to=TensorProto.FLOAT16)
        return self.b.node("Cast", [half], [self.b.fresh(name)], name=f"{name}/to_f32", to=TensorProto.FLOAT)[0]

    # -------------------------------------------------------------- constants
    def _bias_matches(self, op: Op, bias: Tensor) -> bool:
        """True when the bias is stored on s_x * s_w[c] (the scale QDQ runtimes assume for int32 biases)."""
        x, w = self.g.inputs_of(op)[:2]
        if x is None or w is None or x.quant is None or w.quant is None or bias.quant is None:
            return False
        n = bias.size
        expected = np.broadcast_to(np.asarray(w.quant.scale, np.float64) * x.quant.scale[0], (n,))
        got = np.broadcast_to(np.asarray(bias.quant.scale, np.float64), (n,))
        return bool(np.allclose(got, expected, rtol=1e-6, atol=0))

    def _const(self, t: Tensor, op: Op, port: int) -> str:
        key = id(t)
        if key in self.vals:
            return self.vals[key]
        data = np.asarray(t.data)
        if t.dtype.is_integer and t.quant is not None:
            is_bias = op.kind in _BIASED and port == 2
            if is_bias and t.dtype is DType.INT32 and not self._bias_matches(op, t):
                real = t.quant.scale_array(data.ndim) * (data.astype(np.float64) - t.quant.zero_point_array(data.ndim))
                log.debug("bias '%s' is not on s_x * s_w: written as float", t.name)
                name = self.b.const(t.name, real.astype(np.float32))
            else:
                scales32 = None
                if op.kind in _BIASED and port == 1:  # fused requantization multiplier = npuc's, to float32
                    scales32 = mac_weight_scales(self.g, op, float32_scale_below(t.quant.scale))
                init = self.b.const(f"{t.name}_q", data.astype(_storage(t.dtype)))
                name = self._dq(init, t.quant, _storage(t.dtype), self.b.fresh(t.name), t.name, scales32)
        elif t.dtype is DType.FLOAT16:
            init = self.b.const(f"{t.name}_f16", data.astype(np.float16))
            name = self.b.node("Cast", [init], [self.b.fresh(t.name)], name=f"{t.name}/to_f32",
                               to=TensorProto.FLOAT)[0]
        else:
            name = self.b.const(t.name, data)
        self.vals[key] = name
        return name

    def _input_value(self, t: Tensor | None, op: Op, port: int) -> str | None:
        if t is None:
            return None
        if t.is_const:
            return self._const(t, op, port)
        return self.vals[id(t)]

    # ------------------------------------------------------------------- ops
    def _conversion(self, op: Op, x: str, out: Tensor) -> str:
        if op.kind in ("Quantize", "Requantize"):
            return self._qdq(x, out)
        if op.kind == "Dequantize" or out.dtype is DType.FLOAT32:
            return x  # the DQ copy already is the real value (a cast to float32 is exact)
        return self._f16_round(x, out.name)  # Dequantize/Cast to float16

    def _finish_output(self, raw: str, t: Tensor) -> str:
        if t.dtype.is_integer and t.quant is not None:
            return self._qdq(raw, t)
        if t.dtype is DType.FLOAT16:
            return self._f16_round(raw, t.name)
        return raw

    def op(self, op: Op) -> None:
        ins_t = self.g.inputs_of(op)
        ins = [self._input_value(t, op, port) for port, t in enumerate(ins_t)]
        outs_t = self.g.outputs_of(op)
        if op.kind in _CONVERSIONS:
            self.vals[id(outs_t[0])] = self._conversion(op, ins[0], outs_t[0])
            return
        direct = [not (t.dtype.is_integer and t.quant is not None) and t.dtype is not DType.FLOAT16 for t in outs_t]
        raws = [self.b.fresh(t.name if d else f"{t.name}_float") for t, d in zip(outs_t, direct)]
        weight = ins_t[1] if len(ins_t) > 1 and ins_t[1] is not None else None
        emit_op(self.b, op, ins, raws, weight_shape=None if weight is None else weight.shape)
        if op.kind in TIE_KINDS and not direct[0]:
            offset = tie_offset(self.g, op)
            if offset:  # npuc rounds exact ties up, QuantizeLinear to even: push them above the midpoint
                raws[0] = self.b.node("Add", [raws[0], self.b.const(f"{op.name}.tie_offset", np.float32(offset))],
                                      [self.b.fresh(f"{outs_t[0].name}_tie")], name=f"{op.name}/tie_break")[0]
        for t, raw in zip(outs_t, raws):
            self.vals[id(t)] = self._finish_output(raw, t)

    # ----------------------------------------------------------------- model
    def run(self) -> onnx.ModelProto:
        g, b = self.g, self.b
        bad: dict[str, list[str]] = {}
        for op in g.ops():
            if op.kind not in _CONVERSIONS and not supported(op.kind):
                bad.setdefault(op.kind, []).append(op.name)
        if bad:
            listing = "; ".join(f"{k} ({len(v)}: {', '.join(repr(n) for n in v[:3])})" for k, v in sorted(bad.items()))
            raise ExportError(f"cannot export '{g.name}' as ONNX: no ONNX form for op kind(s) {listing}")
        for t in g.inputs:
            if t.dtype.is_integer and t.quant is not None:
                dtype = _storage(t.dtype)
                b.add_input(f"{t.name}", dtype, t.shape)
                self.vals[id(t)] = self._dq(t.name, t.quant, dtype, b.fresh(f"{t.name}_dq"), t.name)
            elif t.dtype is DType.FLOAT16:
                b.add_input(t.name, np.float16, t.shape)
                self.vals[id(t)] = b.node("Cast", [t.name], [b.fresh(f"{t.name}_f32")], name=f"{t.name}/to_f32",
                                          to=TensorProto.FLOAT)[0]
            else:
                b.add_input(t.name, t.dtype.numpy, t.shape)
                self.vals[id(t)] = t.name
        for op in g.ops():
            self.op(op)
        for t in g.outputs:
            value = self.vals[id(t)]
            dtype = np.float32 if (t.dtype.is_float or t.quant is not None) else t.dtype.numpy
            if value != t.name:  # the name is taken by another value, or the value is an input
                value = b.node("Identity", [value], [b.fresh(f"{t.name}_out")], name=f"{t.name}/output")[0]
            b.add_output(value, dtype, t.shape)
        return b.model(doc=f"QDQ export of the npuc quantized model '{g.name}'", metadata=_metadata(g))


def _metadata(graph: Graph) -> dict[str, str]:
    meta = {"npuc_export": "qdq"}
    if "io_layouts" in graph.meta:
        meta["io_layouts"] = json.dumps(graph.meta["io_layouts"], sort_keys=True, default=str)
    if "source_format" in graph.meta:
        meta["source_format"] = str(graph.meta["source_format"])
    return meta


def export_qdq_onnx(graph: Graph) -> onnx.ModelProto:
    """The quantized IR graph `graph` as a QDQ ONNX model (opset 21). Raises ExportError for kinds without ONNX form."""
    return _QdqWriter(graph).run()


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write `model` to `path` atomically (folder created); returns the path."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"ONNX output '{path}' is a folder; give a file name like model.qdq.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(model.SerializeToString())
        tmp.replace(path)
    except OSError as exc:
        raise ExportError(f"cannot write '{path}': {exc.strerror}") from None
    return path
