"""`npuc dump`: import a model, run (part of) a pass pipeline and print the IR."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from npuc.commands.common_args import add_input_shape_arg
from npuc.passes.manager import DEFAULT_CLEANUP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dump",
        help="print a model's IR after any pass of the cleanup pipeline",
        description="Import MODEL, run the pass pipeline (by default the cleanup: "
        f"{', '.join(DEFAULT_CLEANUP)}) and print the IR. With --after, stop after that pass "
        "('input' for the imported IR before any pass).",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.onnx)")
    add_input_shape_arg(p)
    p.add_argument("--outputs", metavar="T1,T2", help="import only up to these output tensors")
    p.add_argument("--passes", metavar="P1,P2,...",
                   help="the pipeline to run instead of the default cleanup, e.g. "
                   "'fold_constants,prune_outputs(outputs=[a,b]),eliminate_dead_code'")
    p.add_argument("--after", metavar="PASS", help="stop after this pass (NAME#2 for its 2nd run, 'input' for none)")
    p.add_argument("--format", choices=("text", "dot", "json"), default="text", help="output format (default text)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the IR here instead of stdout")
    p.add_argument("--dump-dir", metavar="DIR", help="also write numbered dumps 00-input.npuir, 01-<pass>.npuir, ...")
    p.add_argument("--time-passes", action="store_true", help="print a per-pass timing table to stderr")
    p.add_argument("--print-after", action="append", default=[], metavar="PASS",
                   help="print the IR to stderr after each run of PASS ('*' for every pass); may be repeated")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from npuc.frontends import load_model
    from npuc.frontends.onnx import parse_input_shapes
    from npuc.passes.instruments import DumpIR, PrintAfter, TimePasses, render
    from npuc.passes.manager import PassManager, default_pipeline, parse_pipeline, truncate_after
    from npuc.passes.registry import PASSES

    # build the pipeline before importing so a typo fails fast
    passes = parse_pipeline(args.passes) if args.passes else default_pipeline()
    if args.after:
        passes = truncate_after(passes, args.after)
    for name in args.print_after:
        if name != "*":
            PASSES.get(name)  # a typo fails here (with suggestions), not silently
    shapes = parse_input_shapes(args.input_shape) if args.input_shape else None
    outputs = [s.strip() for s in args.outputs.split(",") if s.strip()] if args.outputs else None
    graph = load_model(args.model, input_shapes=shapes, outputs=outputs)

    instruments = []
    if args.dump_dir:
        instruments.append(DumpIR(args.dump_dir))
    if args.print_after:
        instruments.append(PrintAfter(args.print_after, stream=sys.stderr))
    timer = TimePasses(stream=sys.stderr) if args.time_passes else None
    if timer:
        instruments.append(timer)
    PassManager(passes, instruments).run(graph)

    text = render(graph, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
