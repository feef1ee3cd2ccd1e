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


def test_16bit_encoding_on_an_8bit_layer_reaches_its_8bit_reader(tmp_path):
    """A 16-bit encoding given for the output of a layer that is 8-bit (and read by an 8-bit layer): the
    producer follows the file (16-bit output), the 8-bit reader gets an 8-bit encoding spanning the file's
    range (the fixed tensor has no calibration observer of its own); the quantized model runs and tracks
    the float one."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "calibration"))
    from calib_fixtures import conv_model, write_arrays

    from npuc.backends.reference.executor import Executor
    from npuc.backends.reference.quantized_executor import QuantizedExecutor
    from npuc.passes.calibrate import Calibrate
    from npuc.passes.insert_dtype_conversions import InsertDtypeConversions
    from npuc.passes.quantize import Quantize
    from npuc_testing import snr_db

    write_arrays(tmp_path / "calib", 4)
    path = tmp_path / "enc.json"
    path.write_text(json.dumps({"activation_encodings": {
        "relu": [{"bitwidth": 16, "min": 0.0, "max": 2.0, "is_symmetric": "False"}]}}))
    g = conv_model()
    float_model = g.copy()
    ctx = PassContext(state={"calibration_set": str(tmp_path / "calib")})
    PassManager([QuantizationOverrides(path=str(path)), Calibrate(), Quantize(), InsertDtypeConversions()]).run(g, ctx)
    relu = g.tensor("relu")
    assert relu.quant.bits == 16 and relu.quant.scale[0] == pytest.approx(2.0 / 65535)
    reader = g.inputs_of(g.op("pool"))[0]
    assert reader.quant.bits == 8 and reader.quant.scale[0] * (reader.quant.qmax - reader.quant.zero_point[0]) \
        == pytest.approx(2.0, rel=0.01)
    x = np.load(sorted((tmp_path / "calib").glob("*.npy"))[0])
    (name,) = [t.name for t in float_model.inputs]
    ref = Executor(float_model).run({name: x})
    got = QuantizedExecutor(g).run({name: x})
    assert snr_db(ref["pool"], got["pool"]) > 25
