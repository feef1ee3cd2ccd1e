"""Command-line options several `npuc` commands share, each defined once."""
from __future__ import annotations

import argparse
from pathlib import Path

INPUT_SHAPE_HELP = "fix an input's shape, e.g. x=1,3,48,192 (needed for dynamic dimensions); may be repeated"


def add_input_shape_arg(p: argparse.ArgumentParser, help: str = INPUT_SHAPE_HELP) -> None:
    """--input-shape NAME=D,D,... (repeatable; parse with npuc.frontends.parse_input_shapes)."""
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=D,D,...", help=help)


def add_float_model_args(p: argparse.ArgumentParser) -> None:
    """MODEL (the float model to compile), -s/--script and --strict."""
    p.add_argument("model", type=Path, help="the float model (.onnx or .tflite)")
    p.add_argument("-s", "--script", type=Path, help="model script (.alls) configuring the pipeline")
    p.add_argument("--strict", action="store_true", help="script warnings are errors")


def add_calibration_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """--calib DATA, how its images are read (--channel-order, --letterbox) and --quantization-overrides."""
    p.add_argument("--calib", required=required,
                   help="calibration data: a folder, a glob ('calib/*.jpg') or .npy/.npz files")
    p.add_argument("--channel-order", choices=("RGB", "BGR", "GRAY"), help="channel order of calibration images")
    p.add_argument("--letterbox", choices=("center", "topleft"), default=None,
                   help="where calibration images sit in the letterbox bands (aspect ratio is always kept)")
    p.add_argument("--quantization-overrides", type=Path, help="AIMET-format encodings JSON to fix ranges")


def add_target_args(p: argparse.ArgumentParser, default: str | None, help: str) -> None:
    """--target NAME and --target-path DIR (repeatable: folders of extra target .toml files)."""
    p.add_argument("--target", default=default, help=help)
    p.add_argument("--target-path", action="append", default=[], type=Path, help="folder of extra target .toml files")
