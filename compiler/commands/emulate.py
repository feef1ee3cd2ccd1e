"""`npuc emulate`: run a model in one emulation mode (native, fp_optimized, quantized) on one input.

    npuc emulate MODEL [-s SCRIPT] --calib DATA --mode quantized --input x.npy [--input-shape x=1,3,48,192] [-o out.npz]

The quantized mode calibrates on DATA (folder, glob, .npy/.npz or images, through
npuc.calibration), applies the script's `quantization_param(...)`/`data_type(...)`
per-layer settings and `calibration(method=...)`, quantizes and runs the integer
reference executor. Outputs are printed (shape, dtype, min/max) and saved with -o.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from npuc.errors import NpucError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "emulate", help="run a model in native, fp_optimized or quantized (integer) emulation",
        description="Run MODEL on one input in an emulation mode of the reference executor.")
    p.add_argument("model", metavar="MODEL", help="model file (.onnx, .tflite)")
    p.add_argument("-s", "--script", metavar="SCRIPT", help="model script (.alls) with per-layer quantization settings")
    p.add_argument("--calib", metavar="DATA", help="calibration data (folder, glob, .npy/.npz, images); quantized mode")
    p.add_argument("--mode", choices=("native", "fp_optimized", "quantized"), default="quantized")
    p.add_argument("--input", action="append", default=[], metavar="[NAME=]FILE.npy",
                   help="input array (.npy); NAME= when the model has several inputs; may be repeated")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D,D,...",
                   help="fix an input's shape, e.g. x=1,3,48,192")
    p.add_argument("--no-dequantize", action="store_true", help="quantized mode: keep outputs as integer codes")
    p.add_argument("-o", "--output", metavar="OUT.npz", help="save the outputs here")
    p.set_defaults(func=run)


def _feeds(graph, specs: list[str]) -> dict[str, np.ndarray]:
    if not specs:
        raise NpucError("give the model input with --input x.npy")
    feeds: dict[str, np.ndarray] = {}
    for i, spec in enumerate(specs):
        name, _, path = spec.rpartition("=")
        if not name:
            if i >= len(graph.inputs):
                raise NpucError(f"more --input files than model inputs ({len(graph.inputs)})")
            name = graph.inputs[i].name
        try:
            feeds[name] = np.load(path)
        except (OSError, ValueError) as exc:
            raise NpucError(f"cannot read input '{path}': {exc}") from None
    return feeds


def quant_config_from_script(path: str, graph):
    """QuantConfig and calibration method from a script's quantization_param / data_type / calibration lines."""
    from npuc.quantization.config import QuantConfig
    from npuc.script import bind, default_registry, layers_from_graph, parse_file

    bound = bind(parse_file(path), default_registry(), layers_from_graph(graph))
    config = QuantConfig()
    method = "minmax"
    for d in bound.effective():
        layers = d.selected() or ()
        settings = d.settings()
        if d.name == "quantization_param":
            if settings.get("precision_mode"):
                config.set_precision_mode(layers, settings["precision_mode"])
            if settings.get("bias_mode"):
                config.set_bias_mode(layers, settings["bias_mode"])
        elif d.name == "data_type":
            config.set_data_type(layers, str(d.value("dtype")))
        elif d.name == "calibration" and settings.get("method"):
            method = str(settings["method"])
    return config, method


def run(args: argparse.Namespace) -> int:
    from npuc.backends.reference.emulation import Emulator, quantize_for_emulation, run_float_passes
    from npuc.frontends import load_model
    from npuc.frontends.onnx import parse_input_shapes

    shapes = parse_input_shapes(args.input_shape) if args.input_shape else None
    graph = load_model(args.model, input_shapes=shapes)
    feeds = _feeds(graph, args.input)
    emulator = Emulator(graph)
    if args.mode != "native":
        emulator.fp_optimized = run_float_passes(graph)
    if args.mode == "quantized":
        if not args.calib:
            raise NpucError("quantized emulation needs calibration data: give --calib DATA")
        from npuc.calibration.dataset import open_calibration_set

        config, method = quant_config_from_script(args.script, emulator.fp_optimized) if args.script else (None, "minmax")
        calib = open_calibration_set(args.calib, emulator.fp_optimized, None)
        items = (feeds_ for _, feeds_ in calib.iter_items())
        emulator.quantized = quantize_for_emulation(emulator.fp_optimized, items, config, method)
    outs = emulator.run(args.mode, feeds, dequantize=not args.no_dequantize)
    for name, value in outs.items():
        print(f"{name}: {value.dtype}{list(value.shape)} min {value.min():.6g} max {value.max():.6g}")
    if args.output:
        np.savez(Path(args.output), **{k.replace("/", "_"): v for k, v in outs.items()})
        print(f"saved {len(outs)} output(s) to {args.output}")
    return 0
