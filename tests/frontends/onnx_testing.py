"""Test helpers: build small ONNX models with onnx.helper, import them, compare with onnxruntime."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npuc.frontends.onnx import load_onnx
from npuc.ir.graph import Graph
from npuc.ir.verify import find_problems

ONNX_TYPE = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


@dataclass(frozen=True)
class In:
    """A graph input of a test model: random values of this shape, dtype and range."""

    shape: tuple[int, ...]
    dtype: Any = np.float32
    low: float = -2.0
    high: float = 2.0

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        dt = np.dtype(self.dtype)
        if dt == np.bool_:
            return rng.random(self.shape) > 0.5
        if np.issubdtype(dt, np.integer):
            return rng.integers(int(self.low), int(self.high) + 1, self.shape).astype(dt)
        return rng.uniform(self.low, self.high, self.shape).astype(dt)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, In],
    outputs: Mapping[str, Any],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 13,
    dynamic: Mapping[str, Sequence[Any]] | None = None,
) -> onnx.ModelProto:
    """A model over `nodes`; outputs map names to numpy dtypes (shapes left to inference).

    dynamic: declared input dims overriding `In.shape` (strings are symbolic dims, None unknown).
    """
    dynamic = dynamic or {}
    ins = [helper.make_tensor_value_info(n, ONNX_TYPE[np.dtype(i.dtype)], list(dynamic.get(n, i.shape)))
           for n, i in inputs.items()]
    outs = [helper.make_tensor_value_info(n, ONNX_TYPE[np.dtype(dt)], None) for n, dt in outputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), "test", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="npuc-tests")
    model.ir_version = 8
    return model


def run_ort(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feeds))))


def assert_close(ours: np.ndarray, ref: np.ndarray, what: str, rel: float = 1e-4) -> None:
    """max |ours - ref| <= rel * max(1, range of ref); shapes equal; exact for int/bool."""
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != onnxruntime {ref.shape}"
    if ref.dtype == np.bool_ or np.issubdtype(ref.dtype, np.integer):
        np.testing.assert_array_equal(ours, ref, err_msg=what)
        return
    ours64, ref64 = ours.astype(np.float64), ref.astype(np.float64)
    assert np.array_equal(np.isnan(ours64), np.isnan(ref64)), f"{what}: NaN pattern differs"
    finite = np.isfinite(ref64)
    span = float(np.ptp(ref64[finite])) if finite.any() else 0.0
    err = float(np.max(np.abs(ours64[finite] - ref64[finite]), initial=0.0))
    assert err <= rel * max(1.0, span), f"{what}: max abs error {err:.3g} > {rel} * max(1, range {span:.3g})"


def import_and_compare(
    model: onnx.ModelProto,
    inputs: Mapping[str, In],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
    rel: float = 1e-4,
) -> Graph:
    """Import `model`, check the IR verifies, run it with the reference executor and onnxruntime, compare."""
    from npuc.backends.reference.executor import run_graph

    graph = load_onnx(model, input_shapes=input_shapes)
    assert find_problems(graph) == []
    rng = np.random.default_rng(seed)
    feeds = {n: i.sample(rng) for n, i in inputs.items()}
    ref = run_ort(model, feeds)
    ours = run_graph(graph, feeds)
    for name, value in ref.items():
        assert name in ours, f"output '{name}' missing from the imported graph"
        assert_close(np.asarray(ours[name]), value, name, rel)
    return graph
