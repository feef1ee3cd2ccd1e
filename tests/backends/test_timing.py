"""Timing model: sanity of the cost rules and golden per-layer tables for each built-in target."""
from pathlib import Path

import numpy as np
import pytest

from npuc.backends.npu.target import TargetError, available_targets, load_target, parse_target
from npuc.backends.npu.timing import estimate, layer_work_from_graph, to_csv
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph

GOLDEN = Path(__file__).parent / "golden"


def small_net(act: DType = DType.INT8, weight: DType = DType.INT8, tail_reshape: bool = True) -> Graph:
    """conv3x3(3->16) -> depthwise3x3 -> conv1x1(16->32) -> global pool -> gemm(32->10) [-> reshape]."""
    g = Graph("small_net")
    x = g.add_input("x", act, (1, 3, 64, 64))
    w1 = g.add_const("w1", np.zeros((16, 3, 3, 3)), dtype=weight)
    c1 = g.add_op("Conv", [x, w1], {"pads": (1, 1, 1, 1), "strides": (2, 2)}, name="conv1")
    wd = g.add_const("wd", np.zeros((16, 1, 3, 3)), dtype=weight)
    dw = g.add_op("Conv", [g.outputs_of(c1)[0], wd], {"pads": (1, 1, 1, 1), "group": 16}, name="dw")
    w2 = g.add_const("w2", np.zeros((32, 16, 1, 1)), dtype=weight)
    c2 = g.add_op("Conv", [g.outputs_of(dw)[0], w2], name="pw")
    gp = g.add_op("GlobalAveragePool", g.outputs_of(c2), name="pool")
    flat = g.add_op("Reshape", g.outputs_of(gp), {"shape": (1, 32)}, name="flatten")
    wf = g.add_const("wf", np.zeros((10, 32)), dtype=weight)
    fc = g.add_op("Gemm", [g.outputs_of(flat)[0], wf], name="fc")
    out = g.outputs_of(fc)[0]
    if tail_reshape:
        out = g.outputs_of(g.add_op("Reshape", [out], {"shape": (1, 10, 1, 1)}, name="tail"))[0]
    g.outputs = [out]
    return g


@pytest.mark.parametrize("target", ["npu-s", "npu-l"])
def test_golden_layer_table(target):
    report = estimate(layer_work_from_graph(small_net()), load_target(target))
    text = to_csv(report)
    golden = GOLDEN / f"timing_small_net_{target}.csv"
    if not golden.exists():
        golden.write_text(text)
        pytest.fail(f"golden file {golden.name} was missing and has been written: review and commit it")
    assert text == golden.read_text()


def test_cycles_sum_and_units():
    report = estimate(layer_work_from_graph(small_net()), load_target("npu-s"))
    assert report.total_cycles == sum(lt.cycles for lt in report.layers)
    assert report.latency_ms == pytest.approx(report.total_cycles / 800e3)
    assert report.fps == pytest.approx(1000.0 / report.latency_ms)
    assert abs(sum(report.percent(lt) for lt in report.layers) - 100.0) < 1e-6
    assert report.total_macs == 16 * 32 * 32 * 27 + 16 * 32 * 32 * 9 + 32 * 32 * 32 * 16 + 10 * 32


def test_sixteen_bit_costs_two_to_three_times_eight_bit():
    target = load_target("npu-s")
    big = lambda d: estimate(layer_work_from_graph(small_net(d, d)), target)  # noqa: E731
    i8 = sum(lt.cycles - target.layer_overhead_cycles for lt in big(DType.INT8).layers if lt.work.category == "mac")
    i16 = sum(lt.cycles - target.layer_overhead_cycles for lt in big(DType.INT16).layers if lt.work.category == "mac")
    assert 2.0 <= i16 / i8 <= 3.0


