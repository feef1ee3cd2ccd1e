"""Small float graphs and helpers shared by the accuracy-recovery pass tests (CLE, equalization, bias correction, AdaRound)."""
from __future__ import annotations

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

from npuc_testing import snr_db  # noqa: F401 - re-exported to the tests of this folder

F32 = DType.FLOAT32


def conv(g: Graph, x, cout: int, k: int, rng, group: int = 1, pads: int = 0, act=None, spread: float = 0.0,
         bias_shift: float = 0.0, stride: int = 1, name: str | None = None):
    """Add a Conv with random weights whose output-channel ranges differ by up to 10**spread."""
    cin = x.shape[1]
    w = rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))
    w *= (10.0 ** rng.uniform(-spread, spread, cout)).reshape(-1, 1, 1, 1)
    b = rng.normal(bias_shift, 0.1, cout)
    attrs = {"group": group, "pads": (pads,) * 4, "strides": (stride, stride), "activation": act}
    op = g.add_op("Conv", [x, g.add_const("w", w.astype(np.float32)), g.add_const("b", b.astype(np.float32))],
                  attrs, name=name)
    return g.outputs_of(op)[0]


def chain(seed: int = 0, spread: float = 1.0, depthwise: bool = True, shape=(1, 4, 10, 10)) -> Graph:
    """conv(relu) -> [depthwise conv(relu, padded)] -> conv (identity), the output."""
    rng = np.random.default_rng(seed)
    g = Graph("chain")
    x = g.add_input("x", F32, shape)
    y = conv(g, x, 8, 3, rng, pads=1, act="relu", spread=spread, name="c1")
    if depthwise:
        y = conv(g, y, 8, 3, rng, group=8, pads=1, act="relu", spread=spread, name="dw")
    y = conv(g, y, 6, 1, rng, name="c3")
    g.outputs = [y]
    return g


def feeds(graph: Graph, n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{t.name: rng.standard_normal(t.shape).astype(np.float32) for t in graph.inputs} for _ in range(n)]


def outputs(graph: Graph, items, quantized: bool = False) -> np.ndarray:
    """The first output over all items, stacked."""
    from npuc.backends.reference.executor import run_graph
    from npuc.backends.reference.quantized_executor import run_quantized

    run = run_quantized if quantized else run_graph
    return np.concatenate([run(graph, f)[graph.outputs[0].name] for f in items])


def wide_channel_block(seed: int = 0) -> Graph:
    """BlazeBlock-like: conv(relu) -> depthwise conv (no activation) -> 1x1 conv (no activation), the output.
    The depthwise output channel 3 is ~100x wider than the others through its bias (a weight-range CLE
    does not see it), and pw reads it with 100x smaller weights, so every channel matters at the output
    (as for the outlier channels of trained networks)."""
    rng = np.random.default_rng(seed)
    g = Graph("wide")
    x = g.add_input("x", F32, (1, 4, 12, 12))
    y = conv(g, x, 8, 1, rng, act="relu", name="c1")
    y = conv(g, y, 8, 3, rng, group=8, pads=1, name="dw")
    b = np.array(g.inputs_of(g.op("dw"))[2].data)
    b[3] = -150.0
    g.set_input(g.op("dw"), 2, g.add_const("dw_b_wide", b.astype(np.float32)))
    g.outputs = [conv(g, y, 6, 1, rng, name="pw")]
    w2 = np.array(g.inputs_of(g.op("pw"))[1].data)
    w2[:, 3] /= 100.0
    g.set_input(g.op("pw"), 1, g.add_const("pw_narrow", w2.astype(np.float32)))
    return g
