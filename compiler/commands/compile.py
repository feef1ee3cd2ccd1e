"""`npuc compile`: the whole pipeline, model in, NPU binary + model info + per-layer timing out."""
from __future__ import annotations

import argparse
from pathlib import Path

from npuc.commands.common_args import add_calibration_args, add_float_model_args, add_input_shape_arg, add_target_args
from npuc.errors import NpucError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile", help="optimize, calibrate, quantize and compile a model into an NPU binary",
        description="Import MODEL (ONNX or TFLite), run the float rewrites, calibrate on --calib, quantize as the "
                    "model script says (default: int8, per-channel weights, minmax ranges), and write "
                    "OUT/model.npub, OUT/model_info.txt and OUT/layers.csv.")
    add_float_model_args(p)
    add_calibration_args(p)
    p.add_argument("-o", "--output", type=Path, default=Path("out"), help="output folder (default: out/)")
    add_input_shape_arg(p)
    p.add_argument("--outputs", default="", help="comma-separated tensors to end the model at (parse end)")
    add_target_args(p, "npu-s", "timing target (built-in: npu-s, npu-l)")
    p.add_argument("--export-encodings", type=Path, help="write the chosen encodings (AIMET format) here")
    p.add_argument("--export-onnx", type=Path, metavar="FILE", help="also write the quantized model as QDQ ONNX")
    p.add_argument("--export-onnx-float", type=Path, metavar="FILE",
                   help="also write the optimized float graph (after folding/CLE) as ONNX")
    p.add_argument("--dump-dir", type=Path, help="write numbered IR dumps of every pass here")
    p.add_argument("--table", type=int, default=10, metavar="N", help="show the N most expensive layers (0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from npuc.backends.npu.timing import render_table, summary_lines
    from npuc.driver import CompileRequest, check_script_path, compile_model, write_outputs
    from npuc.frontends import parse_input_shapes

    check_script_path(args.script)
    preprocessing = None
    if args.channel_order or args.letterbox:
        from npuc.calibration import Preprocessing

        preprocessing = Preprocessing(channel_order=args.channel_order or "RGB", align=args.letterbox or "center")
    request = CompileRequest(
        model=args.model, script=args.script, calib=args.calib,
        input_shapes=parse_input_shapes(args.input_shape),
        outputs=[o.strip() for o in args.outputs.split(",") if o.strip()],
        target=args.target, target_paths=args.target_path, overrides=args.quantization_overrides,
        preprocessing=preprocessing, dump_dir=args.dump_dir, strict=args.strict,
    )
    if args.output.exists() and not args.output.is_dir():
        raise NpucError(f"output '{args.output}' exists and is not a folder")
    result = compile_model(request)
    files = write_outputs(result, args.output, args.export_encodings)
    if args.export_onnx or args.export_onnx_float:
        from npuc.export import exactness_note, export_float_onnx, export_qdq_onnx, save_onnx

        if args.export_onnx:
            files["qdq_onnx"] = save_onnx(export_qdq_onnx(result.quantized), args.export_onnx)
            note = exactness_note(result.quantized)
            if note:
                print(f"note         {note}")
        if args.export_onnx_float:
            files["float_onnx"] = save_onnx(export_float_onnx(result.fp_optimized), args.export_onnx_float)
    console = Console(width=None if Console().is_terminal else 160)
    if args.table:
        console.print(render_table(result.timing, limit=args.table))
    for line in summary_lines(result.timing):
        console.print(line, highlight=False)
    console.print(f"binary       {len(result.binary):,} bytes", highlight=False)
    console.print("compile time " + ", ".join(f"{k} {v:.2f}s" for k, v in result.stage_seconds.items()),
                  highlight=False)
    for kind, path in files.items():
        console.print(f"wrote        {path}  ({kind})", highlight=False)
    return 0
