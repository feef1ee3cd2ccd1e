"""Benchmark: parse and bind a generated 2,000-line model script against a 500-layer model.

Prints the figures; the target is < 1 s for parse + bind. Run:

    python benchmarks/script_parse.py [--lines 2000] [--layers 500]
"""
from __future__ import annotations

import argparse
import random
import sys
import time

from npuc.script.binder import bind
from npuc.script.layers import LayerRef
from npuc.script.parser import parse
from npuc.script.registry import builtin_registry

KINDS = ("Conv", "Relu", "Add", "Concat", "Gemm")


def make_layers(n: int) -> list[LayerRef]:
    """A synthetic model: op names, origins with a network scope, one output each."""
    return [
        LayerRef(f"{k.lower()}{i}", k, (f"net/{k.lower()}{i}",), (f"{k.lower()}{i}_out",))
        for i, k in ((i, KINDS[i % len(KINDS)]) for i in range(n))
    ]


def make_script(lines: int, layers: list[LayerRef], seed: int = 0) -> str:
    """A realistic mix of every statement form (comments, multi-line calls, selectors of all kinds)."""
    rng = random.Random(seed)
    names = [l.name for l in layers]
    forms = [
        lambda: f"quantization_param({rng.choice(names)}, precision_mode={rng.choice(['a8_w8', 'a16_w16', 'a8_w4'])})",
        lambda: f"quantization_param({{{rng.choice(['conv', 'relu', 'add'])}{rng.randint(1, 9)}*}}, bias_mode=double_scale_initialization)",
        lambda: f"quantization_param([net/{rng.choice(names)}, {rng.choice(names)}], quantization_groups={rng.randint(1, 4)})",
        lambda: f"data_type({{{rng.choice(names)}...}}, int16)",
        lambda: f"pre_quantization_optimization(activation_clipping, layers={{{rng.choice(names)}, {rng.choice(names)}}}, mode=percentile, clipping_values=[0.01, 99.99])",
        lambda: "model_optimization_config(calibration, batch_size=8, calibset_size=64)  # trailing comment",
        lambda: "# a comment line",
        lambda: f"calibration({rng.choice(names)}, method={rng.choice(['minmax', 'kl', 'mse'])}, per_channel=True)",
        lambda: "allocator_param(timeout=25m)",
        lambda: f"normalization{rng.randint(1, 9)} = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])",
    ]
    out: list[str] = []
    while len(out) < lines:
        if rng.random() < 0.05 and len(out) + 4 <= lines:
            out += ["quantization_param({", f"    {rng.choice(names)},", f"    {rng.choice(names)},", "}, precision_mode=a16_w8)"]
        else:
            out.append(rng.choice(forms)())
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = ap.parse_args(argv)

    layers = make_layers(args.layers)
    text = make_script(args.lines, layers)
    registry = builtin_registry()
    parse("f()\n")  # build the LALR tables once, as any process does on first use

    best_parse = best_bind = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        script = parse(text, "bench.alls")
        t1 = time.perf_counter()
        bound = bind(script, registry, layers)
        t2 = time.perf_counter()
        best_parse, best_bind = min(best_parse, t1 - t0), min(best_bind, t2 - t1)
    total = best_parse + best_bind
    print(
        f"{args.lines} lines ({len(script.statements)} statements), {args.layers} layers: "
        f"parse {best_parse * 1000:.0f} ms + bind {best_bind * 1000:.0f} ms = {total * 1000:.0f} ms "
        f"({len(bound.warnings)} warnings) -> {'OK' if total < 1.0 else 'TOO SLOW'} (target < 1000 ms)"
    )
    return 0 if total < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
