"""A MobileNetV2-style ONNX model (224x224, 1000 classes) built with the onnx helper API, for benchmarks.

Architecture as in Sandler et al. 2018: a 3x3/2 stem, 17 inverted-residual
blocks (1x1 expand, 3x3 depthwise, 1x1 project; residual add where the shape
allows), a 1x1 conv to 1280 channels, global average pooling and a fully
connected classifier. Every conv is followed by an unfolded BatchNormalization
(and ReLU6 as Clip, except after the projections), as exported from training
frameworks, so the compiler's BatchNorm folding is exercised too.

Weights are random (He initialisation, seeded) and the BatchNorm statistics
are realistic: each BN's running mean and variance are the per-channel mean
and variance its conv output actually has on seeded random input images, with
gamma ~ U(0.5, 1.5) and beta ~ N(0, 0.1) — so activations stay in the ranges a
trained network has instead of exploding or vanishing. Good for timing and
range-statistics experiments, not for accuracy.

    python benchmarks/mobilenet_v2.py out.onnx [--seed 0]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: (expansion t, output channels c, repeats n, first stride s) of MobileNetV2
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
INPUT_SHAPE = (1, 3, 224, 224)


class _Builder:
    def __init__(self, seed: int, stat_images: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0
        # activations of a few random images, carried along to measure the BN statistics
        self.x = self.rng.normal(0.0, 1.0, size=(stat_images, *INPUT_SHAPE[1:])).astype(np.float32)

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int, groups: int, relu6: bool) -> str:
        name = self._name("conv")
        fan_in = cin // groups * k * k
        w = (self.rng.normal(0.0, 1.0, (cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        conv_out = f"{name}_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, self._const(f"{name}.weight", w)], [conv_out], name=name, kernel_shape=[k, k],
            strides=[stride, stride], pads=[k // 2] * 4, group=groups))
        y = _conv_np(self.x, w, stride, k // 2, groups)
        mean, var = y.mean(axis=(0, 2, 3)), y.var(axis=(0, 2, 3)) + 1e-5
        gamma = self.rng.uniform(0.5, 1.5, cout).astype(np.float32)
        beta = self.rng.normal(0.0, 0.1, cout).astype(np.float32)
        bn = f"{name}_bn"
        self.nodes.append(helper.make_node(
            "BatchNormalization", [conv_out] + [self._const(f"{bn}.{p}", v) for p, v in
                                                (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var))],
            [f"{bn}_out"], name=bn, epsilon=1e-5))
        y = gamma[None, :, None, None] * (y - mean[None, :, None, None]) / np.sqrt(var)[None, :, None, None] \
            + beta[None, :, None, None]
        out = f"{bn}_out"
        if relu6:
            relu = f"{name}_relu6"
            self.nodes.append(helper.make_node(
                "Clip", [out, self._const(f"{relu}.min", np.array(0.0)), self._const(f"{relu}.max", np.array(6.0))],
                [f"{relu}_out"], name=relu))
            out, y = f"{relu}_out", np.clip(y, 0.0, 6.0)
        self.x = y.astype(np.float32)
        return out

    def add(self, a: str, b: str, a_value: np.ndarray) -> str:
        name = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [f"{name}_out"], name=name))
        self.x = self.x + a_value
        return f"{name}_out"


def _conv_np(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """Plain numpy conv (NCHW) for the BN statistics; im2col per group."""
    n, c, h, wd = x.shape
    cout, cin_g, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((n, c, k, k, oh, ow), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i: i + stride * oh: stride, j: j + stride * ow: stride]
    if groups == 1:
        return np.einsum("nckhij,ockh->noij", cols.reshape(n, c, k, k, oh, ow), w, optimize=True)
    # depthwise: one input channel per group
    return np.einsum("nckhij,ckh->ncij", cols, w[:, 0], optimize=True)


def build(seed: int = 0, classes: int = 1000, stat_images: int = 2) -> onnx.ModelProto:
    """The model (opset 13), checked by onnx.checker."""
    b = _Builder(seed, stat_images)
    x = b.conv_bn("input", 3, 32, 3, 2, 1, True)
    cin = 32
    for t, c, n, s in BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            block_in, block_value = x, b.x
            hidden = cin * t
            y = b.conv_bn(x, cin, hidden, 1, 1, 1, True) if t != 1 else x
            y = b.conv_bn(y, hidden, hidden, 3, stride, hidden, True)
            y = b.conv_bn(y, hidden, c, 1, 1, 1, False)
            if stride == 1 and cin == c:
                y = b.add(y, block_in, block_value)
            x, cin = y, c
    x = b.conv_bn(x, cin, 1280, 1, 1, 1, True)
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool_out"], name="pool"))
    b.nodes.append(helper.make_node("Flatten", ["pool_out"], ["flat_out"], name="flatten", axis=1))
    fc_w = (b.rng.normal(0.0, 1.0, (classes, 1280)) * np.sqrt(1.0 / 1280)).astype(np.float32)
    b.nodes.append(helper.make_node("Gemm", ["flat_out", b._const("fc.weight", fc_w),
                                             b._const("fc.bias", np.zeros(classes))], ["logits"],
                                    name="fc", transB=1))
    graph = helper.make_graph(
        b.nodes, "mobilenet_v2_style",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="npuc-benchmarks")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write(path: str | Path, seed: int = 0) -> Path:
    path = Path(path)
    onnx.save(build(seed), str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write(args.out, args.seed)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
