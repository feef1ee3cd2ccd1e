"""`npuc check`: can npuc compile this model? Unsupported ops, inputs, outputs, op histogram."""
from __future__ import annotations

import argparse
from collections import Counter

from npuc.commands.common_args import add_input_shape_arg
from npuc.errors import NpucError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="report whether a model can be imported: unsupported ops, inputs/outputs, op histogram",
        description="Summarise MODEL (inputs and outputs with their declared shapes, dynamic dims included; "
        "operator histogram; every unsupported operator with node names) and try to import it. "
        "Exit code 0 when it imports, 2 when it cannot be compiled as given.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.onnx or .tflite)")
    add_input_shape_arg(p)
    p.add_argument("--outputs", metavar="T1,T2", help="check only up to these tensors (parse end)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from npuc.frontends import inspect_model, load_model, parse_input_shapes

    shapes = parse_input_shapes(args.input_shape)
    outputs = [s.strip() for s in args.outputs.split(",") if s.strip()] if args.outputs else None
    summary = inspect_model(args.model)
    details = ", ".join(f"{k} {v}" for k, v in summary.details.items() if v not in ("", None))
    print(f"model: {summary.path} ({summary.format}{', ' + details if details else ''})")
    print("inputs:")
    for v in summary.inputs:
        fixed = f"  -> {list(shapes[v.name])}" if v.name in shapes else ""
        dyn = "" if v.is_static else "  (dynamic)"
        print(f"  {v.name}  {v.dtype}  {v.shape_text()}{dyn}{fixed}")
    print("outputs:")
    for v in summary.outputs:
        print(f"  {v.name}  {v.dtype}  {v.shape_text()}")
    total = sum(summary.op_histogram.values())
    print(f"operators ({total} nodes, {len(summary.op_histogram)} types):")
    width = max((len(k) for k in summary.op_histogram), default=0)
    for op, n in summary.op_histogram.items():
        print(f"  {op:<{width}}  {n}")
    if summary.unsupported:
        print("unsupported operators:")
        for u in summary.unsupported:
            print(f"  {u.describe()}")
    else:
        print("unsupported operators: none")
    try:
        graph = load_model(args.model, input_shapes=shapes or None, outputs=outputs)
    except NpucError:
        print("result: the model cannot be compiled as given (see the error below)")
        raise
    kinds = Counter(op.kind for op in graph.ops())
    outs = ", ".join(f"{t.name} {t.type_str()}" for t in graph.outputs)
    print(f"result: imports into {len(graph)} IR ops ({', '.join(f'{k} {n}' for k, n in kinds.most_common())}); "
          f"outputs: {outs}")
    return 0
