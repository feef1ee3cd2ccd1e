"""TFLite front-end: lower a .tflite model into npuc's IR.

TFLite activations are NHWC; npuc's IR is NCHW. Every IR value remembers how
it relates to its TFLite tensor by a permutation (`ir = tflite.transpose(perm)`):
4-D activations produced by spatial ops are NCHW (perm (0, 3, 1, 2)), others
keep the TFLite order. Ops that care about layout ask for their inputs in the
permutation they need and a Transpose (or a Reshape, when only size-1 dims
move) is inserted once per value and permutation. Weights are transposed at
import (OHWI -> OIHW), so no Transpose surrounds a convolution.

Model inputs and outputs of rank 4 are NCHW in the IR; the model's own layout
(NHWC) is recorded in `graph.meta['io_layouts']` with the permutation that
turns an IR array back into the TFLite layout. Constants stored as float16 or
as quantized integers are folded to float32. In a fully integer-quantized
model every tensor keeps its scale/zero point as a fixed encoding
(`tensor.meta['fixed_quant']`, adopted by the quantizer) and
`graph.meta['fixed_encodings']` is True.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from npuc.errors import ModelImportError, UnsupportedOpsError
from npuc.frontends.tflite_reader import TflModel, TflOperator, TflQuant, TflTensor, read_tflite
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

#: ir dim i holds TFLite dim NCHW[i]: NHWC -> NCHW
NCHW = (0, 3, 1, 2)
#: the transpose that turns an NCHW IR array back into TFLite's NHWC
TO_NHWC = (0, 2, 3, 1)

_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64")
_QUANT_INT_TYPES = {"INT8": (8, True), "UINT8": (8, False), "INT16": (16, True), "INT32": (32, True)}
_IR_TYPES = {"INT32": DType.INT32, "INT64": DType.INT64, "BOOL": DType.BOOL, "INT16": DType.INT16,
             "INT8": DType.INT8, "UINT8": DType.UINT8, "UINT16": DType.UINT16}


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def compose(src_perm: Sequence[int], dst_perm: Sequence[int]) -> tuple[int, ...]:
    """The Transpose perm that turns an array laid out as src_perm into dst_perm."""
    inv = np.argsort(np.asarray(src_perm))
    return tuple(int(inv[p]) for p in dst_perm)


@dataclass
class Value:
    """An IR tensor standing for a TFLite tensor: ir = tflite_array.transpose(perm)."""

    tensor: Tensor
    perm: tuple[int, ...]

    def source_shape(self) -> tuple[int, ...]:
        inv = np.argsort(np.asarray(self.perm))
        return tuple(self.tensor.shape[int(i)] for i in inv)


class Lowering:
    """State of one import: the TFLite model, the IR graph being built, the value map."""

    def __init__(self, model: TflModel, graph: Graph, fixed_encodings: bool) -> None:
        self.model = model
        self.graph = graph
        self.fixed_encodings = fixed_encodings
        self.values: dict[int, Value] = {}
        #: outputs of ops folded at import (DEQUANTIZE/DENSIFY of constants) -> their values
        self.folded: dict[int, np.ndarray] = {}
        #: folded tensor -> the tensor whose quantization describes it
        self.quant_source: dict[int, int] = {}
        self._converted: dict[tuple[int, tuple[int, ...]], Tensor] = {}

    # ------------------------------------------------------------- tensors
    def src(self, idx: int) -> TflTensor:
        return self.model.tensors[idx]

    def is_const(self, idx: int) -> bool:
        return idx >= 0 and idx not in self.values and (idx in self.folded or self.src(idx).is_const)

    def fold(self, op: TflOperator, value: np.ndarray, quant_from: int | None = None) -> None:
        """Bind op's output to a constant computed at import."""
        self.folded[op.outputs[0]] = value
        if quant_from is not None:
            self.quant_source[op.outputs[0]] = quant_from

    def array(self, idx: int, op: TflOperator | None = None, what: str = "operand") -> np.ndarray:
        """A constant operand as numpy: float32 for float/quantized data, raw integers otherwise."""
        if idx in self.folded:
            return self.folded[idx]
        t = self.src(idx)
        if not t.is_const:
            where = f" of {op.opcode} (operator {op.index})" if op is not None else ""
            raise ModelImportError(f"the {what}{where} must be a constant, but tensor '{t.name}' is computed")
        return to_float(t) if _is_float_data(t) else t.data

    def quant_of(self, idx: int, perm: Sequence[int] | None = None, rank: int | None = None) -> QuantParams | None:
        """The tensor's TFLite quantization as QuantParams (axis mapped through perm)."""
        while idx in self.quant_source:
            idx = self.quant_source[idx]
        t = self.src(idx)
        if t.quant is None or t.type_name not in _QUANT_INT_TYPES:
            return None
        bits, signed = _QUANT_INT_TYPES[t.type_name]
        q = t.quant
        try:
            if q.scale.size == 1:
                return QuantParams.per_tensor(float(q.scale[0]), int(q.zero_point.reshape(-1)[0]), bits, signed)
            axis = q.axis
            if perm is not None:
                if rank is not None and rank > len(t.shape):
                    axis += rank - len(t.shape)
                axis = list(perm).index(axis)
            return QuantParams.per_channel(q.scale, q.zero_point, axis, bits, signed)
        except ValueError as exc:
            raise ModelImportError(f"tensor '{t.name}' has invalid quantization: {exc}") from None

    def annotate(self, tensor: Tensor, quant: QuantParams | None) -> None:
        """Keep a TFLite encoding on an IR tensor (fully quantized models only)."""
        if quant is None or not self.fixed_encodings:
            return
        tensor.meta["fixed_quant"] = quant  # the float IR has no quant yet; quantize adopts this

    def const(self, name: str, arr: np.ndarray, quant: QuantParams | None = None) -> Tensor:
        t = self.graph.add_const(name or "const", arr)
        self.annotate(t, quant)
        return t

    def const_in_perm(self, idx: int, perm: Sequence[int], op: TflOperator | None = None) -> Tensor:
        """A constant operand broadcast to len(perm) dims (numpy rules) and laid out as perm."""
        arr = self.array(idx, op)
        rank = len(perm)
        if arr.ndim > rank:
            raise ModelImportError(f"constant '{self.src(idx).name}' has rank {arr.ndim} > {rank}")
        arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape).transpose(perm)
        return self.const(self.src(idx).name, arr, self.quant_of(idx, perm, rank))

    def value(self, idx: int, op: TflOperator | None = None) -> Value:
        """The IR value of a TFLite tensor (a constant becomes an IR constant in TFLite order)."""
        if idx in self.values:
            return self.values[idx]
        t = self.src(idx)
        if self.is_const(idx):
            arr = self.array(idx)
            v = Value(self.const(t.name, arr, self.quant_of(idx)), identity(arr.ndim))
            self.values[idx] = v
            return v
        who = f" (read by {op.opcode}, operator {op.index})" if op is not None else ""
        raise ModelImportError(f"tensor '{t.name}'{who} has no producer and is not a model input or a constant")

    def get(self, idx: int, perm: Sequence[int] | None, op: TflOperator | None = None) -> Tensor:
        """The IR tensor of TFLite tensor idx laid out as perm (None: as it is)."""
        if perm is not None and self.is_const(idx):
            return self.const_in_perm(idx, perm, op)
        v = self.value(idx, op)
        return v.tensor if perm is None else self.convert(v, tuple(perm))

    def convert(self, v: Value, perm: tuple[int, ...]) -> Tensor:
        """v's tensor re-laid out as perm; one Transpose (or Reshape) per value and layout."""
        if v.perm == perm:
            return v.tensor
        if len(perm) != len(v.perm):
            raise ModelImportError(f"internal: layout of rank {len(perm)} asked for '{v.tensor.name}'")
        key = (id(v.tensor), perm)
        if key in self._converted:
            return self._converted[key]
        tperm = compose(v.perm, perm)
        shape = tuple(v.tensor.shape[p] for p in tperm)
        suffix = "nchw" if perm == NCHW else ("nhwc" if perm == identity(4) else "t")
        name = f"{v.tensor.name}/{suffix}"
        moved = [d for d in tperm if v.tensor.shape[d] != 1]
        if moved == sorted(moved):  # only unit dims move: same memory order
            op = self.graph.add_op("Reshape", [v.tensor], {"shape": shape}, name=name, outputs=[name])
        else:
            op = self.graph.add_op("Transpose", [v.tensor], {"perm": tperm}, name=name, outputs=[name])
        out = self.graph.outputs_of(op)[0]
        out.quant, out.meta = v.tensor.quant, dict(v.tensor.meta)
        self._converted[key] = out
        return out

    # ----------------------------------------------------------------- ops
    def emit(
        self,
        op: TflOperator,
        kind: str,
        inputs: Sequence[Tensor | None],
        attrs: Mapping[str, Any] | None = None,
        perm: Sequence[int] | None = None,
        fused: int = 0,
        out: int = 0,
        fusable: bool = False,
    ) -> Tensor:
        """Add an IR op for TFLite operator `op`, bind its output `out` (laid out as perm).

        fused is TFLite's fused activation code; it becomes the fused attributes
        of Conv/ConvTranspose/Gemm (fusable=True) or an explicit op after `kind`.
        """
        idx = op.outputs[out]
        name = self.src(idx).name or f"{op.opcode.lower()}_{op.index}"
        attrs = dict(attrs or {})
        explicit = fused
        if fusable and fused in _FUSABLE:
            attrs.update(_FUSABLE[fused])
            explicit = 0
        if explicit in _IGNORED_ACTIVATIONS:
            # LiteRT's kernels clamp only for RELU/RELU6/RELU_N1_TO_1 and run TANH/SIGN_BIT as no-ops;
            # npuc follows the reference runtime so results agree with it.
            log.warning("%s (operator %d) has fused activation %s, which LiteRT ignores; ignored too",
                        op.opcode, op.index, _IGNORED_ACTIVATIONS[explicit])
            explicit = 0
        if explicit and explicit not in _ACTIVATION_OPS:
            raise ModelImportError(f"{op.opcode} (operator {op.index}) uses unknown fused activation code {explicit}")
        origin = (name,)
        first = name if not explicit else f"{name}/preact"
        try:
            ir_op = self.graph.add_op(kind, list(inputs), attrs, name=first, origin=origin, outputs=[first])
        except ValueError as exc:
            raise ModelImportError(
                f"cannot lower {op.opcode} (operator {op.index}, output '{name}') to {kind}: {exc}"
            ) from None
        result = self.graph.outputs_of(ir_op)[0]
        if explicit:
            # an int8 kernel clamps its result on the output grid: the value before the activation
            # has the output's encoding too (the activation is then a clamp)
            self.annotate(result, self.quant_of(idx))
            act_kind, act_attrs = _ACTIVATION_OPS[explicit]
            act = self.graph.add_op(act_kind, [result], act_attrs, name=name, origin=origin, outputs=[name])
            result = self.graph.outputs_of(act)[0]
        rank = len(result.shape)
        perm = identity(rank) if perm is None else tuple(perm)
        self.annotate(result, self.quant_of(idx))
        self.values[idx] = Value(result, perm)
        return result

    def alias(self, op: TflOperator, src_idx: int, out: int = 0) -> None:
        """Bind op's output to an existing value (ops that are identities in the float IR)."""
        v = self.value(src_idx, op)
        idx = op.outputs[out]
        if v.tensor.quant is None:
            self.annotate(v.tensor, self.quant_of(idx))
        self.values[idx] = v


