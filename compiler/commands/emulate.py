"""`npuc emulate`: run a model in one emulation mode (native, fp_optimized, quantized) on one input.

    npuc emulate MODEL [-s SCRIPT] --calib DATA --mode quantized --input x.npy [--input-shape x=1,3,48,192] [-o out.npz]

The modes run the same pipeline as `npuc compile` (the script applies in full):
native is the model as imported, fp_optimized after the float rewrites, and
quantized after calibration on DATA and quantization, run by the integer
reference executor (bit-exact with the simulator). Outputs are printed (shape, dtype, min/max) and saved with -o.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from npuc.commands.common_args import add_input_shape_arg
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
    add_input_shape_arg(p)
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


def _normalized(feeds: dict[str, np.ndarray], records: dict) -> dict[str, np.ndarray]:
    """Apply (x - mean) / std of the script's normalization to raw inputs, so every mode takes the same input."""
    out = dict(feeds)
    for name, rec in records.items():
        if name in out:
            x = out[name].astype(np.float32)
            shape = [1] * x.ndim
            shape[rec["axis"]] = -1
            mean = np.asarray(rec["mean"], np.float32).reshape(shape if len(rec["mean"]) > 1 else ())
            std = np.asarray(rec["std"], np.float32).reshape(shape if len(rec["std"]) > 1 else ())
            out[name] = (x - mean) / std
    return out


def run(args: argparse.Namespace) -> int:
    from npuc.backends.reference.executor import run_graph
    from npuc.backends.reference.quantized_executor import run_quantized
    from npuc.driver import CompileRequest, build_float, compile_model
    from npuc.frontends import parse_input_shapes

    request = CompileRequest(
        model=Path(args.model), script=Path(args.script) if args.script else None, calib=args.calib,
        input_shapes=parse_input_shapes(args.input_shape),
    )
    if args.mode == "quantized":
        if not args.calib:
            raise NpucError("quantized emulation needs calibration data: give --calib DATA")
        graph = compile_model(request).quantized
        outs = run_quantized(graph, _feeds(graph, args.input), dequantize=not args.no_dequantize)
    else:
        stage = build_float(request)
        graph = stage.native if args.mode == "native" else stage.graph
        feeds = _feeds(graph, args.input)
        if args.mode == "native":  # the script's normalization is not in the imported model: apply it here
            feeds = _normalized(feeds, stage.graph.meta.get("normalization", {}))
        outs = run_graph(graph, feeds)
    for name, value in outs.items():
        print(f"{name}: {value.dtype}{list(value.shape)} min {value.min():.6g} max {value.max():.6g}")
    if args.output:
        np.savez(Path(args.output), **{k.replace("/", "_"): v for k, v in outs.items()})
        print(f"saved {len(outs)} output(s) to {args.output}")
    return 0
