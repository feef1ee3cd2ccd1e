"""`npuc script check SCRIPT [--model MODEL] [--strict]`: check a model script and explain it."""
from __future__ import annotations

import argparse
import sys

from rich.console import Console

from npuc.commands.common_args import add_input_shape_arg
from npuc.script.diagnostics import Diagnostic, ScriptDiagnosticError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `script` command and its `check` action."""
    parser = subparsers.add_parser(
        "script",
        help="check model scripts (.alls) and explain what each line does",
        description="Work with model scripts (.alls).",
    )
    actions = parser.add_subparsers(dest="script_action", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="parse and bind a script; with --model, show which layers each line selects",
        description="Parse and bind a model script and print its warnings and errors. With --model, "
        "also print an explain table: for every line, the layers it selects and what it sets on each.",
    )
    check.add_argument("script", metavar="SCRIPT", help="the model script (.alls)")
    check.add_argument("--model", metavar="MODEL", help="ONNX or TFLite model to resolve layer selectors against")
    add_input_shape_arg(
        check, help="fix a model input's shape, e.g. x=1,3,48,192 (overrides the script's input_shape); may be repeated")
    check.add_argument("--strict", action="store_true", help="treat warnings (skipped commands, empty selectors) as errors")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _print_warnings(warnings: list[Diagnostic]) -> None:
    for w in warnings:
        print(w.format(), file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    """Parse, bind, report; returns 0 when the script has no errors (errors raise ScriptError)."""
    from npuc.script.binder import bind
    from npuc.script.explain import render_explain
    from npuc.script.parser import parse_file
    from npuc.script_config import script_registry  # built-ins and every registered pass, as compile binds

    script = parse_file(args.script)
    try:
        bound = bind(script, script_registry(), None, strict=args.strict)
        if args.model:
            from npuc.frontends import parse_input_shapes
            from npuc.script.model_layers import import_settings, load_model_layers, normalization_layers

            shapes, ends = import_settings(bound)
            shapes.update(parse_input_shapes(args.input_shape))
            layers = normalization_layers(bound) + load_model_layers(args.model, shapes, ends)
            bound = bind(script, script_registry(), layers, strict=args.strict)
    except ScriptDiagnosticError as exc:
        _print_warnings(exc.warnings)
        raise
    _print_warnings(list(bound.warnings))
    n_warn = len(bound.warnings)
    summary = (
        f"{args.script}: {len(bound.directives)} statement{'s' if len(bound.directives) != 1 else ''}, "
        f"{len(bound.effective())} with effect, {n_warn} warning{'s' if n_warn != 1 else ''}, no errors"
    )
    if bound.layers is not None:
        console = Console(width=max(Console().width, 140), highlight=False, soft_wrap=False)
        console.print(f"model {args.model}: {len(bound.layers)} layers", soft_wrap=True)
        render_explain(bound, console)
    print(summary)
    return 0
