"""Shared helpers of the export tests: run a compiled binary in npuc's simulator and a model in onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pytest
from PIL import Image

from npuc_testing import snr_db  # noqa: F401 - re-exported to the tests of this folder


def run_binary(path: Path, feeds: Mapping[str, np.ndarray], dequantize: bool = True) -> dict[str, np.ndarray]:
    """Outputs of the compiled binary at `path`: the numba simulator when present, else run_quantized
    on the graph rebuilt from the binary (bit-exact with the simulator by design)."""
    from npuc.backends.npu.decode import read_binary

    program = read_binary(path)
    try:
        from npuc.backends.npu.sim.simulator import Simulator
    except ImportError:
        from npuc.backends.npu.lower import to_graph
        from npuc.backends.reference.quantized_executor import run_quantized

        return run_quantized(to_graph(program), feeds, dequantize=dequantize)
    return Simulator(program, str(path)).run(feeds, dequantize=dequantize)


def run_onnx(model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of onnxruntime (CPU, default graph optimizations) by output name."""
    ort = pytest.importorskip("onnxruntime")
    data = model if isinstance(model, (bytes, str, Path)) else model.SerializeToString()
    sess = ort.InferenceSession(str(data) if isinstance(data, Path) else data, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, dict(feeds))))


def pixels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """An image letterboxed top-left into an NCHW float array of raw pixels (the compiled models take pixels)."""
    _, _, h, w = shape
    img = Image.open(path).convert("RGB")
    ratio = min(h / img.height, w / img.width)
    img = img.resize((max(1, round(img.width * ratio)), max(1, round(img.height * ratio))), Image.Resampling.BILINEAR)
    canvas = np.zeros((h, w, 3), np.float32)
    canvas[: img.height, : img.width] = np.asarray(img, np.float32)
    return canvas.transpose(2, 0, 1)[None]


def layerwise_flips(graph, model, feeds: Mapping[str, np.ndarray]) -> dict[str, tuple[str, int, int, int]]:
    """Every layer of the QDQ `model` fed npuc's own integer inputs: for each quantized IR tensor,
    (op kind, values, values differing from npuc's reference executor, largest difference in LSB).

    The exported activations are `QuantizeLinear -> t_q -> DequantizeLinear -> t`; each DequantizeLinear
    is rewired to read a graph input holding npuc's codes of `t`, and every `t_q` becomes an output.
    onnxruntime runs with its default optimizations (the DQ -> op -> Q groups still fuse).
    """
    import onnx

    from npuc.backends.reference.quantized_executor import QuantizedExecutor

    ort = pytest.importorskip("onnxruntime")
    ints: dict[str, np.ndarray] = {}
    QuantizedExecutor(graph).run(feeds, on_tensor=lambda t, v: ints.__setitem__(t.name, np.array(v)))
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    quant = {n.name[: -len("/q")]: n for n in g.node if n.op_type == "QuantizeLinear" and n.name.endswith("/q")}
    quant = {name: q for name, q in quant.items() if name in ints}
    fed: dict[str, np.ndarray] = dict(feeds)
    for n in g.node:
        name = n.name[: -len("/dq")]
        if n.op_type == "DequantizeLinear" and n.name.endswith("/dq") and name in quant \
                and quant[name].output[0] == n.input[0]:
            n.input[0] = f"{n.input[0]}.npuc"
            fed[n.input[0]] = ints[name]
            g.input.append(onnx.helper.make_tensor_value_info(
                n.input[0], onnx.helper.np_dtype_to_tensor_dtype(ints[name].dtype), list(ints[name].shape)))
    del g.output[:]
    for name, q in quant.items():
        g.output.append(onnx.helper.make_tensor_value_info(
            q.output[0], onnx.helper.np_dtype_to_tensor_dtype(ints[name].dtype), list(ints[name].shape)))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, fed)))
    kind = {t.name: op.kind for op in graph.ops() for t in graph.outputs_of(op)}
    result = {}
    for name, q in quant.items():
        d = np.abs(got[q.output[0]].astype(np.int64) - ints[name].astype(np.int64))
        result[name] = (kind.get(name, "?"), int(d.size), int(np.count_nonzero(d)), int(d.max(initial=0)))
    return result