#: fused activation code -> fused attrs of Conv/ConvTranspose/Gemm
_FUSABLE = {
    1: {"activation": "relu"},
    2: {"activation": "clip", "clip_min": -1.0, "clip_max": 1.0},
    3: {"activation": "clip", "clip_min": 0.0, "clip_max": 6.0},
}
#: fused activation code -> explicit IR op
_ACTIVATION_OPS = {
    1: ("Relu", {}),
    2: ("Clip", {"min": -1.0, "max": 1.0}),
    3: ("Clip", {"min": 0.0, "max": 6.0}),
}
#: fused activation codes the schema allows but LiteRT's kernels do not apply
_IGNORED_ACTIVATIONS = {4: "TANH", 5: "SIGN_BIT"}


def _is_float_data(t: TflTensor) -> bool:
    return t.type_name in _FLOAT_TYPES or (t.quant is not None and t.type_name in _QUANT_INT_TYPES)


def to_float(t: TflTensor) -> np.ndarray:
    """A constant tensor's values as float32 (float16 widened, quantized integers dequantized)."""
    data = t.data
    if t.type_name in _FLOAT_TYPES:
        return data.astype(np.float32)
    q: TflQuant | None = t.quant
    if q is None:
        return data.astype(np.float32)
    shape = [1] * data.ndim
    if q.scale.size > 1:
        if not 0 <= q.axis < data.ndim or data.shape[q.axis] != q.scale.size:
            raise ModelImportError(
                f"tensor '{t.name}' has {q.scale.size} scales along axis {q.axis} of shape {list(data.shape)}")
        shape[q.axis] = q.scale.size
    scale = q.scale.reshape(shape) if q.scale.size > 1 else q.scale.reshape(())
    zp = q.zero_point.reshape(shape) if q.zero_point.size > 1 else q.zero_point.reshape(-1)[:1].reshape(())
    return ((data.astype(np.float64) - zp) * scale).astype(np.float32)


