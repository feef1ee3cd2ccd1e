"""`npuc export`: a compiled binary as standard ONNX (QDQ for the quantized model, float for the float rewrites)."""
from __future__ import annotations

import argparse
from pathlib import Path

from npuc.errors import NpucError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a compiled binary as a QDQ ONNX model (onnxruntime, Netron)",
        description="Read OUT/model.npub alone and write the quantized model as standard ONNX with "
                    "QuantizeLinear/DequantizeLinear pairs (docs/qdq-export.md).")
    p.add_argument("binary", type=Path, help="a compiled binary (model.npub)")
    p.add_argument("--onnx", type=Path, required=True, help="where to write the QDQ ONNX model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from npuc.backends.npu.decode import read_binary
    from npuc.backends.npu.lower import to_graph
    from npuc.export import exactness_note, export_qdq_onnx, save_onnx

    if not args.binary.is_file():
        raise NpucError(f"binary '{args.binary}' does not exist (compile a model first: npuc compile ... -o OUT)")
    graph = to_graph(read_binary(args.binary))
    path = save_onnx(export_qdq_onnx(graph), args.onnx)
    print(f"wrote        {path}  (QDQ ONNX, opset 21)")
    note = exactness_note(graph)
    if note:
        print(f"note         {note}")
    return 0
