"""fold_normalization: the inserted (x - mean) / std folds into the first conv; exact in the interior."""
from __future__ import annotations

import numpy as np
import pytest

from npuc.calibration import insert_normalization
from npuc.ir.graph import Graph
from npuc.passes.fold_normalization import FoldNormalization

from pass_testing import F32, apply, kinds, run_outputs


def conv_model(pads=(1, 1, 1, 1), group=1, out_channels=4, zero_pad=False, extra_reader=False,
               first="Conv") -> Graph:
    """x (1, 3, 8, 8) raw pixels -> [Pad] -> Conv 3x3 (or MaxPool) -> Relu."""
    rng = np.random.default_rng(0)
    g = Graph("m")
    x = g.add_input("x", F32, (1, 3, 8, 8))
    t = x
    if zero_pad:
        t = g.outputs_of(g.add_op("Pad", [t], {"pads": (0, 0, 1, 1, 0, 0, 1, 1), "mode": "constant", "value": 0.0},
                                  name="pad"))[0]
    if first == "Conv":
        w = g.add_const("w", rng.standard_normal((out_channels, 3 // group, 3, 3)).astype(np.float32))
        b = g.add_const("b", rng.standard_normal(out_channels).astype(np.float32))
        op = g.add_op("Conv", [t, w, b], {"pads": pads, "group": group}, name="conv")
    else:
        op = g.add_op("MaxPool", [t], {"kernel": (2, 2), "strides": (2, 2)}, name="pool")
    y = g.outputs_of(op)[0]
    g.outputs = [g.outputs_of(g.add_op("Relu", [y], name="relu"))[0]]
    if extra_reader:
        g.outputs.append(g.outputs_of(g.add_op("Sigmoid", [x], name="other"))[0])
    return g


def normalized(g: Graph, mean, std) -> Graph:
    insert_normalization(g, mean, std)
    return g


def pixels(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).integers(0, 256, (1, 3, 8, 8)).astype(np.float32)}


def max_change(before: Graph, after: Graph, interior: bool = False) -> float:
    worst = 0.0
    for seed in range(3):
        a, b = (run_outputs(g, pixels(seed))[0].astype(np.float64) for g in (before, after))
        if interior:
            a, b = a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1]
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-6)))
    return worst


@pytest.mark.parametrize("mean,std", [([0.0] * 3, [255.0] * 3), ([128.0] * 3, [64.0, 32.0, 128.0]),
                                      ([127.5] * 3, [127.5] * 3)])
@pytest.mark.parametrize("group,pads", [(1, (0, 0, 0, 0)), (3, (0, 0, 0, 0)), (1, (1, 1, 1, 1))])
def test_folds_exactly_where_no_padding_is_read(mean, std, group, pads):
    """Integer means fold exactly everywhere; a half-integer mean exactly wherever no padded tap is read
    (everywhere without padding, the interior with it), and the border change stays within the bound."""
    g = normalized(conv_model(pads=pads, group=group, out_channels=3 if group == 3 else 4), mean, std)
    before = g.copy()
    res = apply(g, FoldNormalization())
    assert res.stats["folded"] == 1
    shift = int(np.rint(mean[0]))
    assert kinds(g) == (["Sub", "Conv", "Relu"] if shift else ["Conv", "Relu"])
    exact_everywhere = mean[0] == shift or not any(pads)
    assert max_change(before, g, interior=not exact_everywhere) < 1e-5
    assert (res.stats.get("border_error_bound", 0.0) == 0.0) == exact_everywhere
    if not exact_everywhere:  # at the border: what the bound says, and not more
        diff = max(float(np.max(np.abs(run_outputs(before, pixels(s))[0] - run_outputs(g, pixels(s))[0])))
                   for s in range(3))
        assert 0.0 < diff <= res.stats["border_error_bound"] + 1e-5


def test_encodings_and_record():
    """The pixels get u8 scale 1 (exact), the shifted pixels u8 scale 1 with the shift as zero point: the
    integer Sub passes codes through; the model's normalization record names the conv."""
    g = normalized(conv_model(), [127.5] * 3, [127.5] * 3)
    apply(g, FoldNormalization())
    x, y = g.tensor("x"), g.outputs_of(g.op("normalization/sub"))[0]
    assert (x.meta["fixed_quant"].scale, x.meta["fixed_quant"].zero_point) == ((1.0,), (0,))
    assert (y.meta["fixed_quant"].scale, y.meta["fixed_quant"].zero_point, y.meta["fixed_quant"].signed) \
        == ((1.0,), (128,), False)
    record = g.meta["normalization"]["x"]
    assert record["folded_into"] == "conv" and record["shift"] == 128.0 and record["ops"] == ["normalization/sub"]
    assert "normalization" in g.op("conv").origin
    assert not apply(g, FoldNormalization()).changed  # once


def test_folds_through_a_zero_pad():
    g = normalized(conv_model(pads=(0, 0, 0, 0), zero_pad=True), [127.5] * 3, [127.5] * 3)
    before = g.copy()
    res = apply(g, FoldNormalization())
    assert res.stats["folded"] == 1 and kinds(g) == ["Sub", "Pad", "Conv", "Relu"]
    assert max_change(before, g, interior=True) < 1e-5 and res.stats["border_error_bound"] > 0


@pytest.mark.parametrize("case,why", [
    ("imagenet", "no common integer shift"),
    ("pool", "not read by one Conv"),
])
def test_left_as_layers_with_the_reason(case, why, caplog):
    if case == "imagenet":
        g = normalized(conv_model(), [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    else:
        g = normalized(conv_model(first="MaxPool"), [127.5] * 3, [127.5] * 3)
    before = g.copy()
    res = apply(g, FoldNormalization())
    assert res.stats == {"left": 1} and kinds(g) == kinds(before)
    assert why in caplog.text and "'x'" in caplog.text
    assert "fixed_quant" not in g.tensor("x").meta


def test_pixels_pass_through_the_integer_sub_and_the_fold_reaches_the_output_grid():
    """Quantized end to end (calibrate, quantize, integer executor): the Sub's integer output codes are the
    pixels themselves, and folded, the int8 model's error is the output grid's own rounding (step / sqrt 12),
    while with the two normalization layers (whose 8-bit grid puts every pixel half a step off) it is
    well above it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "quantization_passes"))
    from quant_testing import quantize_graph

    from npuc.backends.reference.quantized_executor import QuantizedExecutor

    plain = normalized(conv_model(), [127.5] * 3, [127.5] * 3)
    folded = plain.copy()
    apply(folded, FoldNormalization())
    rms = {}
    for name, g in (("plain", plain), ("folded", folded)):
        q = quantize_graph(g, [pixels(s) for s in range(8)])
        errors = []
        for seed in range(100, 110):
            test, codes = pixels(seed), {}
            out = QuantizedExecutor(q).run(test, on_tensor=lambda t, v: codes.__setitem__(t.name, np.array(v)))
            errors.append(out[g.outputs[0].name] - run_outputs(plain, test)[0])
            if name == "folded":
                sub_out = g.outputs_of(g.op("normalization/sub"))[0].name
                np.testing.assert_array_equal(codes[sub_out], test["x"].astype(np.int64))
        floor = q.outputs[0].quant.scale[0] / np.sqrt(12.0)
        rms[name] = float(np.sqrt(np.mean(np.square(errors)))) / floor
    assert rms["folded"] < 1.1 and rms["plain"] > 1.25, rms


def test_without_a_normalization_it_says_so(caplog):
    g = conv_model()
    assert not apply(g, FoldNormalization()).changed
    assert "no normalization(...) layer to fold" in caplog.text
