"""Helpers for calibration tests: tiny image models and calibration files on disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

F32 = DType.FLOAT32


def conv_model(h: int = 8, w: int = 8, channels: int = 3, out_channels: int = 4, seed: int = 0) -> Graph:
    """x (1,C,H,W) -> Conv 3x3 -> Relu -> GlobalAveragePool -> y."""
    rng = np.random.default_rng(seed)
    g = Graph("tiny")
    x = g.add_input("x", F32, (1, channels, h, w))
    wt = g.add_const("conv.weight", rng.standard_normal((out_channels, channels, 3, 3)).astype(np.float32) * 0.1)
    b = g.add_const("conv.bias", rng.standard_normal(out_channels).astype(np.float32) * 0.1)
    conv = g.add_op("Conv", [x, wt, b], {"pads": (1, 1, 1, 1)}, name="conv")
    relu = g.add_op("Relu", g.outputs_of(conv), name="relu")
    pool = g.add_op("GlobalAveragePool", g.outputs_of(relu), name="pool")
    g.outputs = list(g.outputs_of(pool))
    return g


def write_images(folder: Path, count: int, size=(12, 10), seed: int = 0, fmt: str = "png") -> list[Path]:
    """Random RGB images (width, height) = size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"img_{i:03d}.{fmt}"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def write_arrays(folder: Path, count: int, shape=(1, 3, 8, 8), seed: int = 0) -> list[Path]:
    """One .npy per item, standard-normal values."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"item_{i:03d}.npy"
        np.save(path, rng.standard_normal(shape).astype(np.float32))
        paths.append(path)
    return paths
