"""Test helper: run one IR op with npuc's reference executor and the equivalent ONNX node in onnxruntime.

`check_op(kind, inputs, attrs)` builds a tiny IR graph with Graph.add_op (ports
listed in `const` become constants, the others graph inputs), builds the
equivalent one-node ONNX model with onnx.helper from the IR attribute
semantics of ir/ops/*.py, runs both and asserts
max|npuc - ort| <= 1e-4 * max(1, range of the output) (exact for int/bool).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from npuc.backends.reference.executor import run_graph
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

OPSET = 18
#: Resize-19 adds half_pixel_symmetric
OPSET_FOR = {"Resize": 19}

_ONNX_TYPE = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}

UNARY_SAME_NAME = {"Relu", "Sigmoid", "HardSwish", "Tanh", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs",
                   "Erf", "Floor", "Ceil", "Identity", "Dropout", "GlobalAveragePool", "GlobalMaxPool"}
BINARY_SAME_NAME = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "Where", "PRelu"}


class _Builder:
    """Accumulates ONNX nodes and initializers for one IR op."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, value: Any, dtype=np.int64) -> str:
        self._n += 1
        name = f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **attrs) -> None:
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), **attrs))

    def activation(self, attrs: dict, src: str, dst: str) -> None:
        """The fused activation of Conv/Gemm/MatMul as a following ONNX node (or an Identity)."""
        act = attrs.get("activation")
        if act is None:
            self.node("Identity", [src], [dst])
        elif act == "relu":
            self.node("Relu", [src], [dst])
        else:
            lo = "" if attrs.get("clip_min") is None else self.const(attrs["clip_min"], np.float32)
            hi = "" if attrs.get("clip_max") is None else self.const(attrs["clip_max"], np.float32)
            self.node("Clip", [src, lo, hi], [dst])


def _onnx_nodes(kind: str, attrs: dict, ins: list[str], outs: list[str], arrays: list) -> _Builder:
    b = _Builder()
    a = attrs
    if kind in ("Conv", "ConvTranspose"):
        w = arrays[1]
        extra = {}
        if kind == "ConvTranspose" and "output_padding" in a:
            extra["output_padding"] = list(a["output_padding"])
        b.node(kind, ins, ["pre"], kernel_shape=list(w.shape[2:]), strides=list(a.get("strides", (1, 1))),
               pads=list(a.get("pads", (0, 0, 0, 0))), dilations=list(a.get("dilations", (1, 1))),
               group=int(a.get("group", 1)), **extra)
        b.activation(a, "pre", outs[0])
    elif kind == "Gemm":
        b.node("Gemm", ins, ["pre"], transB=1)
        b.activation(a, "pre", outs[0])
    elif kind == "MatMul":
        b.node("MatMul", ins, ["pre"])
        b.activation(a, "pre", outs[0])
    elif kind in UNARY_SAME_NAME or kind in BINARY_SAME_NAME:
        b.node(kind, ins, outs)
    elif kind == "Clip":
        lo = "" if a.get("min") is None else b.const(a["min"], arrays[0].dtype)
        hi = "" if a.get("max") is None else b.const(a["max"], arrays[0].dtype)
        b.node("Clip", [ins[0], lo, hi], outs)
    elif kind == "LeakyRelu":
        b.node(kind, ins, outs, alpha=float(a.get("alpha", 0.01)))
    elif kind == "HardSigmoid":
        b.node(kind, ins, outs, alpha=float(a.get("alpha", 0.2)), beta=float(a.get("beta", 0.5)))
    elif kind == "SiLU":
        b.node("Sigmoid", ins, ["sig"])
        b.node("Mul", [ins[0], "sig"], outs)
    elif kind == "Cast":
        b.node("Cast", ins, outs, to=_ONNX_TYPE[a["to"].numpy])
    elif kind == "BatchNormalization":
        b.node(kind, ins, outs, epsilon=float(a.get("epsilon", 1e-5)))
    elif kind in ("Softmax", "LogSoftmax"):
        b.node(kind, ins, outs, axis=int(a.get("axis", -1)))
    elif kind in ("MaxPool", "AveragePool"):
        extra = {}
        if kind == "MaxPool":
            extra["dilations"] = list(a.get("dilations", (1, 1)))
        else:
            extra["count_include_pad"] = int(a.get("count_include_pad", False))
        b.node(kind, ins, outs, kernel_shape=list(a["kernel"]), strides=list(a.get("strides", (1, 1))),
               pads=list(a.get("pads", (0, 0, 0, 0))), ceil_mode=int(a.get("ceil_mode", False)), **extra)
    elif kind.startswith("Reduce"):
        axes = [] if a.get("axes") is None else [b.const(a["axes"])]
        b.node(kind, ins + axes, outs, keepdims=int(a.get("keepdims", True)))
    elif kind == "Reshape":
        b.node(kind, [ins[0], b.const(a["shape"])], outs)
    elif kind == "Transpose":
        b.node(kind, ins, outs, perm=list(a["perm"]))
    elif kind == "Concat":
        b.node(kind, ins, outs, axis=int(a["axis"]))
    elif kind == "Split":
        b.node(kind, [ins[0], b.const(a["split"])], outs, axis=int(a.get("axis", 0)))
    elif kind == "Slice":
        extra = []
        if a.get("axes") is not None or a.get("steps") is not None:
            extra.append(b.const(a["axes"] if a.get("axes") is not None else range(len(a["starts"]))))
        if a.get("steps") is not None:
            extra.append(b.const(a["steps"]))
        b.node(kind, [ins[0], b.const(a["starts"]), b.const(a["ends"])] + extra, outs)
    elif kind == "Pad":
        mode = a.get("mode", "constant")
        value = [b.const(a.get("value", 0.0), arrays[0].dtype)] if mode == "constant" else []
        b.node(kind, [ins[0], b.const(a["pads"])] + value, outs, mode=mode)
    elif kind == "Resize":
        b.node(kind, [ins[0], "", "", b.const(a["size"])], outs, mode=a.get("mode", "nearest"),
               coordinate_transformation_mode=a.get("coordinate_transformation_mode", "half_pixel"),
               nearest_mode=a.get("nearest_mode", "round_prefer_floor"))
    elif kind == "Gather":
        b.node(kind, ins, outs, axis=int(a.get("axis", 0)))
    elif kind == "Shape":
        extra = {"start": int(a.get("start", 0))}
        if a.get("end") is not None:
            extra["end"] = int(a["end"])
        b.node(kind, ins, outs, **extra)
    elif kind == "Expand":
        b.node(kind, [ins[0], b.const(a["shape"])], outs)
    elif kind == "Tile":
        b.node(kind, [ins[0], b.const(a["repeats"])], outs)
    elif kind == "DepthToSpace":
        b.node(kind, ins, outs, blocksize=int(a["blocksize"]), mode=a.get("mode", "DCR"))
    elif kind == "SpaceToDepth":
        b.node(kind, ins, outs, blocksize=int(a["blocksize"]))
    else:
        raise NotImplementedError(f"no ONNX equivalent written for IR kind {kind}")
    return b


