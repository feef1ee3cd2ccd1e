"""npuc: an open, scriptable compiler for fixed-point neural accelerators."""

__version__ = "0.1.0"
