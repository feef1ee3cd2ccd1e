"""The quantization_overrides pass: encodings file -> fixed encodings; errors become PassErrors naming the file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from npuc.errors import PassError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.passes.base import PassContext
from npuc.passes.manager import PassManager
from npuc.passes.quantization_overrides import QuantizationOverrides


def model() -> Graph:
    g = Graph("m")
    x = g.add_input("x", DType.FLOAT32, (1, 4))
    w = g.add_const("fc.weight", np.ones((2, 4), np.float32))
    g.outputs = list(g.outputs_of(g.add_op("Gemm", [x, w], name="fc")))
    return g


def test_sets_fixed_encodings(tmp_path):
    path = tmp_path / "enc.json"
    path.write_text(json.dumps({
        "activation_encodings": {"fc": [{"bitwidth": 16, "min": -1.0, "max": 1.0, "is_symmetric": "True"}]},
        "param_encodings": {"fc.weight": [{"bitwidth": 8, "min": -1.0, "max": 1.0, "is_symmetric": "True"}] * 2},
    }))
    g = model()
    res = PassManager([QuantizationOverrides(path=str(path))]).run(g, PassContext()).records[0].result
    assert res.stats == {"activations": 1, "params": 1}
    assert g.tensor("fc").meta["fixed_quant"].bits == 16
    assert g.tensor("fc.weight").meta["fixed_quant"].axis == 0


def test_unknown_tensor_and_missing_path(tmp_path):
    path = tmp_path / "enc.json"
    path.write_text(json.dumps({"activation_encodings": {"fc1": [{"bitwidth": 8, "min": 0, "max": 1}]}}))
    with pytest.raises(PassError, match=r"'fc1' \(nearest: 'fc'"):
        PassManager([QuantizationOverrides(path=str(path))]).run(model(), PassContext())
    with pytest.raises(PassError, match="needs path="):
        PassManager([QuantizationOverrides()]).run(model(), PassContext())
