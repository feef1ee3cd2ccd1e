"""Errors of the ONNX exporters."""
from __future__ import annotations

from npuc.errors import NpucError


class ExportError(NpucError):
    """A graph cannot be written as ONNX (op kinds without an ONNX form are listed all at once)."""
