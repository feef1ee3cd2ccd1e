"""Shared helpers of the export tests: run a compiled binary in npuc's simulator and a model in onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pytest


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


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - got)^2) in dB (inf when identical)."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(got, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    return float("inf") if noise == 0.0 else 10.0 * np.log10(max(signal, 1e-30) / noise)
