"""Errors a user can act on. The CLI prints them as one paragraph and exits with code 2."""
from __future__ import annotations


class NpucError(Exception):
    """Base of every error npuc reports to a user (never a raw traceback)."""

    exit_code = 2


class ModelImportError(NpucError):
    """The model file cannot be read or lowered (malformed, not a model, unfixed dims)."""


class UnsupportedOpsError(ModelImportError):
    """The model uses operators npuc does not implement; lists all of them at once."""


class GraphVerificationError(NpucError):
    """The IR broke an invariant; lists every problem found."""

    def __init__(self, problems: list[str], where: str = ""):
        self.problems = list(problems)
        head = f"IR verification failed{(' ' + where) if where else ''} ({len(problems)} problem(s)):"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


class PassError(NpucError):
    """A pass failed; the message names it and the passes that ran before it."""


class ScriptError(NpucError):
    """The model script has errors (syntax, unknown names, bad values)."""


class CalibrationError(NpucError):
    """The calibration set is unusable (empty, unreadable file, wrong shape)."""


class QuantizationError(NpucError):
    """Quantization cannot proceed (missing ranges, bad overrides)."""


class BinaryFormatError(NpucError):
    """A compiled binary is truncated, corrupted or of an unknown version."""


class PluginError(NpucError):
    """A plugin failed to load or registered a name that is already taken."""


class ExecutionError(NpucError):
    """Running a graph failed: bad feeds, an op kind without a kernel, or a kernel error (names the op)."""


def fed_array(feeds, name: str, shape: tuple[int, ...], expected: str):
    """The array fed for input `name` as numpy, checked against the model's `shape`: an ExecutionError
    naming the input when it is missing or of another shape (`expected` describes its type and shape)."""
    import numpy as np

    if name not in feeds:
        raise ExecutionError(f"no value fed for input '{name}' (expected {expected})")
    arr = np.asarray(feeds[name])
    if tuple(arr.shape) != tuple(shape):
        raise ExecutionError(f"input '{name}' has shape {arr.shape}, the model expects {tuple(shape)}")
    return arr
