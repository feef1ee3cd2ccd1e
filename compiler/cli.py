"""The `npuc` command line. Subcommands live in npuc.commands.<name>."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from npuc import __version__
from npuc.errors import NpucError


def build_parser() -> argparse.ArgumentParser:
    from npuc.commands import COMMAND_MODULES

    parser = argparse.ArgumentParser(
        prog="npuc",
        description="Compile float ONNX/TFLite models into quantized NPU binaries, simulate them bit-exactly "
        "and price them with a per-layer timing model.",
    )
    parser.add_argument("--version", action="version", version=f"npuc {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="FILE.py",
        help="load a local plugin file (passes, ops, kernels, front-ends, targets); may be repeated",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"npuc.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from npuc.plugins import load_plugins

        load_plugins(args.plugin)
        return int(args.func(args) or 0)
    except NpucError as exc:
        print(f"npuc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("npuc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
