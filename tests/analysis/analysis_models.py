"""A small two-output ONNX conv net, its calibration arrays, and a way to break one layer's quantization."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npuc.ir.graph import Graph


def small_convnet(path: Path) -> Path:
    """x[1,3,16,16] -> conv1+relu -> conv2+relu -> conv3 -> y (1x4x16x16); conv2 -> GAP -> Flatten -> Gemm -> z (1x5)."""
    rng = np.random.default_rng(1)

    def arr(name: str, shape: tuple[int, ...], scale: float = 0.5) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [arr("w1", (8, 3, 3, 3)), arr("b1", (8,), 0.1), arr("w2", (8, 8, 3, 3), 0.3), arr("b2", (8,), 0.1),
             arr("w3", (4, 8, 1, 1)), arr("b3", (4,), 0.1), arr("wg", (5, 8)), arr("bg", (5,), 0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["y"], name="conv3"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["z"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "small_convnet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def calibration_arrays(folder: Path, count: int = 8) -> str:
    """`count` .npy inputs for small_convnet; returns a glob naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for i in range(count):
        np.save(folder / f"item{i:02d}.npy", rng.uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32))
    return str(folder / "*.npy")


def break_weight_scale(q: Graph, layer: str, factor: float = 2.0 ** -12) -> None:
    """Shrink the weight (and bias) scale of `layer` by `factor`: its integer output collapses to ~0."""
    op = q.op(layer)
    ins = q.inputs_of(op)
    for t in ins[1:3]:
        if t is not None and t.quant is not None:
            t.quant = replace(t.quant, scale=tuple(s * factor for s in t.quant.scale))
