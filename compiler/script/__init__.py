"""The model script language (.alls): parse, print, bind to commands, explain.

    script = parse_file("model.alls")
    bound = bind(script, default_registry(), layers_from_graph(graph))
    for directive in bound.effective(): ...

See docs/script-language.md for the language and every built-in command.
"""
from __future__ import annotations

from npuc.script.ast import Script, strip_positions
from npuc.script.binder import BoundDirective, BoundScript, bind
from npuc.script.commands import LAYER_SELECTOR, CommandRegistry, ScriptCommand, Variant
from npuc.script.diagnostics import Diagnostic, ScriptDiagnosticError
from npuc.script.layers import LayerRef, layers_from_graph
from npuc.script.options import LayerSelection, OptionType, Param
from npuc.script.parser import parse, parse_file
from npuc.script.printer import print_script
from npuc.script.registry import builtin_registry, default_registry

__all__ = [
    "LAYER_SELECTOR",
    "BoundDirective",
    "BoundScript",
    "CommandRegistry",
    "Diagnostic",
    "LayerRef",
    "LayerSelection",
    "OptionType",
    "Param",
    "Script",
    "ScriptCommand",
    "ScriptDiagnosticError",
    "Variant",
    "bind",
    "builtin_registry",
    "default_registry",
    "layers_from_graph",
    "parse",
    "parse_file",
    "print_script",
    "strip_positions",
]