def test_depthwise_uses_the_array_poorly_and_pruning_tail_helps():
    report = estimate(layer_work_from_graph(small_net()), load_target("npu-s"))
    util = {lt.work.name: lt.utilization for lt in report.layers}
    assert util["dw"] < 0.1 < util["pw"]
    pruned = estimate(layer_work_from_graph(small_net(tail_reshape=False)), load_target("npu-s"))
    assert pruned.total_cycles < report.total_cycles


def test_weights_beyond_sram_are_streamed_from_dram():
    target = load_target("npu-s")
    g = Graph("fat")
    x = g.add_input("x", DType.INT8, (1, 1024))
    prev = x
    for i in range(3):  # 3 x 256 KiB of weights; weight SRAM holds 512 KiB
        w = g.add_const(f"w{i}", np.zeros((256, 1024)), dtype=DType.INT8)
        prev = g.outputs_of(g.add_op("Gemm", [prev, w], name=f"fc{i}"))[0]
        if i < 2:
            w4 = g.add_const(f"up{i}", np.zeros((1024, 256)), dtype=DType.INT8)
            prev = g.outputs_of(g.add_op("Gemm", [prev, w4], name=f"up{i}"))[0]
    g.outputs = [prev]
    report = estimate(layer_work_from_graph(g), target)
    dram = {lt.work.name: lt.dram_bytes for lt in report.layers}
    assert dram["fc0"] == 1024  # graph input only; weights resident
    assert dram["fc2"] >= 256 * 1024  # streamed


def test_target_files_are_validated(tmp_path):
    with pytest.raises(TargetError, match="missing key 'macs_per_cycle.int16'"):
        parse_target('name="x"\nclock_mhz=1.0\n[mac_array]\nrows=1\ncols=1\n[macs_per_cycle]\nint8=1\n', "x.toml")
    with pytest.raises(TargetError, match="not valid TOML"):
        parse_target("name = ", "bad.toml")
    with pytest.raises(TargetError, match="did you mean 'npu-s'"):
        load_target("npu_s")
    text = (Path(__file__).parents[2] / "backends" / "targets" / "npu-s.toml").read_text()
    (tmp_path / "mine.toml").write_text(text.replace('name = "npu-s"', 'name = "mine"').replace("clock_mhz = 800.0", "clock_mhz = 400.0"))
    assert load_target("mine", [tmp_path]).clock_mhz == 400.0
    assert {"npu-s", "npu-l", "mine"} <= set(available_targets([tmp_path]))


def test_integer_prelu_and_bilinear_resize_are_priced_as_int8_vector_layers():
    """PRelu and bilinear Resize run in integer form: vector layers at the int8 rate, a bilinear resize
    making four passes (taps) per output, a nearest one two."""
    g = Graph("upsample")
    x = g.add_input("x", DType.INT8, (1, 8, 16, 16))
    slope = g.add_const("slope", np.zeros((8, 1, 1)), dtype=DType.INT16)
    p = g.outputs_of(g.add_op("PRelu", [x, slope], name="prelu"))[0]
    up = {"size": (1, 8, 32, 32), "coordinate_transformation_mode": "half_pixel"}
    lin = g.outputs_of(g.add_op("Resize", [p], {**up, "mode": "linear"}, name="bilinear"))[0]
    near = g.outputs_of(g.add_op("Resize", [p], {**up, "mode": "nearest"}, name="nearest"))[0]
    g.outputs = [lin, near]
    target = load_target("npu-s")
    layers = {lt.work.name: lt for lt in estimate(layer_work_from_graph(g), target).layers}
    assert all(lt.work.category == "vector" and lt.work.dtype_key == "int8" for lt in layers.values())
    rate = target.vector_elements_per_cycle["int8"]
    assert layers["prelu"].compute_cycles == pytest.approx(8 * 16 * 16 / rate)
    assert layers["bilinear"].compute_cycles == pytest.approx(4 * 8 * 32 * 32 / rate)
    assert layers["nearest"].compute_cycles == pytest.approx(2 * 8 * 32 * 32 / rate)