def run_onnxruntime(kind: str, arrays: Sequence[np.ndarray | None], attrs: dict, n_outputs: int) -> list[np.ndarray]:
    """Run the ONNX equivalent of one IR op in onnxruntime (every present input fed as a graph input)."""
    names = [f"in{i}" if a is not None else "" for i, a in enumerate(arrays)]
    while names and names[-1] == "":
        names.pop()
    outs = [f"out{i}" for i in range(n_outputs)]
    b = _onnx_nodes(kind, attrs, names, outs, list(arrays))
    graph_inputs = [helper.make_tensor_value_info(n, _ONNX_TYPE[a.dtype], list(a.shape))
                    for n, a in zip(names, arrays) if a is not None]
    graph_outputs = [helper.make_empty_tensor_value_info(o) for o in outs]
    graph = helper.make_graph(b.nodes, f"one_{kind}", graph_inputs, graph_outputs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET_FOR.get(kind, OPSET))])
    model.ir_version = 9
    feeds = {n: a for n, a in zip(names, arrays) if a is not None}
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(outs, feeds)


def run_npuc(kind: str, arrays: Sequence[np.ndarray | None], attrs: dict,
             const: Sequence[int] = ()) -> list[np.ndarray]:
    """Build a one-op IR graph (ports in `const` as constants) and run it with the reference executor."""
    g = Graph(f"one_{kind}")
    tensors = []
    feeds = {}
    for i, a in enumerate(arrays):
        if a is None:
            tensors.append(None)
        elif i in const:
            tensors.append(g.add_const(f"c{i}", a))
        else:
            tensors.append(g.add_input(f"in{i}", DType.from_numpy(a.dtype), a.shape))
            feeds[f"in{i}"] = a
    op = g.add_op(kind, tensors, attrs)
    g.outputs.extend(g.outputs_of(op))
    result = run_graph(g, feeds)
    return [result[t.name] for t in g.outputs]


def assert_close(got: np.ndarray, want: np.ndarray, what: str = "") -> None:
    """max abs error <= 1e-4 * max(1, output range); integer and bool outputs must match exactly."""
    assert got.shape == want.shape, f"{what}: shape {got.shape} != onnxruntime {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != onnxruntime {want.dtype}"
    if not np.issubdtype(want.dtype, np.floating):
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite], want[~finite]), f"{what}: inf values differ"
    if not finite.any():
        return
    g, w = got[finite].astype(np.float64), want[finite].astype(np.float64)
    span = float(w.max() - w.min())
    err = float(np.max(np.abs(g - w)))
    assert err <= 1e-4 * max(1.0, span), f"{what}: max abs error {err:.3g} (output range {span:.3g})"


def check_op(kind: str, arrays: Sequence[np.ndarray | None], attrs: dict | None = None,
             const: Sequence[int] = ()) -> list[np.ndarray]:
    """Compare npuc's kernel for one op with onnxruntime; returns npuc's outputs."""
    attrs = dict(attrs or {})
    got = run_npuc(kind, arrays, attrs, const)
    want = run_onnxruntime(kind, arrays, attrs, len(got))
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, f"{kind} {attrs} output {i}")
    return got


def rand(*shape: int, seed: int = 0, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Deterministic float32 test data (normal, or uniform in [low, high))."""
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, size=shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)
