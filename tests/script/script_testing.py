"""Shared fixtures of the script-language tests."""
from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from npuc.script.layers import LayerRef
from npuc.script.registry import builtin_registry

HERE = Path(__file__).parent
CORPUS = sorted((HERE / "corpus").glob("*.alls"))
GOLDEN = HERE / "golden"
UPDATE_GOLDEN = os.environ.get("NPUC_UPDATE_GOLDEN") == "1"
PPOCR_CLS = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"


def synthetic_layers() -> list[LayerRef]:
    """A small network in topological order; op names differ from origin names on purpose."""
    spec = [
        ("conv1", "Conv", ("net/conv1",)),
        ("relu1", "Relu", ("net/relu1",)),
        ("conv2", "Conv", ("net/conv2",)),
        ("conv3", "Conv", ("net/conv3",)),
        ("conv10", "Conv", ("net/conv10",)),
        ("conv36_d0-2", "Conv", ()),
        ("fused_conv_bn", "Conv", ("net/conv5", "net/bn5")),
        ("Concat_155", "Concat", ()),
        ("conv40", "Conv", ("yolov5s/conv40",)),
        ("fc1", "Gemm", ("net/fc1",)),
        ("output_layer1", "Softmax", ()),
    ]
    return [LayerRef(n, k, o, (f"{n}_out",)) for n, k, o in spec]


@pytest.fixture
def layers() -> list[LayerRef]:
    return synthetic_layers()


@pytest.fixture
def registry():
    return builtin_registry()


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def _main():
    """npuc.cli.main when every CLI module is importable; else the same error handling around ours."""
    try:
        from npuc.cli import build_parser, main

        build_parser()
        return main
    except ImportError:
        import argparse
        import logging

        from npuc.commands import script as script_command
        from npuc.errors import NpucError

        def main(argv):
            parser = argparse.ArgumentParser(prog="npuc")
            script_command.register(parser.add_subparsers(dest="command"))
            args = parser.parse_args(argv)
            logging.basicConfig(level=logging.WARNING)
            try:
                return int(args.func(args) or 0)
            except NpucError as exc:
                print(f"npuc: error: {exc}", file=sys.stderr)
                return exc.exit_code

        return main


@pytest.fixture
def cli():
    """Run the CLI in-process: cli(*argv) -> CliResult(code, out, err)."""
    main = _main()

    def run(*argv: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def ppocr_cls_model() -> Path | None:
    """The PP-OCR direction classifier shipped inside the rapidocr-onnxruntime package, if installed."""
    for entry in sys.path:
        candidate = Path(entry) / PPOCR_CLS
        if candidate.is_file():
            return candidate
    return None