def _fully_quantized(model: TflModel) -> bool:
    """True when activations are integer tensors carrying scales (a fully int8/int16 model)."""
    return any(
        not t.is_const and t.quant is not None and t.type_name in ("INT8", "UINT8", "INT16")
        for t in model.tensors
    )


def _needed_ops(model: TflModel, outputs: Sequence[int]) -> list[TflOperator]:
    producer = {o: op for op in model.operators for o in op.outputs if o >= 0}
    needed: set[int] = set()
    stack = list(outputs)
    seen: set[int] = set()
    while stack:
        idx = stack.pop()
        if idx in seen or idx < 0:
            continue
        seen.add(idx)
        op = producer.get(idx)
        if op is not None and op.index not in needed:
            needed.add(op.index)
            stack.extend(op.inputs)
    return [op for op in model.operators if op.index in needed]


def _resolve_outputs(model: TflModel, outputs: Sequence[str] | None) -> list[int]:
    if not outputs:
        return list(model.outputs)
    by_name = {t.name: t.index for t in model.tensors}
    missing = [n for n in outputs if n not in by_name]
    if missing:
        shown = ", ".join(model.tensors[i].name for i in model.outputs)
        raise ModelImportError(
            f"output(s) {missing} are not tensors of the model; its outputs are: {shown} "
            "(any intermediate tensor name is accepted)")
    return [by_name[n] for n in outputs]


