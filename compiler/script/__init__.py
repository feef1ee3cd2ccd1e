"""The model script language (.alls): parse, print, bind to commands, explain."""
from __future__ import annotations

from npuc.script.ast import Script, strip_positions
from npuc.script.diagnostics import Diagnostic, ScriptDiagnosticError
from npuc.script.parser import parse, parse_file
from npuc.script.printer import print_script

__all__ = [
    "Diagnostic",
    "Script",
    "ScriptDiagnosticError",
    "parse",
    "parse_file",
    "print_script",
    "strip_positions",
]
