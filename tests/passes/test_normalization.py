"""The normalization pass: raw pixels in, same outputs as the model on normalized input."""
from __future__ import annotations

import numpy as np
from pass_testing import apply, run_outputs

from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.passes.normalization import Normalization


def model() -> Graph:
    g = Graph("m")
    x = g.add_input("x", DType.FLOAT32, (1, 3, 4, 4))
    g.outputs = list(g.outputs_of(g.add_op("Relu", [x], name="relu")))
    return g


def test_folds_mean_and_std():
    plain, folded = model(), model()
    res = apply(folded, Normalization(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0)))
    assert res.changed and res.stats == {"inserted": 1}
    raw = np.random.default_rng(0).uniform(0, 255, (1, 3, 4, 4)).astype(np.float32)
    norm = (raw - np.reshape([10, 20, 30], (1, 3, 1, 1))) / np.reshape([2, 4, 8], (1, 3, 1, 1))
    np.testing.assert_allclose(run_outputs(folded, {"x": raw})[0], run_outputs(plain, {"x": norm.astype(np.float32)})[0],
                               rtol=1e-6)
    assert folded.meta["normalization"]["x"]["std"] == [2.0, 4.0, 8.0]
    assert not apply(folded, Normalization(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0))).changed
