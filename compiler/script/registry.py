"""The process-wide command registry that built-ins, passes and plugins register into."""
from __future__ import annotations

import threading

from npuc.script.builtin_commands import register_builtins
from npuc.script.commands import CommandRegistry

_lock = threading.Lock()
_default: CommandRegistry | None = None


def builtin_registry() -> CommandRegistry:
    """A new registry holding only the built-in commands (for tests and tools)."""
    return register_builtins(CommandRegistry())


def default_registry() -> CommandRegistry:
    """The shared registry: built-ins, then whatever the pass manager and plugins register.

    The pass manager registers every pass here with
    `default_registry().register(ScriptCommand.from_dataclass(name, cls), source=...)`.
    """
    global _default
    with _lock:
        if _default is None:
            _default = builtin_registry()
        return _default