def _add_inputs(lw: Lowering, input_shapes: Mapping[str, Sequence[int]] | None) -> None:
    model, graph = lw.model, lw.graph
    shapes = dict(input_shapes or {})
    names = [model.tensors[i].name for i in model.inputs]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ModelImportError(f"input_shapes names {unknown}, but the model's inputs are {names}")
    layouts = graph.meta.setdefault("io_layouts", {})
    for idx in model.inputs:
        t = model.tensors[idx]
        shape = tuple(int(d) for d in shapes.get(t.name, t.shape))
        if any(d <= 0 for d in shape):
            raise ModelImportError(
                f"input '{t.name}' has shape {list(shape)} with unknown dimensions; give input_shapes={{'{t.name}': [...]}}")
        if t.type_name in _FLOAT_TYPES or t.quant is not None:
            dtype = DType.FLOAT32
        elif t.type_name in _IR_TYPES:
            dtype = _IR_TYPES[t.type_name]
        else:
            raise ModelImportError(f"input '{t.name}' has type {t.type_name}, which npuc does not support")
        perm = NCHW if len(shape) == 4 else identity(len(shape))
        ir_shape = tuple(shape[p] for p in perm)
        tensor = graph.add_input(t.name, dtype, ir_shape, layout="NCHW" if len(shape) == 4 else None)
        lw.annotate(tensor, lw.quant_of(idx))
        lw.values[idx] = Value(tensor, perm)
        layouts[t.name] = _layout_record(perm, t.type_name)


