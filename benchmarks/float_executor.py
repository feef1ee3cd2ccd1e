"""Benchmark: npuc's float reference executor against onnxruntime on the real PP-OCR models.

    python benchmarks/float_executor.py                 # det 1x3x640x640 and cls 1x3x48x192, 2 threads
    python benchmarks/float_executor.py --runs 20 --threads 2 --models det
    python benchmarks/float_executor.py --models synthetic   # no ONNX front-end needed

Both sides get the same thread count: onnxruntime via intra_op_num_threads
(ORT_SEQUENTIAL, its default graph optimisations), npuc via
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS (set from --threads
before numpy is imported unless already set in the environment): the executor
reads that count and splits big convs into chunks over that many threads,
with BLAS itself single-threaded inside a run. Runs of the two engines are
interleaved so background load hits both alike; each figure is the median of
--runs timed runs after --warmup runs, with the fastest run beside it (on
shared cores the median also measures how often a run is preempted, which
grows with its CPU time; the minimum is the figure of an idle machine). The
1-minute load average is printed before and after each model.

npuc runs the graph as imported and, when the pass manager is available,
after the default cleanup pipeline (BatchNorm folded, hard-swish recognised,
activations fused) -- the form later stages actually execute.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="det,cls", help="comma list of det, cls, synthetic (default det,cls)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per engine (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per engine first")
    ap.add_argument("--threads", type=int, default=2, help="threads for onnxruntime and BLAS (default 2)")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(ARGS.threads))

import importlib.resources  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from npuc.backends.reference.executor import Executor  # noqa: E402
from npuc.ir.dtypes import DType  # noqa: E402
from npuc.ir.graph import Graph  # noqa: E402

MODELS = {
    "det": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640)),
    "cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192)),
}


def model_path(filename: str) -> str:
    return str(importlib.resources.files("rapidocr_onnxruntime") / "models" / filename)


# ------------------------------------------------------- synthetic fallback
#: (out channels, kernel, stride, depthwise) of a MobileNetV3-ish det backbone at 640x640.
SYNTHETIC_LAYERS = [
    (16, 3, 2, False), (16, 3, 1, True), (32, 1, 1, False), (32, 3, 2, True), (48, 1, 1, False),
    (48, 3, 1, True), (48, 1, 1, False), (48, 3, 2, True), (96, 1, 1, False), (96, 3, 1, True),
    (96, 1, 1, False), (96, 3, 2, True), (192, 1, 1, False), (192, 5, 1, True), (192, 1, 1, False),
    (192, 5, 2, True), (384, 1, 1, False), (384, 5, 1, True), (384, 1, 1, False),
]


def synthetic_models(shape: tuple[int, ...]) -> tuple[Graph, onnx.ModelProto]:
    """The same conv + hard-swish stack as an IR graph and as an ONNX model."""
    rng = np.random.default_rng(0)
    g = Graph("synthetic_det")
    t = g.add_input("x", DType.FLOAT32, shape)
    nodes, inits, prev, c = [], [], "x", shape[1]
    for i, (co, k, s, dw) in enumerate(SYNTHETIC_LAYERS):
        group = c if dw else 1
        co = c if dw else co
        w = (rng.standard_normal((co, c // group, k, k)) / np.sqrt(c // group * k * k)).astype(np.float32)
        b = (rng.standard_normal(co) * 0.1).astype(np.float32)
        attrs = {"strides": (s, s), "pads": (k // 2,) * 4, "group": group}
        conv = g.outputs_of(g.add_op("Conv", [t, g.add_const(f"w{i}", w), g.add_const(f"b{i}", b)], attrs,
                                     name=f"conv{i}"))[0]
        t = g.outputs_of(g.add_op("HardSwish", [conv], name=f"hs{i}"))[0]
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"conv{i}"], kernel_shape=[k, k],
                                      strides=[s, s], pads=[k // 2] * 4, group=group))
        nodes.append(helper.make_node("HardSwish", [f"conv{i}"], [f"hs{i}"]))
        prev, c = f"hs{i}", co
    g.outputs.append(t)
    graph = helper.make_graph(nodes, "synthetic_det", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return g, model


# ------------------------------------------------------------------ timing
def ort_session(model: str | onnx.ModelProto, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def interleaved_medians(fns: dict, runs: int, warmup: int) -> dict[str, tuple[float, float]]:
    """(median, min) ms per call of each function, runs interleaved round-robin."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: (float(np.median(v)) * 1e3, float(np.min(v)) * 1e3) for k, v in times.items()}


def npuc_graphs(name: str, shape: tuple[int, ...]) -> tuple[dict[str, Graph], str | onnx.ModelProto]:
    """IR graph(s) to time and the ONNX model onnxruntime runs."""
    if name == "synthetic":
        g, model = synthetic_models(shape)
        return {"npuc": g}, model
    from npuc.frontends.onnx import load_onnx

    path = model_path(MODELS[name][0])
    graphs = {"npuc (as imported)": load_onnx(path, input_shapes={"x": shape})}
    try:
        from npuc.passes.manager import PassManager, default_pipeline
    except ImportError:
        return graphs, path
    cleaned = load_onnx(path, input_shapes={"x": shape})
    PassManager(default_pipeline()).run(cleaned)
    graphs["npuc (after cleanup)"] = cleaned
    return graphs, path


def bench(name: str, args: argparse.Namespace) -> None:
    shape = MODELS.get(name, (None, (1, 3, 640, 640)))[1]
    try:
        graphs, model = npuc_graphs(name, shape)
    except ImportError:
        print(f"{name}: npuc.frontends.onnx is not importable yet; use --models synthetic")
        return
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    sess = ort_session(model, args.threads)
    feed_name = sess.get_inputs()[0].name
    ref = sess.run(None, {feed_name: x})[0]
    fns = {"onnxruntime": lambda: sess.run(None, {feed_name: x})}
    for label, g in graphs.items():
        ex = Executor(g)
        out = next(iter(ex.run({g.inputs[0].name: x}).values()))
        err = float(np.max(np.abs(out - ref)))
        span = float(np.ptp(ref))
        print(f"{name} {label}: {len(g)} ops, max abs error vs onnxruntime {err:.2e} (output range {span:.3g})")
        fns[label] = (lambda ex=ex, n=g.inputs[0].name: ex.run({n: x}))
    load0 = _load()
    ms = interleaved_medians(fns, args.runs, args.warmup)
    base, base_min = ms["onnxruntime"]
    print(f"{name} {'x'.join(map(str, shape))}, {args.threads} thread(s), median of {args.runs} runs "
          f"(load average {load0} -> {_load()} on {os.cpu_count()} cpus):")
    for label, (v, vmin) in ms.items():
        ratio = "" if label == "onnxruntime" else f"  ratio {v / base:.2f}x (min {vmin / base_min:.2f}x)"
        print(f"  {label:24s} {v:9.2f} ms  (min {vmin:8.2f} ms){ratio}")


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main() -> int:
    args = ARGS or _parse()
    print(f"numpy {np.__version__}, onnxruntime {ort.__version__}, cpus {os.cpu_count()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in MODELS and name != "synthetic":
            print(f"unknown model '{name}' (det, cls, synthetic)", file=sys.stderr)
            return 2
        bench(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
