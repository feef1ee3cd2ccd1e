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
