"""`npuc analyze`: which layer loses the accuracy? SNR per layer (two kinds), quantization entropy, plots, HTML.

    npuc analyze MODEL -s SCRIPT --calib DATA -o REPORT/ [--input-shape x=1,3,48,192] [--letterbox topleft]
                 [--samples N] [--plot-layers N] [--no-sensitivity] [--table N]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from npuc.commands.common_args import add_calibration_args, add_float_model_args, add_input_shape_arg
from npuc.errors import NpucError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="per-layer quantization analysis: SNR (only-layer-n and all quantized), KL, plots, HTML",
        description="Compile MODEL as `npuc compile` does, then run it on N items of --calib in float and "
                    "quantized form and write REPORT/report.html, report.json, quantization_entropy.txt and "
                    "plots/: the SNR at the model outputs with only layer n quantized (sensitivity), each "
                    "layer's own output SNR with all layers quantized, per-layer KL divergence of weights and "
                    "outputs, histograms and scatter plots of the worst layers. Layers under 10 dB are flagged.")
    add_float_model_args(p)
    add_calibration_args(p, required=True)
    p.add_argument("-o", "--output", type=Path, default=Path("analysis"), help="report folder (default: analysis/)")
    add_input_shape_arg(p)
    p.add_argument("--samples", type=int, default=16, metavar="N", help="items of DATA to analyse (default 16)")
    p.add_argument("--plot-layers", type=int, default=12, metavar="N",
                   help="histogram and scatter plots for the N worst layers (default 12)")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="skip the only-layer-n-quantized SNR (the costly part)")
    p.add_argument("--threshold", type=float, default=10.0, metavar="DB", help="flag layers under DB (default 10)")
    p.add_argument("--table", type=int, default=15, metavar="N", help="show the N worst layers (0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from npuc.analysis import AnalysisOptions, AnalyzeRequest, analyze_model
    from npuc.analysis.report import render_table
    from npuc.driver import CompileRequest, check_script_path
    from npuc.frontends import parse_input_shapes

    check_script_path(args.script)
    if args.samples < 1:
        raise NpucError(f"--samples must be at least 1, got {args.samples}")
    preprocessing = None
    if args.channel_order or args.letterbox:
        from npuc.calibration import Preprocessing

        preprocessing = Preprocessing(channel_order=args.channel_order or "RGB", align=args.letterbox or "center")
    request = AnalyzeRequest(
        compile=CompileRequest(model=args.model, script=args.script, calib=args.calib,
                               input_shapes=parse_input_shapes(args.input_shape),
                               overrides=args.quantization_overrides, preprocessing=preprocessing,
                               strict=args.strict),
        out_dir=args.output, samples=args.samples, plot_layers=max(0, args.plot_layers),
        options=AnalysisOptions(sensitivity=not args.no_sensitivity, threshold_db=args.threshold))
    console = Console(width=None if Console().is_terminal else 160)
    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, disable=not err.is_terminal, transient=True) as bar:
        tasks: dict[str, int] = {}

        def on_layers(layers: int, samples: int) -> None:
            tasks["sample"] = bar.add_task("samples", total=samples)
            if not args.no_sensitivity:
                tasks["layer"] = bar.add_task("layers quantized alone", total=layers * samples)

        def progress(stage: str, steps: int) -> None:
            if stage in tasks:
                bar.advance(tasks[stage], steps)

        report = analyze_model(request, progress, on_layers)
    if args.table:
        console.print(render_table(report, args.table))
    for name, v in report.output_snr_db.items():
        console.print(f"output {name}: SNR {'exact' if v is None else f'{v:.1f} dB'} with all layers quantized",
                      highlight=False)
    flagged = report.flagged
    console.print(f"{len(flagged)} layer(s) under {report.threshold_db:g} dB"
                  + (": " + ", ".join(r.name for r in flagged[:10]) + (" ..." if len(flagged) > 10 else "")
                     if flagged else ""), highlight=False)
    console.print("time " + ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items()), highlight=False)
    console.print(f"wrote {args.output / 'report.html'} (+ report.json, quantization_entropy.txt, plots/)",
                  highlight=False)
    return 0
