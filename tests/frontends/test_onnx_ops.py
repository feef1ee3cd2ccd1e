"""Every supported ONNX op: a minimal model per variant, imported and compared with onnxruntime.

Each case is checked twice: the imported IR (op kinds, attributes, verifier) on
its own, and the reference executor's output against onnxruntime
(max abs error <= 1e-4 * max(1, output range)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from onnx import TensorProto, helper

from npuc.frontends.onnx import load_onnx
from npuc.frontends.onnx_support import supported_op_types
from npuc.ir.graph import Graph
from npuc.ir.verify import find_problems
from onnx_testing import In, import_and_compare, make_model

F32 = np.float32
I64 = np.int64


def n(op: str, ins: list[str], outs: list[str] | None = None, **attrs):
    return helper.make_node(op, ins, outs or ["y"], **attrs)


@dataclass
class Case:
    id: str
    nodes: list
    inputs: dict[str, In]
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=lambda: {"y": F32})
    opset: int = 13
    kinds: list[str] | None = None  # the IR op kinds expected, in any order
    check: Callable[[Graph], None] | None = None

    def model(self):
        return make_model(self.nodes, self.inputs, self.outputs, self.inits, self.opset)


def x(*shape, **kw) -> dict[str, In]:
    return {"x": In(shape, **kw)}


def w(*shape, seed=1, low=-1.0, high=1.0, dtype=F32) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).uniform(low, high, shape).astype(dtype)


def ints(*v) -> np.ndarray:
    return np.array(v, dtype=I64)


def attr_is(kind: str, **expected):
    def check(g: Graph) -> None:
        ops = [op for op in g.ops() if op.kind == kind]
        assert ops, f"no {kind} op"
        for key, value in expected.items():
            assert ops[0].attrs[key] == value, f"{kind}.{key} = {ops[0].attrs[key]!r}, expected {value!r}"
    return check


CASES: list[Case] = []


def case(*args, **kwargs) -> None:
    CASES.append(Case(*args, **kwargs))


# ---------------------------------------------------------------- unary / activations
for _op, _kw in [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Neg", {}), ("Abs", {}), ("Erf", {}),
                 ("Floor", {}), ("Ceil", {}), ("Identity", {}), ("Log", {"low": 0.1}), ("Sqrt", {"low": 0.0}),
                 ("Reciprocal", {"low": 0.5})]:
    case(f"{_op}", [n(_op, ["x"])], x(2, 3, 4, 5, **_kw), kinds=[_op])
case("HardSwish", [n("HardSwish", ["x"])], x(2, 3, 4, 5, low=-5, high=5), opset=14, kinds=["HardSwish"])
case("Dropout-11", [n("Dropout", ["x"], ["y", "mask"], ratio=0.3)], x(2, 8), opset=11, kinds=["Dropout"])
case("Dropout-13-ratio-input", [n("Dropout", ["x", "r"])], x(2, 8), {"r": np.array(0.5, F32)}, kinds=["Dropout"])
case("LeakyRelu", [n("LeakyRelu", ["x"], alpha=0.1)], x(2, 3, 4, 5), kinds=["LeakyRelu"],
     check=attr_is("LeakyRelu", alpha=pytest.approx(0.1)))
case("HardSigmoid", [n("HardSigmoid", ["x"], alpha=0.25, beta=0.4)], x(2, 3, 4, 5, low=-5, high=5),
     kinds=["HardSigmoid"], check=attr_is("HardSigmoid", alpha=0.25, beta=pytest.approx(0.4)))
case("PRelu", [n("PRelu", ["x", "s"])], x(2, 3, 4, 5), {"s": w(3, 1, 1)}, kinds=["PRelu"])
case("Clip-6-attrs", [n("Clip", ["x"], min=-1.0, max=1.5)], x(2, 3, 4, 5), opset=6, kinds=["Clip"],
     check=attr_is("Clip", min=-1.0, max=1.5))
case("Clip-11-inputs", [n("Clip", ["x", "lo", "hi"])], x(2, 3, 4, 5),
     {"lo": np.array(-0.5, F32), "hi": np.array(0.75, F32)}, opset=11, check=attr_is("Clip", min=-0.5, max=0.75))
case("Clip-13-min-only", [n("Clip", ["x", "lo"])], x(2, 3, 4, 5), {"lo": np.array(0.0, F32)},
     check=attr_is("Clip", min=0.0, max=None))
case("Clip-13-max-only", [n("Clip", ["x", "", "hi"])], x(2, 3, 4, 5), {"hi": np.array(0.5, F32)},
     check=attr_is("Clip", min=None, max=0.5))
case("Relu6-via-Clip", [n("Clip", ["x", "lo", "hi"])], x(2, 3, 4, 5, low=-8, high=8),
     {"lo": np.array(0.0, F32), "hi": np.array(6.0, F32)}, opset=12, check=attr_is("Clip", min=0.0, max=6.0))

# ---------------------------------------------------------------- binary / variadic / logic
case("Add-broadcast", [n("Add", ["x", "b"])], x(2, 3, 4, 5), {"b": w(3, 1, 1)}, kinds=["Add"])
case("Sub-two-inputs", [n("Sub", ["x", "z"])], {"x": In((2, 3, 4, 5)), "z": In((5,))}, kinds=["Sub"])
case("Mul-scalar", [n("Mul", ["x", "s"])], x(2, 3, 4, 5), {"s": np.array(1.7, F32)}, kinds=["Mul"])
case("Div", [n("Div", ["x", "z"])], {"x": In((2, 3, 4, 5)), "z": In((1, 3, 1, 5), low=0.5, high=2)}, kinds=["Div"])
case("Pow", [n("Pow", ["x", "e"])], x(2, 3, 4, 5, low=0.1), {"e": np.array(2.0, F32)}, kinds=["Pow"])
case("Equal-int", [n("Equal", ["x", "z"])], {"x": In((4, 5), I64, 0, 3), "z": In((5,), I64, 0, 3)},
     outputs={"y": np.bool_}, kinds=["Equal"])
case("Less", [n("Less", ["x", "z"])], {"x": In((4, 5)), "z": In((4, 5))}, outputs={"y": np.bool_}, kinds=["Less"])
case("Greater", [n("Greater", ["x", "z"])], {"x": In((4, 5)), "z": In((1, 5))}, outputs={"y": np.bool_},
     kinds=["Greater"])
case("Where", [n("Where", ["c", "x", "z"])], {"c": In((4, 5), np.bool_), "x": In((4, 5)), "z": In((1, 5))},
     kinds=["Where"])
case("Max-variadic", [n("Max", ["x", "z", "m"])], {"x": In((4, 5)), "z": In((4, 5)), "m": In((5,))},
     kinds=["Max", "Max"])
case("Min-variadic", [n("Min", ["x", "z"])], {"x": In((4, 5)), "z": In((4, 5))}, kinds=["Min"])
case("Max-single", [n("Max", ["x"])], x(4, 5), kinds=["Identity"])
case("Sum-variadic", [n("Sum", ["x", "z", "m"])], {"x": In((4, 5)), "z": In((4, 5)), "m": In((4, 5))},
     kinds=["Add", "Add"])
case("Cast-float-to-int", [n("Cast", ["x"], to=TensorProto.INT32)], x(4, 5, low=-9, high=9),
     outputs={"y": np.int32}, kinds=["Cast"])
case("Cast-int-to-float", [n("Cast", ["x"], to=TensorProto.FLOAT)], x(4, 5, dtype=I64, low=-5, high=5),
     kinds=["Cast"])

# ---------------------------------------------------------------- softmax / normalization
case("Softmax-11-flatten-axis1", [n("Softmax", ["x"], axis=1)], x(2, 3, 4), opset=11,
     kinds=["Reshape", "Softmax", "Reshape"])
case("Softmax-11-default-axis", [n("Softmax", ["x"])], x(2, 3), opset=11, kinds=["Softmax"])
case("Softmax-11-last-axis", [n("Softmax", ["x"], axis=-1)], x(2, 3, 4), opset=11, kinds=["Softmax"])
case("Softmax-13-axis1", [n("Softmax", ["x"], axis=1)], x(2, 3, 4), kinds=["Softmax"], check=attr_is("Softmax", axis=1))
case("LogSoftmax-13", [n("LogSoftmax", ["x"])], x(2, 3, 4), kinds=["LogSoftmax"])
case("LogSoftmax-11-axis0", [n("LogSoftmax", ["x"], axis=0)], x(2, 3), opset=11,
     kinds=["Reshape", "LogSoftmax", "Reshape"])
case("BatchNormalization-9", [n("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)], x(2, 3, 4, 5),
     {"s": w(3), "b": w(3, seed=2), "m": w(3, seed=3), "v": w(3, seed=4, low=0.5, high=2)}, opset=9,
     kinds=["BatchNormalization"])
case("BatchNormalization-15", [n("BatchNormalization", ["x", "s", "b", "m", "v"])], x(2, 3, 4, 5),
     {"s": w(3), "b": w(3, seed=2), "m": w(3, seed=3), "v": w(3, seed=4, low=0.5, high=2)}, opset=15,
     kinds=["BatchNormalization"])
case("LayerNormalization-17", [n("LayerNormalization", ["x", "g", "b"], axis=-1, epsilon=1e-5)], x(2, 6, 8),
     {"g": w(8), "b": w(8, seed=2)}, opset=17)
case("Gelu-20", [n("Gelu", ["x"])], x(2, 3, 8, low=-4, high=4), opset=20)

# ---------------------------------------------------------------- convolutions
_cw = w(4, 3, 3, 3)
case("Conv-pads-bias", [n("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1])], x(1, 3, 8, 9), {"w": _cw, "b": w(4)},
     kinds=["Conv"], check=attr_is("Conv", pads=(1, 1, 1, 1)))
case("Conv-asymmetric-pads-stride-dilation", [n("Conv", ["x", "w"], pads=[0, 1, 2, 1], strides=[2, 1],
                                                dilations=[1, 2])], x(1, 3, 9, 10), {"w": _cw},
     check=attr_is("Conv", pads=(0, 1, 2, 1), strides=(2, 1), dilations=(1, 2)))
case("Conv-grouped", [n("Conv", ["x", "w"], group=2, pads=[1, 1, 1, 1])], x(1, 4, 6, 6), {"w": w(6, 2, 3, 3)},
     check=attr_is("Conv", group=2))
case("Conv-depthwise", [n("Conv", ["x", "w", "b"], group=4, kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
     x(1, 4, 6, 7), {"w": w(4, 1, 3, 3), "b": w(4)}, check=attr_is("Conv", group=4))
case("Conv-auto-SAME_UPPER", [n("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2])], x(1, 3, 9, 8),
     {"w": _cw}, check=attr_is("Conv", pads=(1, 0, 1, 1)))
case("Conv-auto-SAME_LOWER", [n("Conv", ["x", "w"], auto_pad="SAME_LOWER", strides=[2, 2])], x(1, 3, 9, 8),
     {"w": _cw}, check=attr_is("Conv", pads=(1, 1, 1, 0)))
case("Conv-auto-VALID", [n("Conv", ["x", "w"], auto_pad="VALID")], x(1, 3, 7, 7), {"w": _cw},
     check=attr_is("Conv", pads=(0, 0, 0, 0)))
case("Conv-1d", [n("Conv", ["x", "w", "b"], pads=[1, 1], strides=[2])], x(1, 3, 11), {"w": w(4, 3, 3), "b": w(4)},
     kinds=["Reshape", "Conv", "Reshape"])
case("ConvTranspose-stride2-pads-outpad", [n("ConvTranspose", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1],
                                             output_padding=[1, 1])], x(1, 4, 5, 6), {"w": w(4, 3, 3, 3), "b": w(3)},
     kinds=["ConvTranspose"])
case("ConvTranspose-output_shape", [n("ConvTranspose", ["x", "w"], strides=[2, 2], output_shape=[10, 12])],
     x(1, 4, 5, 6), {"w": w(4, 3, 3, 3)})
case("ConvTranspose-auto-SAME_UPPER", [n("ConvTranspose", ["x", "w"], strides=[2, 2], auto_pad="SAME_UPPER")],
     x(1, 4, 5, 6), {"w": w(4, 3, 3, 3)})
case("ConvTranspose-group-dilation", [n("ConvTranspose", ["x", "w"], group=2, dilations=[2, 1], strides=[1, 2])],
     x(1, 4, 5, 6), {"w": w(4, 2, 3, 3)})
case("ConvTranspose-k2s2", [n("ConvTranspose", ["x", "w", "b"], strides=[2, 2], kernel_shape=[2, 2])], x(1, 8, 4, 4),
     {"w": w(8, 2, 2, 2), "b": w(2)})

# ---------------------------------------------------------------- dense
case("Gemm-transB-bias", [n("Gemm", ["x", "w", "b"], transB=1)], x(3, 6), {"w": w(5, 6), "b": w(5)},
     kinds=["Gemm"])
case("Gemm-alpha-beta-noTransB", [n("Gemm", ["x", "w", "b"], alpha=0.5, beta=2.0)], x(3, 6),
     {"w": w(6, 5), "b": w(1, 5)}, kinds=["Gemm"])
case("Gemm-transA-scalarC", [n("Gemm", ["x", "w", "c"], transA=1, transB=1)], x(6, 3),
     {"w": w(5, 6), "c": np.array(0.25, F32)}, kinds=["Transpose", "Gemm"])
case("Gemm-matrixC", [n("Gemm", ["x", "w", "c"], beta=0.5)], x(3, 6), {"w": w(6, 5), "c": w(3, 5)},
     kinds=["Gemm", "Mul", "Add"])
case("Gemm-no-C", [n("Gemm", ["x", "w"], transB=1)], x(3, 6), {"w": w(5, 6)}, kinds=["Gemm"])
case("Gemm-dynamic-B", [n("Gemm", ["x", "z", "c"], transB=1, alpha=2.0)], {"x": In((3, 6)), "z": In((5, 6))},
     {"c": w(5)}, kinds=["Transpose", "MatMul", "Mul", "Add"])
case("Gemm-B-behind-Cast", [n("Cast", ["w16"], ["wf"], to=TensorProto.FLOAT), n("Gemm", ["x", "wf"])], x(3, 6),
     {"w16": w(6, 5).astype(np.float16)}, kinds=["Cast", "Transpose", "Gemm"])
case("MatMul-3d-const", [n("MatMul", ["x", "w"])], x(2, 4, 6), {"w": w(6, 5)}, kinds=["MatMul"])
case("MatMul-batched", [n("MatMul", ["x", "z"])], {"x": In((2, 3, 4, 6)), "z": In((3, 6, 5))}, kinds=["MatMul"])

# ---------------------------------------------------------------- pooling / reductions
case("MaxPool-k3s2p1", [n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
     x(1, 3, 9, 10), kinds=["MaxPool"])
case("MaxPool-ceil", [n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)], x(1, 3, 8, 8),
     check=attr_is("MaxPool", ceil_mode=True))
case("MaxPool-SAME_UPPER-dilation", [n("MaxPool", ["x"], kernel_shape=[2, 2], auto_pad="SAME_UPPER", strides=[2, 2],
                                       dilations=[1, 1])], x(1, 3, 7, 8))
case("MaxPool-dilated", [n("MaxPool", ["x"], kernel_shape=[2, 2], dilations=[2, 2])], x(1, 3, 7, 8), opset=11)
case("AveragePool-exclude-pad", [n("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], x(1, 3, 6, 7),
     check=attr_is("AveragePool", count_include_pad=False))
case("AveragePool-include-pad-ceil", [n("AveragePool", ["x"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 0],
                                        count_include_pad=1, ceil_mode=1)], x(1, 3, 8, 9), opset=11)
case("GlobalAveragePool", [n("GlobalAveragePool", ["x"])], x(2, 3, 5, 6), kinds=["GlobalAveragePool"])
case("GlobalMaxPool", [n("GlobalMaxPool", ["x"])], x(2, 3, 5, 6), kinds=["GlobalMaxPool"])
case("ReduceMean-13-attr", [n("ReduceMean", ["x"], axes=[2, 3], keepdims=0)], x(2, 3, 4, 5),
     check=attr_is("ReduceMean", axes=(2, 3), keepdims=False))
case("ReduceMean-18-input", [n("ReduceMean", ["x", "a"])], x(2, 3, 4, 5), {"a": ints(-1)}, opset=18,
     check=attr_is("ReduceMean", axes=(3,), keepdims=True))
case("ReduceMean-all", [n("ReduceMean", ["x"])], x(2, 3, 4), check=attr_is("ReduceMean", axes=None))
case("ReduceSum-11-attr", [n("ReduceSum", ["x"], axes=[1])], x(2, 3, 4), opset=11, kinds=["ReduceSum"])
case("ReduceSum-13-input", [n("ReduceSum", ["x", "a"], keepdims=0)], x(2, 3, 4), {"a": ints(0, 2)},
     kinds=["ReduceSum"])
case("ReduceSum-13-noop-empty", [n("ReduceSum", ["x"], noop_with_empty_axes=1)], x(2, 3, 4), kinds=["Identity"])
case("ReduceMax-13", [n("ReduceMax", ["x"], axes=[1], keepdims=0)], x(2, 3, 4), kinds=["ReduceMax"])
case("ReduceMax-18", [n("ReduceMax", ["x", "a"])], x(2, 3, 4), {"a": ints(2)}, opset=18, kinds=["ReduceMax"])
case("ReduceMin-13", [n("ReduceMin", ["x"], axes=[0, 2])], x(2, 3, 4), kinds=["ReduceMin"])

# ---------------------------------------------------------------- data movement
case("Concat", [n("Concat", ["x", "z", "c"], axis=1)], {"x": In((2, 3, 4)), "z": In((2, 1, 4))}, {"c": w(2, 2, 4)},
     kinds=["Concat"])
case("Split-11-attr", [n("Split", ["x"], ["y", "y2"], axis=1, split=[1, 3])], x(2, 4, 3), opset=11,
     outputs={"y": F32, "y2": F32}, check=attr_is("Split", split=(1, 3), axis=1))
case("Split-13-input", [n("Split", ["x", "s"], ["y", "y2", "y3"], axis=-1)], x(2, 3, 6), {"s": ints(1, 2, 3)},
     outputs={"y": F32, "y2": F32, "y3": F32}, check=attr_is("Split", split=(1, 2, 3), axis=2))
case("Split-13-equal", [n("Split", ["x"], ["y", "y2"])], x(4, 3), outputs={"y": F32, "y2": F32},
     check=attr_is("Split", split=(2, 2)))
case("Split-18-num_outputs-uneven", [n("Split", ["x"], ["y", "y2", "y3"], axis=1, num_outputs=3)], x(2, 7), opset=18,
     outputs={"y": F32, "y2": F32, "y3": F32}, check=attr_is("Split", split=(3, 3, 1)))
case("Slice-9-attrs", [n("Slice", ["x"], starts=[1, 0], ends=[3, 100], axes=[0, 2])], x(4, 3, 5), opset=9,
     kinds=["Slice"])
case("Slice-13-inputs-neg-step", [n("Slice", ["x", "s", "e", "a", "p"])], x(4, 3, 6),
     {"s": ints(-1, 5), "e": ints(-1000, 0), "a": ints(0, -1), "p": ints(-1, -2)}, kinds=["Slice"])
case("Slice-13-int-max", [n("Slice", ["x", "s", "e"])], x(4, 6), {"s": ints(1, 2), "e": ints(2**63 - 1, -1)},
     check=attr_is("Slice", starts=(1, 2), ends=(4, 5)))
case("Reshape-zero-minus-one", [n("Reshape", ["x", "s"])], x(2, 3, 4, 5), {"s": ints(0, -1, 5)},
     kinds=["Reshape"], check=attr_is("Reshape", shape=(2, 12, 5)))
case("Reshape-14-allowzero", [n("Reshape", ["x", "s"], allowzero=1)], x(2, 3, 4), {"s": ints(4, 6)}, opset=14,
     check=attr_is("Reshape", shape=(4, 6)))
case("Transpose-default", [n("Transpose", ["x"])], x(2, 3, 4), check=attr_is("Transpose", perm=(2, 1, 0)))
case("Transpose-perm", [n("Transpose", ["x"], perm=[0, 2, 3, 1])], x(2, 3, 4, 5),
     check=attr_is("Transpose", perm=(0, 2, 3, 1)))
for _axis, _shape in [(0, (1, 120)), (2, (6, 20)), (-1, (24, 5))]:
    case(f"Flatten-axis{_axis}", [n("Flatten", ["x"], axis=_axis)], x(2, 3, 4, 5), kinds=["Reshape"],
         check=attr_is("Reshape", shape=_shape))
case("Squeeze-11-attr", [n("Squeeze", ["x"], axes=[1])], x(2, 1, 4, 1), opset=11,
     check=attr_is("Reshape", shape=(2, 4, 1)))
case("Squeeze-13-input", [n("Squeeze", ["x", "a"])], x(2, 1, 4, 1), {"a": ints(-1, 1)},
     check=attr_is("Reshape", shape=(2, 4)))
case("Squeeze-all", [n("Squeeze", ["x"])], x(2, 1, 4, 1), check=attr_is("Reshape", shape=(2, 4)))
case("Unsqueeze-11-attr", [n("Unsqueeze", ["x"], axes=[0, 3])], x(2, 4), opset=11,
     check=attr_is("Reshape", shape=(1, 2, 4, 1)))
case("Unsqueeze-13-input", [n("Unsqueeze", ["x", "a"])], x(2, 4), {"a": ints(-1)},
     check=attr_is("Reshape", shape=(2, 4, 1)))
case("Gather-const-negative-index", [n("Gather", ["x", "i"], axis=1)], x(2, 5, 3), {"i": ints(-1, 0, 2)},
     kinds=["Gather"])
case("Gather-scalar-index", [n("Gather", ["x", "i"], axis=0)], x(4, 3), {"i": np.array(2, I64)}, kinds=["Gather"])
case("Gather-dynamic-indices", [n("Gather", ["x", "i"], axis=0)], {"x": In((5, 3)), "i": In((2, 2), I64, 0, 4)},
     kinds=["Gather"])
case("Expand", [n("Expand", ["x", "s"])], x(3, 1), {"s": ints(2, 3, 4)}, check=attr_is("Expand", shape=(2, 3, 4)))
case("Tile", [n("Tile", ["x", "r"])], x(2, 3), {"r": ints(2, 3)}, check=attr_is("Tile", repeats=(2, 3)))
case("DepthToSpace-DCR", [n("DepthToSpace", ["x"], blocksize=2)], x(1, 8, 3, 4), kinds=["DepthToSpace"])
case("DepthToSpace-CRD", [n("DepthToSpace", ["x"], blocksize=2, mode="CRD")], x(1, 8, 3, 4),
     check=attr_is("DepthToSpace", mode="CRD"))
case("SpaceToDepth", [n("SpaceToDepth", ["x"], blocksize=2)], x(1, 2, 4, 6), kinds=["SpaceToDepth"])
case("Pad-11-constant", [n("Pad", ["x", "p", "v"])], x(1, 2, 3, 4), {"p": ints(0, 0, 1, 2, 0, 0, 2, 1),
                                                                  "v": np.array(1.5, F32)}, opset=11,
     check=attr_is("Pad", pads=(0, 0, 1, 2, 0, 0, 2, 1), mode="constant", value=1.5))
case("Pad-13-reflect", [n("Pad", ["x", "p"], mode="reflect")], x(1, 2, 4, 5), {"p": ints(0, 0, 2, 1, 0, 0, 1, 3)},
     check=attr_is("Pad", mode="reflect"))
case("Pad-13-edge", [n("Pad", ["x", "p"], mode="edge")], x(1, 2, 4, 5), {"p": ints(0, 0, 2, 1, 0, 0, 1, 3)})
case("Pad-18-axes", [n("Pad", ["x", "p", "", "a"])], x(1, 2, 4, 5), {"p": ints(1, 2, 3, 0), "a": ints(2, -1)},
     opset=18, check=attr_is("Pad", pads=(0, 0, 1, 2, 0, 0, 3, 0)))
case("Pad-2-attrs", [n("Pad", ["x"], pads=[0, 1, 0, 2], value=-1.0)], x(3, 4), opset=2,
     check=attr_is("Pad", pads=(0, 1, 0, 2), value=-1.0))
case("Pad-negative-crops", [n("Pad", ["x", "p"])], x(1, 2, 6, 5), {"p": ints(0, 0, -1, 2, 0, 0, 1, -2)},
     kinds=["Pad", "Slice"])
case("Resize-11-scales-nearest", [n("Resize", ["x", "roi", "s"], mode="nearest",
                                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
     x(1, 2, 3, 4), {"roi": np.zeros(0, F32), "s": np.array([1, 1, 2, 2], F32)}, opset=11,
     check=attr_is("Resize", size=(1, 2, 6, 8), mode="nearest"))
case("Resize-13-sizes-linear", [n("Resize", ["x", "", "", "sz"], mode="linear")], x(1, 2, 5, 4),
     {"sz": ints(1, 2, 8, 9)}, check=attr_is("Resize", size=(1, 2, 8, 9), mode="linear",
                                            coordinate_transformation_mode="half_pixel"))
case("Resize-13-align-corners", [n("Resize", ["x", "", "s"], mode="linear",
                                   coordinate_transformation_mode="align_corners")], x(1, 2, 4, 5),
     {"s": np.array([1, 1, 2, 2], F32)})
case("Resize-13-pytorch-half-pixel-down", [n("Resize", ["x", "", "", "sz"], mode="linear",
                                             coordinate_transformation_mode="pytorch_half_pixel")], x(1, 2, 8, 9),
     {"sz": ints(1, 2, 4, 3)})
case("Resize-13-nearest-round", [n("Resize", ["x", "", "s"], mode="nearest")], x(1, 2, 4, 5),
     {"s": np.array([1, 1, 3, 2], F32)}, check=attr_is("Resize", nearest_mode="round_prefer_floor"))
case("Resize-18-axes-sizes", [n("Resize", ["x", "", "", "sz"], mode="linear", axes=[2, 3])], x(1, 2, 4, 5),
     {"sz": ints(8, 10)}, opset=18, check=attr_is("Resize", size=(1, 2, 8, 10)))
case("Resize-19-half-pixel-symmetric", [n("Resize", ["x", "", "", "sz"], mode="linear",
                                          coordinate_transformation_mode="half_pixel_symmetric")], x(1, 2, 4, 5),
     {"sz": ints(1, 2, 7, 9)}, opset=19, check=attr_is("Resize", coordinate_transformation_mode="half_pixel_symmetric"))
case("Resize-13-downscale-nearest", [n("Resize", ["x", "", "s"], mode="nearest", nearest_mode="ceil")],
     x(1, 2, 8, 6), {"s": np.array([1, 1, 0.5, 0.5], F32)}, check=attr_is("Resize", size=(1, 2, 4, 3)))
case("Resize-10-scales", [n("Resize", ["x", "s"], mode="nearest")], x(1, 2, 3, 4),
     {"s": np.array([1, 1, 2, 3], F32)}, opset=10,
     check=attr_is("Resize", coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
case("Upsample-9-nearest", [n("Upsample", ["x", "s"], mode="nearest")], x(1, 2, 3, 4),
     {"s": np.array([1, 1, 2, 2], F32)}, opset=9, check=attr_is("Resize", size=(1, 2, 6, 8)))
case("Upsample-9-linear", [n("Upsample", ["x", "s"], mode="linear")], x(1, 2, 3, 4),
     {"s": np.array([1, 1, 2, 2], F32)}, opset=9, check=attr_is("Resize", mode="linear"))

# ---------------------------------------------------------------- constants and import-time values
case("Constant", [n("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [3], [1, 2, 3])),
                  n("Add", ["x", "c"])], x(2, 3), kinds=["Add"])
case("Constant-value_floats", [n("Constant", [], ["c"], value_floats=[0.5, 1.5]), n("Mul", ["x", "c"])], x(3, 2),
     kinds=["Mul"])
case("Constant-value_int", [n("Constant", [], ["c"], value_int=2), n("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
                            n("Mul", ["x", "cf"])], x(3, 2))
# the exporter idiom: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))
case("Shape-Gather-Unsqueeze-Concat-Reshape",
     [n("Shape", ["x"], ["s"]), n("Gather", ["s", "i0"], ["b"], axis=0), n("Unsqueeze", ["b", "a0"], ["bu"]),
      n("Concat", ["bu", "m1"], ["t"], axis=0), n("Reshape", ["x", "t"])],
     x(2, 3, 4, 5), {"i0": np.array(0, I64), "a0": ints(0), "m1": ints(-1)}, kinds=["Reshape"],
     check=attr_is("Reshape", shape=(2, 60)))
case("Shape-15-start-end-Slice-Cast-Div",
     [n("Shape", ["x"], ["s"], start=2), n("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
      n("Div", ["sf", "two"], ["h"]), n("Cast", ["h"], ["hi"], to=TensorProto.INT64),
      n("Slice", ["x", "z2", "hi", "ax"])],
     x(1, 2, 8, 6), {"two": np.array(2.0, F32), "z2": ints(0, 0), "ax": ints(2, 3)}, opset=15, kinds=["Slice"],
     check=attr_is("Slice", ends=(4, 3)))
case("Size-ConstantOfShape-Range",
     [n("Size", ["x"], ["sz"]), n("Range", ["zero", "four", "one"], ["r"]),
      n("ConstantOfShape", ["four1"], ["c"], value=helper.make_tensor("v", TensorProto.INT64, [1], [3])),
      n("Add", ["r", "c"], ["rc"]), n("Mul", ["rc", "sz"], ["rcs"]),
      n("Cast", ["rcs"], ["f"], to=TensorProto.FLOAT), n("Add", ["x", "f"])],
     x(2, 4), {"zero": np.array(0, I64), "four": np.array(4, I64), "one": np.array(1, I64), "four1": ints(4)})
case("Static-logic-chain",  # Equal/Where/Not/And/Or/Xor/LessOrEqual/GreaterOrEqual/Mod/Sign/Round evaluated at import
     [n("Shape", ["x"], ["s"]), n("Mod", ["s", "three"], ["m"]), n("Equal", ["m", "zero"], ["e"]),
      n("Not", ["e"], ["ne"]), n("LessOrEqual", ["s", "three"], ["le"]), n("GreaterOrEqual", ["s", "three"], ["ge"]),
      n("And", ["ne", "le"], ["a"]), n("Or", ["a", "ge"], ["o"]), n("Xor", ["o", "e"], ["xo"]),
      n("Where", ["xo", "s", "three"], ["t0"]), n("Sign", ["t0"], ["sg"]), n("Mul", ["t0", "sg"], ["t1"]),
      n("Cast", ["t1"], ["tf"], to=TensorProto.FLOAT), n("Round", ["tf"], ["tr"]),
      n("Cast", ["tr"], ["t"], to=TensorProto.INT64), n("Reshape", ["x", "t"])],
     x(2, 3, 4), {"three": np.array(3, I64), "zero": np.array(0, I64)}, kinds=["Reshape"],
     check=attr_is("Reshape", shape=(2, 3, 4)))
case("Static-shape-arith-chain",  # Sub/Pow/Neg/Abs/Floor/Ceil/Sqrt/Exp/Log/Reciprocal/Relu/Min/Max/Sum/Clip/Reduce*
     [n("Shape", ["x"], ["s"]), n("Cast", ["s"], ["f"], to=TensorProto.FLOAT), n("Sqrt", ["f"], ["q"]),
      n("Pow", ["q", "two"], ["p"]), n("Log", ["p"], ["l"]), n("Exp", ["l"], ["e"]), n("Neg", ["e"], ["ng"]),
      n("Abs", ["ng"], ["ab"]), n("Reciprocal", ["ab"], ["rc"]), n("Reciprocal", ["rc"], ["rr"]),
      n("Round", ["rr"], ["rd"]), n("Floor", ["rd"], ["fl"]), n("Ceil", ["fl"], ["ce"]), n("Relu", ["ce"], ["re"]),
      n("Clip", ["re", "lo", "hi"], ["cl"]), n("Max", ["cl", "lo"], ["mx"]), n("Min", ["mx", "hi"], ["mn"]),
      n("Sum", ["mn", "zf"], ["sm"]), n("Sub", ["sm", "zf"], ["sb"]), n("Cast", ["sb"], ["si"], to=TensorProto.INT64),
      n("ReduceProd", ["si"], ["pr"], keepdims=1), n("ReduceSum", ["si"], ["su"], keepdims=1),
      n("ReduceMax", ["si"], ["rm"], keepdims=1), n("ReduceMin", ["si"], ["rn"], keepdims=1),
      n("ReduceMean", ["si"], ["me"], keepdims=1),
      n("Div", ["pr", "rm"], ["d1"]), n("Sub", ["su", "me"], ["e1"]), n("Sub", ["e1", "rn"], ["e2"]),
      n("Concat", ["d1", "e2"], ["t"], axis=0), n("Reshape", ["x", "t"])],
     x(2, 3, 4), {"two": np.array(2.0, F32), "lo": np.array(1.0, F32), "hi": np.array(100.0, F32),
                  "zf": np.array(0.0, F32)}, kinds=["Reshape"], check=attr_is("Reshape", shape=(6, 4)))
case("Static-tensor-chain",  # Transpose/Flatten/Squeeze/Unsqueeze/Split/Tile/Expand/Slice/Gather/Pad/NonZero/Identity
     [n("Shape", ["x"], ["s"]), n("Unsqueeze", ["s", "a0"], ["u"]), n("Tile", ["u", "r"], ["t2"]),
      n("Transpose", ["t2"], ["tt"]), n("Flatten", ["tt"], ["fl"], axis=0), n("Squeeze", ["fl", "a0"], ["sq"]),
      n("Split", ["sq", "sp"], ["p0", "p1"]), n("Identity", ["p0"], ["i0"]), n("Expand", ["i0", "two"], ["ex"]),
      n("Slice", ["ex", "z", "one"], ["sl"]), n("Pad", ["sl", "pp"], ["pd"]), n("NonZero", ["pd"], ["nz"]),
      n("Reshape", ["nz", "one"], ["nzf"]), n("Add", ["nzf", "g01"], ["g"]), n("Gather", ["s", "g"], ["gs"]), n("Concat", ["gs", "m1"], ["t"], axis=0), n("Reshape", ["x", "t"])],
     x(2, 3, 4), {"a0": ints(0), "r": ints(2, 1), "sp": ints(3, 3), "two": ints(3), "z": ints(0), "one": ints(1),
                  "pp": ints(1, 0), "g01": ints(0, 1), "m1": ints(-1)}, kinds=["Reshape"],
     check=attr_is("Reshape", shape=(3, 4, 2)))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_import(c: Case) -> None:
    """Import-level facts: the IR verifies and has the expected op kinds and attributes."""
    graph = load_onnx(c.model(), input_shapes=None)
    assert find_problems(graph) == []
    kinds = sorted(op.kind for op in graph.ops())
    assert "Shape" not in kinds and "Constant" not in kinds
    if c.kinds is not None:
        assert kinds == sorted(c.kinds)
    for op in graph.ops():
        assert op.origin and op.origin[0] in {nd.name or f"{nd.op_type}_{i}" for i, nd in enumerate(c.nodes)}
    assert [t.name for t in graph.outputs] == list(c.outputs)
    if c.check is not None:
        c.check(graph)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_matches_onnxruntime(c: Case) -> None:
    import_and_compare(c.model(), c.inputs)


def test_every_supported_op_has_a_case() -> None:
    covered = {nd.op_type for c in CASES for nd in c.nodes}
    missing = sorted(set(supported_op_types()) - covered)
    assert not missing, f"supported ONNX ops without a test case: {missing}"
