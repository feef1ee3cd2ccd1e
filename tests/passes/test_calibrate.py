"""The calibrate pass: data from the context, seeded and deterministic, clear errors, fixed encodings kept."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "calibration"))
from calib_fixtures import conv_model, write_arrays, write_images  # noqa: E402

from npuc.calibration import Preprocessing, insert_normalization, open_calibration_set  # noqa: E402
from npuc.calibration.statistics import OBSERVER, OBSERVER_PER_CHANNEL  # noqa: E402
from npuc.errors import PassError  # noqa: E402
from npuc.ir.quant_params import QuantParams  # noqa: E402
from npuc.passes.base import PassContext  # noqa: E402
from npuc.passes.calibrate import Calibrate, CalibrationSummary  # noqa: E402
from npuc.passes.manager import PassManager, make_pass  # noqa: E402


def run(graph, pass_, **state):
    ctx = PassContext(state=dict(state))
    result = PassManager([pass_]).run(graph, ctx).records[0].result
    return ctx, result


def ranges(graph, bits=8):
    return {t.name: t.meta[OBSERVER].range(bits) for t in graph.tensors() if OBSERVER in t.meta}


def test_observers_on_every_activation_and_summary(tmp_path):
    write_arrays(tmp_path, 6)
    g = conv_model()
    ctx, res = run(g, Calibrate(), calibration_set=str(tmp_path))
    assert res.changed and res.stats == {"items": 6, "tensors": 4}
    assert set(ranges(g)) == {"x", "conv", "relu", "pool"}
    assert all(OBSERVER not in t.meta for t in g.constants())
    summary = ctx.get("calibration")
    assert isinstance(summary, CalibrationSummary) and summary.items == 6 and summary.method == "minmax"
    stacked = np.stack([np.load(p) for p in sorted(tmp_path.glob("*.npy"))])
    assert ranges(g)["x"] == (float(stacked.min()), float(stacked.max()))


def test_deterministic_and_seeded(tmp_path):
    write_arrays(tmp_path, 12)
    runs = []
    for seed in (5, 5, 6):
        g = conv_model()
        run(g, Calibrate(method="kl", calibset_size=4, seed=seed, batch_size=3), calibration_set=str(tmp_path))
        runs.append(ranges(g))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_batch_size_does_not_change_results(tmp_path):
    write_arrays(tmp_path, 7)
    got = []
    for bs in (1, 3, 16):
        g = conv_model()
        run(g, Calibrate(method="percentile", percentile=99.0, batch_size=bs), calibration_set=str(tmp_path))
        got.append(ranges(g))
    assert got[0] == got[1] == got[2]


def test_images_with_normalization_folded_into_the_model(tmp_path):
    write_images(tmp_path, 3, size=(16, 12))
    g = conv_model()
    insert_normalization(g, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    run(g, Calibrate(), calibration_set=str(tmp_path), preprocessing=Preprocessing(pad_value=114))
    lo, hi = g.tensor("x").meta[OBSERVER].range()
    assert 0.0 <= lo and hi <= 255.0  # the model input sees raw pixels
    lo_n, hi_n = g.tensor("normalization/mul").meta[OBSERVER].range()
    assert -2.2 < lo_n < 0 < hi_n < 2.7


def test_per_channel_option(tmp_path):
    write_arrays(tmp_path, 2)
    g = conv_model()
    run(g, Calibrate(per_channel=True), calibration_set=str(tmp_path))
    assert g.tensor("conv").meta[OBSERVER_PER_CHANNEL].range()[0].shape == (4,)


def test_fixed_encodings_are_not_observed_and_survive(tmp_path):
    write_arrays(tmp_path, 2)
    g = conv_model()
    fixed = QuantParams.per_tensor(0.05, 0, 8, False)
    g.tensor("relu").meta["fixed_quant"] = fixed
    run(g, Calibrate(), calibration_set=str(tmp_path))
    assert g.tensor("relu").meta["fixed_quant"] is fixed and OBSERVER not in g.tensor("relu").meta


def test_prepared_calibration_set_and_options_key(tmp_path):
    write_arrays(tmp_path, 3)
    g = conv_model()
    run(g, Calibrate(), calibration_set=open_calibration_set(tmp_path, g))
    assert "conv" in ranges(g)
    g2 = conv_model()
    ctx = PassContext(options={"calibration_data": str(tmp_path / "*.npy")})
    PassManager([Calibrate()]).run(g2, ctx)
    assert ranges(g2) == ranges(g)


def test_errors_name_the_problem(tmp_path):
    write_arrays(tmp_path, 3)
    with pytest.raises(PassError, match="no calibration data"):
        run(conv_model(), Calibrate())
    with pytest.raises(PassError, match="3 item.*fewer than calibset_size=64"):
        run(conv_model(), Calibrate(calibset_size=64), calibration_set=str(tmp_path))
    with pytest.raises(PassError, match=r"\(1, 3, 8, 8\).*'x' \(1, 3, 6, 6\)"):
        run(conv_model(h=6, w=6), Calibrate(), calibration_set=str(tmp_path))
    stale = open_calibration_set(tmp_path, conv_model())
    with pytest.raises(PassError, match="feeds .* but model 'tiny' takes"):
        run(conv_model(h=6, w=6), Calibrate(), calibration_set=stale)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PassError, match="has no images"):
        run(conv_model(), Calibrate(), calibration_set=str(tmp_path / "empty"))


def test_options_are_validated():
    with pytest.raises(PassError, match="batch_size"):
        make_pass_local("calibrate", {"batch_size": 0})
    assert Calibrate(method="mse").describe() == "calibrate(method='mse')"


def make_pass_local(name, options):
    """make_pass when the pass is registered; else instantiate directly with the same error wrapping."""
    try:
        return make_pass(name, options)
    except PassError as exc:
        if "unknown pass" not in str(exc):
            raise
    try:
        return Calibrate(**options)
    except ValueError as exc:
        raise PassError(str(exc)) from None
