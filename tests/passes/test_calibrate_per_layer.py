"""Per-layer calibration methods: `calibration(layers, method=...)` gives the selected layers' output tensors
their own range algorithm, every other tensor keeps the global one."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "calibration"))
from calib_fixtures import conv_model  # noqa: E402

from npuc.calibration.statistics import (  # noqa: E402
    OBSERVER, OBSERVER_PER_CHANNEL, LayerObserverConfig, ObserverConfig, collect_statistics,
)
from npuc.script_config import pipeline_settings, script_registry  # noqa: E402
from npuc.errors import CalibrationError  # noqa: E402
from npuc.passes.base import PassContext  # noqa: E402
from npuc.passes.manager import PassManager, make_pass  # noqa: E402
from npuc.script.binder import bind  # noqa: E402
from npuc.script.diagnostics import ScriptDiagnosticError  # noqa: E402
from npuc.script.explain import explain_rows, layer_rows  # noqa: E402
from npuc.script.layers import layers_from_graph  # noqa: E402
from npuc.script.parser import parse  # noqa: E402


def data_with_outlier(n: int = 20):
    """n ordinary items and one with a single huge input value (an outlier that reaches every tensor)."""
    rng = np.random.default_rng(3)
    items = [(f"item{i}", {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}) for i in range(n)]
    odd = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    odd[0, :, 4, 4] = 200.0
    return items + [("odd", {"x": odd})]


def bound_script(text: str, graph, strict: bool = False):
    return bind(parse(text, "model.alls"), script_registry(), layers_from_graph(graph), strict=strict)


def test_script_binds_per_layer_methods_and_keeps_the_global_one():
    g = conv_model()
    s = pipeline_settings(bound_script(
        "calibration({relu}, method=percentile, percentile=99)\n"
        "calibration(method=minmax, per_channel=True)\n"  # a global line after a per-layer one does not undo it
        "calibration(output_layer*, method=mse)\n", g))
    assert s.calibrate_options == {"method": "minmax", "per_channel": True}
    assert s.calibration_layers == [
        LayerObserverConfig(("relu",), "percentile", 99.0, source="model.alls:1"),
        LayerObserverConfig(("pool",), "mse", source="model.alls:3"),  # output_layer1 is the pool
    ]
    assert not s.notes  # per-layer methods are no longer refused


def test_selected_tensor_gets_the_other_method_and_the_rest_keep_minmax():
    g = conv_model()
    data = data_with_outlier()
    minmax = collect_statistics(g, data, ObserverConfig("minmax"))
    percentile = collect_statistics(g, data, ObserverConfig("percentile", percentile=99.0))
    mixed = collect_statistics(g, data, ObserverConfig("minmax"),
                               layer_configs=[LayerObserverConfig(("relu",), "percentile", 99.0)])
    assert mixed.tensor_configs == {"relu": ObserverConfig("percentile", percentile=99.0)}
    # the selected layer's output: the percentile range, which clips the outlier
    assert mixed.observers["relu"].range(8) == percentile.observers["relu"].range(8)
    assert mixed.observers["relu"].range(8)[1] < 0.5 * minmax.observers["relu"].range(8)[1]
    # every other tensor: minmax, the outlier included
    for name in ("x", "conv", "pool"):
        assert mixed.observers[name].range(8) == minmax.observers[name].range(8), name
    assert mixed.observers["x"].range(8)[1] == 200.0


def test_later_entries_win_field_by_field_and_per_channel_is_per_layer():
    g = conv_model()
    data = data_with_outlier(4)
    col = collect_statistics(g, data, ObserverConfig("minmax"), layer_configs=[
        LayerObserverConfig(("conv", "relu"), "percentile", 99.5),
        LayerObserverConfig(("relu",), percentile=99.9, per_channel=True),
        LayerObserverConfig(("pool",), "minmax"),  # same as the global one: no own config
    ])
    assert col.tensor_configs == {"conv": ObserverConfig("percentile", 99.5),
                                  "relu": ObserverConfig("percentile", 99.9, per_channel=True)}
    assert set(col.per_channel) == {"relu"}
    with pytest.raises(CalibrationError, match="model.alls:2: unknown calibration method 'entropy'"):
        LayerObserverConfig(("relu",), "entropy", source="model.alls:2")


def test_through_the_calibrate_pass_from_a_script(tmp_path):
    g = conv_model()
    for label, feeds in data_with_outlier():
        np.save(tmp_path / f"{label}.npy", feeds["x"])
    s = pipeline_settings(bound_script("calibration({relu}, method=percentile, percentile=99)\n", g))
    p = make_pass("calibrate", {**s.calibrate_options, "layer_methods": tuple(s.calibration_layers)})
    ctx = PassContext(state={"calibration_set": str(tmp_path)})
    result = PassManager([p]).run(g, ctx).records[0].result
    assert result.stats["per_layer_method_tensors"] == 1
    assert ctx.get("calibration").layer_methods == {"relu": "percentile 99"}
    ref = conv_model()
    PassManager([make_pass("calibrate")]).run(ref, PassContext(state={"calibration_set": str(tmp_path)}))
    for name in ("x", "conv", "pool"):
        assert g.tensor(name).meta[OBSERVER].range(8) == ref.tensor(name).meta[OBSERVER].range(8)
    assert g.tensor("relu").meta[OBSERVER].range(8)[1] < 0.5 * ref.tensor("relu").meta[OBSERVER].range(8)[1]
    assert all(OBSERVER_PER_CHANNEL not in t.meta for t in g.tensors())
    with pytest.raises(Exception, match="calibration\\(layers, method=...\\)"):
        make_pass("calibrate", {"layer_methods": ("relu",)})


def test_bad_method_and_unknown_layer_point_at_the_script():
    g = conv_model()
    with pytest.raises(ScriptDiagnosticError) as err:
        bound_script("calibration(method=minmax)\ncalibration({relu}, method=mse2)\n", g)
    assert "model.alls:2:28: error" in str(err.value) and "mse2" in str(err.value)
    bound = bound_script("calibration({rleu}, method=mse)\n", g)
    (warning,) = bound.warnings
    assert warning.format().startswith("model.alls:1:14: warning: selector 'rleu' matches no layer")
    assert "did you mean 'relu'" in warning.format()
    assert pipeline_settings(bound).calibration_layers == []
    with pytest.raises(ScriptDiagnosticError, match="model.alls:1:14"):
        bound_script("calibration({rleu}, method=mse)\n", g, strict=True)


def test_script_check_explains_the_per_layer_lines():
    g = conv_model()
    bound = bound_script("calibration(method=minmax)\ncalibration({relu, output_layer*}, method=mse)\n", g)
    rows = explain_rows(bound)
    assert rows[0].scope == "all layers" and rows[0].settings == {"method": "minmax"}
    assert rows[1].scope == "layers" and rows[1].layers == ("relu", "pool")
    assert rows[1].settings == {"method": "mse"}
    assert {r.name: r.settings for r in layer_rows(bound)} == {"relu": {"method": "mse"}, "pool": {"method": "mse"}}
    assert rows[0].note == "all layers but those set per layer"
    assert rows[1].note == "these layers' output ranges; wins over lines without layers"
    g.add_op("Reshape", [g.outputs[0]], {"shape": (1, 4)}, name="flat")
    g.outputs = list(g.outputs_of(g.op("flat")))
    row = explain_rows(bound_script("calibration({flat}, method=mse)\n", g))[0]
    assert "1 pass-through layer(s) (flat) take their input's range instead" in row.note
