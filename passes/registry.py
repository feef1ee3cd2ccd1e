"""The pass registry: pass classes by name, remembering which plugin registered each.

Built-in passes are registered by the built-in plugin (npuc.builtin_plugin),
the same way third-party plugins register theirs. Looking a name up loads the
built-in plugin first if nobody has, so library users need no set-up.
"""
from __future__ import annotations

import difflib
from typing import Iterable

from npuc.errors import PassError, PluginError
from npuc.passes.base import Pass


class PassRegistry:
    """Pass classes by name, with the source (plugin) that registered each."""

    def __init__(self, autoload_builtins: bool = True) -> None:
        self._passes: dict[str, type[Pass]] = {}
        self._sources: dict[str, str] = {}
        self._autoload = autoload_builtins

    def _ensure(self) -> None:
        if self._autoload:
            from npuc.plugins import ensure_builtin_plugin

            ensure_builtin_plugin()

    def check_new(self, classes: Iterable[type[Pass]], source: str) -> None:
        """Raise PluginError if any class is not a proper pass or its name is taken."""
        seen: dict[str, type[Pass]] = {}
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Pass)):
                raise PluginError(f"{source} registers {cls!r} as a pass, but it is not a subclass of npuc.passes.base.Pass")
            name = cls.name
            if not name or not name.isidentifier() or name != name.lower():
                raise PluginError(f"{source}: pass class {cls.__qualname__} needs a snake_case `name`, got {name!r}")
            if name in self._passes:
                raise PluginError(f"pass '{name}' is registered twice: by {self._sources[name]} and by {source}")
            if name in seen:
                raise PluginError(f"pass '{name}' is registered twice by {source}")
            seen[name] = cls

    def register(self, cls: type[Pass], source: str = "builtin") -> type[Pass]:
        self.check_new([cls], source)
        self._passes[cls.name] = cls
        self._sources[cls.name] = source
        return cls

    def unregister(self, name: str) -> None:
        self._passes.pop(name, None)
        self._sources.pop(name, None)

    def get(self, name: str) -> type[Pass]:
        """The pass class called `name`; PassError with close matches when unknown."""
        self._ensure()
        try:
            return self._passes[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._passes), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise PassError(f"unknown pass '{name}'{hint} (`npuc passes` lists them all)")

    def source(self, name: str) -> str:
        self._ensure()
        return self._sources[name]

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._passes)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._passes

    def snapshot(self) -> tuple[dict, dict]:
        return dict(self._passes), dict(self._sources)

    def restore(self, snap: tuple[dict, dict]) -> None:
        self._passes, self._sources = dict(snap[0]), dict(snap[1])


#: The process-wide pass registry.
PASSES = PassRegistry()


def get_pass(name: str) -> type[Pass]:
    return PASSES.get(name)
