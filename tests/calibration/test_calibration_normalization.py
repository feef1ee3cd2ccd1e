"""normalization(mean, std) folded into the model: the compiled model takes raw pixels."""
from __future__ import annotations

import numpy as np
import pytest
from calib_fixtures import conv_model

from npuc.backends.reference.executor import run_graph
from npuc.calibration.normalization import insert_normalization
from npuc.errors import ScriptError
from npuc.ir.verify import find_problems

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def test_model_with_normalization_on_raw_pixels_equals_model_on_normalized_input():
    plain = conv_model()
    folded = conv_model()
    assert insert_normalization(folded, MEAN, STD) is True
    assert find_problems(folded) == []
    raw = np.random.default_rng(0).integers(0, 256, (1, 3, 8, 8)).astype(np.float32)
    normalized = ((raw - np.reshape(MEAN, (1, 3, 1, 1))) / np.reshape(STD, (1, 3, 1, 1))).astype(np.float32)
    want = run_graph(plain, {"x": normalized})
    got = run_graph(folded, {"x": raw})
    np.testing.assert_allclose(got["pool"], want["pool"], rtol=1e-5, atol=1e-6)
    assert [op.kind for op in folded.ops()][:2] == ["Sub", "Mul"]
    assert folded.inputs[0].name == "x"


def test_meta_records_the_layer():
    g = conv_model()
    insert_normalization(g, [0.0], [255.0])
    rec = g.meta["normalization"]["x"]
    assert rec["mean"] == [0.0] and rec["std"] == [255.0] and rec["axis"] == 1
    assert rec["ops"] == ["normalization/sub", "normalization/mul"]
    assert g.producer(g.tensor(rec["output"])).kind == "Mul"


def test_same_normalization_twice_is_a_noop_different_is_an_error():
    g = conv_model()
    insert_normalization(g, MEAN, STD)
    n_ops = len(g)
    assert insert_normalization(g, MEAN, STD) is False
    assert len(g) == n_ops
    with pytest.raises(ScriptError, match="already has a normalization"):
        insert_normalization(g, [0, 0, 0], [1, 1, 1])


def test_nhwc_input_uses_last_axis():
    from npuc.ir.dtypes import DType
    from npuc.ir.graph import Graph

    g = Graph("nhwc")
    x = g.add_input("img", DType.FLOAT32, (1, 4, 4, 3), layout="NHWC")
    g.outputs = list(g.outputs_of(g.add_op("Relu", [x])))
    insert_normalization(g, MEAN, STD)
    raw = np.full((1, 4, 4, 3), 200.0, np.float32)
    out = run_graph(g, {"img": raw})[g.outputs[0].name]
    np.testing.assert_allclose(out[0, 0, 0], (200.0 - np.array(MEAN)) / np.array(STD), rtol=1e-5)


@pytest.mark.parametrize("mean, std, match", [
    ([1, 2], [1, 1, 1], "2 mean value"),
    ([1, 2, 3], [1, 0, 1], "non-zero"),
])
def test_bad_parameters(mean, std, match):
    with pytest.raises(ScriptError, match=match):
        insert_normalization(conv_model(), mean, std)


def test_unknown_input_is_named():
    with pytest.raises(ScriptError, match="'image' is not a model input.*'x'"):
        insert_normalization(conv_model(), MEAN, STD, input_name="image")
