"""`npuc profile`: the per-layer timing table of a compiled binary, from the binary alone."""
from __future__ import annotations

import argparse
from pathlib import Path

from npuc.commands.common_args import add_target_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="per-layer timing table of a compiled binary",
        description="Decode MODEL.npub, rebuild its layers and price them with the timing model of --target "
                    "(default: the target it was compiled for): cycles, MACs, bytes, utilization per layer, "
                    "totals, latency and FPS.")
    p.add_argument("model", type=Path, metavar="MODEL.npub", help="compiled binary")
    add_target_args(p, None, "timing target (default: the binary's own)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--top", type=int, default=None, metavar="N", help="show only the N most expensive layers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from npuc.backends.npu.decode import read_binary
    from npuc.backends.npu.lower import to_graph
    from npuc.backends.npu.target import load_target
    from npuc.backends.npu.timing import estimate, layer_work_from_graph, render_table, summary_lines, to_csv

    program = read_binary(args.model)
    target = load_target(str(args.target or program.metadata.get("target") or "npu-s"), args.target_path)
    report = estimate(layer_work_from_graph(to_graph(program)), target)
    console = Console(width=160)
    console.print(render_table(report, args.top))
    for line in summary_lines(report):
        print(line)
    if args.csv is not None:
        args.csv.write_text(to_csv(report), encoding="utf-8")
        print(f"wrote {args.csv}")
    return 0
