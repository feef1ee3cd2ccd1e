"""The executor: feed checks, clear errors, freeing of intermediates, requested outputs, in-place safety."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from reference_oracle import rand

from npuc.backends.reference.executor import Executor, run_graph
from npuc.backends.reference.kernels import FLOAT_KERNELS, register_kernel
from npuc.errors import ExecutionError, NpucError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.op_spec import OPS, OpSpec
from npuc.ir.ops._infer import same_as_input


def _chain() -> Graph:
    """x -> Conv -> Relu -> Add(.., x_branch) -> Sigmoid, with a side branch Mul(x, x)."""
    g = Graph("chain")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 8, 8))
    w = g.add_const("w", rand(3, 3, 3, 3, seed=7))
    conv = g.outputs_of(g.add_op("Conv", [x, w], {"pads": (1, 1, 1, 1)}, name="conv"))[0]
    relu = g.outputs_of(g.add_op("Relu", [conv], name="relu"))[0]
    sq = g.outputs_of(g.add_op("Mul", [x, x], name="square"))[0]
    add = g.outputs_of(g.add_op("Add", [relu, sq], name="add"))[0]
    sig = g.outputs_of(g.add_op("Sigmoid", [add], name="sig"))[0]
    g.outputs.append(sig)
    return g


def _expected(x: np.ndarray, g: Graph) -> np.ndarray:
    from npuc.backends.reference.conv_kernels import conv2d

    y = np.maximum(conv2d(x, g.tensor("w").data, None, pads=(1, 1, 1, 1)), 0) + x * x
    return 1 / (1 + np.exp(-y))


def test_run_graph_computes_the_chain():
    g = _chain()
    x = rand(1, 3, 8, 8)
    out = run_graph(g, {"x": x})
    assert list(out) == ["sig"]
    np.testing.assert_allclose(out["sig"], _expected(x, g), rtol=1e-5, atol=1e-6)
    assert out["sig"].dtype == np.float32


def test_feed_is_never_modified_and_results_are_deterministic():
    g = _chain()
    x = rand(1, 3, 8, 8)
    x_copy = x.copy()
    ex = Executor(g)
    a = ex.run({"x": x})["sig"]
    b = ex.run({"x": x})["sig"]
    np.testing.assert_array_equal(x, x_copy)
    assert a.tobytes() == b.tobytes()


def test_on_tensor_sees_every_computed_tensor_once_and_only_requested_outputs_return():
    g = _chain()
    seen: list[str] = []
    kept: dict[str, np.ndarray] = {}

    def hook(tensor, value):
        seen.append(tensor.name)
        kept[tensor.name] = value  # keeping references must be safe (no in-place reuse of kept arrays)

    out = Executor(g).run({"x": rand(1, 3, 8, 8)}, on_tensor=hook)
    assert sorted(seen) == sorted(["x", "conv", "relu", "square", "add", "sig"])
    assert len(seen) == len(set(seen))
    assert list(out) == ["sig"]
    np.testing.assert_array_equal(kept["relu"], np.maximum(kept["conv"], 0))
    np.testing.assert_allclose(kept["sig"], 1 / (1 + np.exp(-kept["add"])), rtol=1e-6)


def test_requested_outputs_only_run_the_ops_they_need():
    g = _chain()
    seen: list[str] = []
    out = Executor(g).run({"x": rand(1, 3, 8, 8)}, outputs=["relu", "conv"], on_tensor=lambda t, v: seen.append(t.name))
    assert list(out) == ["relu", "conv"]
    assert sorted(seen) == ["conv", "relu", "x"]
    np.testing.assert_array_equal(out["relu"], np.maximum(out["conv"], 0))


def test_intermediates_are_released_after_their_last_use():
    """An intermediate array is garbage once its last reader ran; only requested outputs stay alive."""
    g = Graph("convs")
    t = g.add_input("x", DType.FLOAT32, (1, 2, 6, 6))
    names = []
    for i in range(4):
        w = g.add_const(f"w{i}", rand(2, 2, 3, 3, seed=i))
        t = g.outputs_of(g.add_op("Conv", [t, w], {"pads": (1, 1, 1, 1)}, name=f"c{i}"))[0]
        names.append(t.name)
    g.outputs.append(t)
    refs: dict[str, weakref.ref] = {}
    alive_during: dict[str, set[str]] = {}

    def hook(tensor, value):
        gc.collect()
        alive_during[tensor.name] = {n for n, r in refs.items() if r() is not None}
        refs[tensor.name] = weakref.ref(value)

    out = Executor(g).run({"x": rand(1, 2, 6, 6)}, on_tensor=hook)
    # while c2 is stored only its input c1 may still be referenced (x belongs to the caller's feeds)
    assert alive_during["c2"] - {"x"} == {"c1"}
    assert alive_during["c3"] - {"x"} == {"c2"}
    del hook
    gc.collect()
    assert {n for n, r in refs.items() if r() is not None} == {"c3"}
    assert out["c3"] is refs["c3"]()


def test_elementwise_chain_reuses_one_buffer():
    """Without anyone holding intermediates, Relu/Add/Sigmoid write into the array Conv produced."""
    ids: dict[str, int] = {}
    Executor(_chain()).run({"x": rand(1, 3, 8, 8)}, on_tensor=lambda t, v: ids.__setitem__(t.name, id(v)))
    assert ids["conv"] == ids["relu"] == ids["add"] == ids["sig"]
    assert ids["square"] != ids["conv"]


def test_in_place_never_touches_arrays_the_caller_holds():
    g = Graph("inplace")
    x = g.add_input("x", DType.FLOAT32, (4,))
    r = g.outputs_of(g.add_op("Relu", [x], name="r"))[0]
    n = g.outputs_of(g.add_op("Neg", [r], name="n"))[0]
    e = g.outputs_of(g.add_op("Exp", [n], name="e"))[0]
    g.outputs.append(e)
    x_val = np.array([-1, 0, 1, 2], dtype=np.float32)
    ex = Executor(g)
    out = ex.run({"x": x_val}, outputs=["r", "e"])
    np.testing.assert_array_equal(out["r"], [0, 0, 1, 2])  # 'r' requested: Neg must not overwrite it
    np.testing.assert_allclose(out["e"], np.exp(-np.array([0, 0, 1, 2], np.float32)))
    np.testing.assert_array_equal(x_val, [-1, 0, 1, 2])


def test_missing_unknown_and_mismatched_feeds_are_clear_errors():
    ex = Executor(_chain())
    with pytest.raises(ExecutionError, match=r"missing input.*'x'"):
        ex.run({})
    with pytest.raises(ExecutionError, match=r"unknown input name.*'y'"):
        ex.run({"x": rand(1, 3, 8, 8), "y": rand(1)})
    with pytest.raises(ExecutionError, match=r"input 'x' has shape \(1, 3, 8, 9\).*expects \(1, 3, 8, 8\)"):
        ex.run({"x": rand(1, 3, 8, 9)})
    with pytest.raises(ExecutionError, match=r"input 'x' has dtype float64.*float32"):
        ex.run({"x": rand(1, 3, 8, 8).astype(np.float64)})
    with pytest.raises(ExecutionError, match=r"'nope'"):
        ex.run({"x": rand(1, 3, 8, 8)}, outputs=["nope"])
    assert issubclass(ExecutionError, NpucError)


@pytest.fixture
def custom_kind():
    """A plugin-style op kind registered only for one test."""
    kind = "TestOnlyDouble"
    OPS._specs[kind] = OpSpec(kind, ("x",), same_as_input)
    OPS._sources[kind] = "test"
    yield kind
    OPS._specs.pop(kind, None)
    OPS._sources.pop(kind, None)
    FLOAT_KERNELS.pop(kind, None)


def test_op_kind_without_kernel_names_op_and_kind(custom_kind):
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (2,))
    g.outputs.extend(g.outputs_of(g.add_op(custom_kind, [x], name="dbl")))
    with pytest.raises(ExecutionError, match=rf"'{custom_kind}'.*'dbl'"):
        Executor(g)


def test_kernel_failure_names_op_origin_and_shapes(custom_kind):
    def broken(op, inputs):
        raise ValueError("boom")

    register_kernel(custom_kind, broken, source="test")
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (2, 5))
    g.outputs.extend(g.outputs_of(g.add_op(custom_kind, [x], name="dbl", origin=("onnx_node_7",))))
    with pytest.raises(ExecutionError) as info:
        run_graph(g, {"x": rand(2, 5)})
    msg = str(info.value)
    for part in (custom_kind, "'dbl'", "onnx_node_7", "float32[2, 5]", "boom"):
        assert part in msg


def test_kernel_returning_a_wrong_shape_is_reported(custom_kind):
    register_kernel(custom_kind, lambda op, ins: [ins[0][:1]], source="test")
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (2, 5))
    g.outputs.extend(g.outputs_of(g.add_op(custom_kind, [x], name="dbl")))
    with pytest.raises(ExecutionError, match=r"'dbl' produced float32\[1, 5\].*declares float32\[2, 5\]"):
        run_graph(g, {"x": rand(2, 5)})


def test_integer_shape_chain_runs_in_its_own_dtypes():
    """Shape -> Gather -> Cast -> Mul: int64 stays int64, the cast gives float32."""
    g = Graph()
    x = g.add_input("x", DType.FLOAT32, (2, 3, 5))
    shp = g.outputs_of(g.add_op("Shape", [x]))[0]
    idx = g.add_const("idx", np.array([2], dtype=np.int64))
    last = g.outputs_of(g.add_op("Gather", [shp, idx]))[0]
    f = g.outputs_of(g.add_op("Cast", [last], {"to": DType.FLOAT32}))[0]
    y = g.outputs_of(g.add_op("Mul", [x, f]))[0]
    g.outputs.extend([shp, y])
    xv = rand(2, 3, 5)
    out = run_graph(g, {"x": xv})
    assert out[shp.name].dtype == np.int64
    np.testing.assert_array_equal(out[shp.name], [2, 3, 5])
    np.testing.assert_allclose(out[y.name], xv * 5)