def _layout_record(perm: tuple[int, ...], type_name: str) -> dict[str, Any]:
    nchw = perm == NCHW
    return {
        "source_layout": "NHWC" if nchw else None,
        "layout": "NCHW" if nchw else None,
        "to_source": list(TO_NHWC) if nchw else list(range(len(perm))),
        "source_dtype": type_name.lower(),
    }


def _add_outputs(lw: Lowering, outputs: Sequence[int]) -> None:
    graph = lw.graph
    layouts = graph.meta.setdefault("io_layouts", {})
    for idx in outputs:
        t = lw.model.tensors[idx]
        v = lw.value(idx)
        perm = v.perm if v.perm in (NCHW, identity(len(v.perm))) else identity(len(v.perm))
        tensor = lw.convert(v, perm)
        if graph.is_output(tensor) or any(tensor is i for i in graph.inputs) or tensor.is_const:
            op = graph.add_op("Identity", [tensor], name=f"{t.name}/out", origin=(t.name,))
            tensor = graph.outputs_of(op)[0]
        if tensor.name != t.name and t.name:
            holder = graph.tensor(t.name) if graph.has_tensor(t.name) else None
            if holder is not None and holder is not tensor:
                graph.rename_tensor(holder, graph.unique_tensor_name(f"{t.name}/src"))
            graph.rename_tensor(tensor, t.name)
        if perm == NCHW:
            tensor.layout = "NCHW"
        graph.outputs.append(tensor)
        layouts[tensor.name] = _layout_record(perm, t.type_name)


def _check_supported(model: TflModel, ops: Sequence[TflOperator], label: str) -> None:
    from npuc.frontends.summary import unsupported_message
    from npuc.frontends.tflite_inspect import find_unsupported

    found = find_unsupported(model, ops)
    if found:
        raise UnsupportedOpsError(unsupported_message(label, found))


def load_tflite(
    path_or_bytes: str | Path | bytes,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
) -> Graph:
    """Read a .tflite model and lower its main subgraph into npuc's IR (NCHW activations).

    input_shapes: {input name: shape in the model's own (NHWC) layout} to fix or
    override input dimensions. outputs: tensor names to use as outputs; every
    operator not needed for them is dropped (cuts off post-processing).
    """
    from npuc.frontends.tflite_ops import CONVERTERS

    model = read_tflite(path_or_bytes)
    name = Path(path_or_bytes).stem if isinstance(path_or_bytes, (str, Path)) else "model"
    if model.num_subgraphs > 1:
        log.info("TFLite model has %d subgraphs; importing the main one", model.num_subgraphs)
    out_idx = _resolve_outputs(model, outputs)
    ops = _needed_ops(model, out_idx)
    label = f"TFLite model '{path_or_bytes}'" if isinstance(path_or_bytes, (str, Path)) else "The TFLite model"
    _check_supported(model, ops, label)
    graph = Graph(name)
    fixed = _fully_quantized(model)
    graph.meta.update({"source_format": "tflite", "fixed_encodings": fixed})
    if model.description:
        graph.meta["source_description"] = model.description
    lw = Lowering(model, graph, fixed)
    _add_inputs(lw, input_shapes)
    for op in ops:
        try:
            CONVERTERS[op.opcode](lw, op)
        except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as exc:
            # operands or options a converter cannot make sense of: name the operator, no traceback
            log.debug("converter of %s failed", op.opcode, exc_info=True)
            out = model.tensors[op.outputs[0]].name if op.outputs and op.outputs[0] >= 0 else "?"
            raise ModelImportError(
                f"cannot lower {op.display_name} (operator {op.index}, output '{out}'): its operands or options "
                f"are inconsistent ({type(exc).__name__}: {exc})") from None
    _add_outputs(lw, out_idx)
    graph.remove_unused_tensors()
    log.info("imported TFLite model %s: %d operators -> %d IR ops", name, len(ops), len(graph))
    return graph

