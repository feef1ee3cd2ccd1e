"""Script commands: what a command name in a script means, and the registry of them.

A `ScriptCommand` declares positional parameters and keyword options with
types, and what the command does (`effect`): drive a pass ('pass'), set a
configuration value ('config'), or nothing on this target ('ignored': parsed,
warned about, skipped). Commands such as `pre_quantization_optimization`
choose a *variant* (a feature) with their first positional word; each
variant has its own options and effect.

Built-ins and plugins register into the same `CommandRegistry`; a pass
becomes a command with `ScriptCommand.from_dataclass`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from npuc.errors import PluginError
from npuc.script.options import (
    ANY,
    BOOL,
    FLOAT,
    INT,
    LAYERS,
    PATH,
    REQUIRED,
    STR,
    Kind,
    OptionType,
    Param,
    enum,
    list_of,
)

Effect = Literal["pass", "config", "ignored"]
EFFECTS: tuple[str, ...] = ("pass", "config", "ignored")

# Checks across arguments: given the converted arguments, return (param name, message) problems.
Check = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]


class _LayerSelectorMarker:
    """Marks a dataclass field as a layer selector: `Annotated[tuple[str, ...], LAYER_SELECTOR]`."""

    def __repr__(self) -> str:
        return "LAYER_SELECTOR"


LAYER_SELECTOR = _LayerSelectorMarker()


@dataclass(frozen=True)
class Variant:
    """One feature of a command that takes a feature word first (`equalization`, `calibration`)."""

    name: str
    options: tuple[Param, ...] = ()
    doc: str = ""
    effect: Effect = "config"
    pass_name: str | None = None
    check: Check | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"variant {self.name!r}: effect must be one of {EFFECTS}, not {self.effect!r}")


@dataclass(frozen=True)
class ScriptCommand:
    """A command a script can call: its parameters, options, documentation and effect.

    `params` are positional (and may also be given by keyword), `options` are
    keyword-only, `variadic` takes any extra positional arguments. With
    `variants`, the first positional parameter names the variant, whose own
    options are added to the command's.
    """

    name: str
    params: tuple[Param, ...] = ()
    options: tuple[Param, ...] = ()
    doc: str = ""
    effect: Effect = "config"
    variadic: Param | None = None
    variants: tuple[Variant, ...] = ()
    pass_name: str | None = None
    source: str = "builtin"
    check: Check | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"command {self.name!r}: effect must be one of {EFFECTS}, not {self.effect!r}")
        if self.variants and not self.params:
            raise ValueError(f"command {self.name!r} has variants but no positional parameter to choose one")
        names = [p.name for p in (*self.params, *self.options)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"command {self.name!r} declares {', '.join(dupes)} twice")

    @property
    def first_is_layers(self) -> bool:
        """True when the first positional parameter is a layer selector."""
        return bool(self.params) and self.params[0].type.kind is Kind.LAYERS

    def variant(self, name: str) -> Variant | None:
        """The variant called `name`, if any."""
        for v in self.variants:
            if v.name == name:
                return v
        return None

    def all_params(self, variant: Variant | None = None) -> tuple[Param, ...]:
        """Positional parameters, then the command's and the variant's keyword options."""
        extra = variant.options if variant is not None else ()
        return (*self.params, *self.options, *extra)

    def param(self, name: str, variant: Variant | None = None) -> Param | None:
        """Find a parameter or option by name."""
        for p in self.all_params(variant):
            if p.name == name:
                return p
        return None

    def with_source(self, source: str) -> "ScriptCommand":
        return dataclasses.replace(self, source=source)

    @classmethod
    def from_dataclass(
        cls, name: str, dc: type, doc: str | None = None, *, source: str = "builtin", effect: Effect = "pass"
    ) -> "ScriptCommand":
        """Build a command from a (frozen) dataclass whose fields are its options.

        Type hints become option types (`int`, `float`, `bool`, `str`, `Path`,
        `Literal[...]` -> enum, `list[X]`/`tuple[X, ...]` -> list, `X | None`
        -> nullable). A field annotated `Annotated[..., LAYER_SELECTOR]`, or a
        field named `layers` holding a sequence of str, is a layer selector and
        becomes the first positional parameter. A field's doc comes from
        `field(metadata={"doc": ...})`.
        """
        if not dataclasses.is_dataclass(dc):
            raise TypeError(f"{dc!r} is not a dataclass")
        hints = typing.get_type_hints(dc, include_extras=True)
        params: list[Param] = []
        options: list[Param] = []
        for f in dataclasses.fields(dc):
            if not f.init or f.name.startswith("_"):
                continue
            hint = hints.get(f.name, Any)
            opt_type = type_from_hint(hint)
            if f.name == "layers" and opt_type.kind is Kind.LIST and (opt_type.item is None or opt_type.item.kind is Kind.STR):
                opt_type = LAYERS.with_nullable() if opt_type.nullable else LAYERS
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            else:
                default = REQUIRED
            param = Param(f.name, opt_type, default, str(f.metadata.get("doc", f.metadata.get("help", ""))))
            (params if opt_type.kind is Kind.LAYERS and not params else options).append(param)
        text = doc if doc is not None else _first_paragraph(dc.__doc__)
        return cls(name, tuple(params), tuple(options), text, effect, pass_name=name, source=source)


def _first_paragraph(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.strip().split("\n\n")[0].split())


def type_from_hint(hint: Any) -> OptionType:
    """Map a Python type hint to an option type (unknown hints accept any value)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        base, *extras = args
        if any(e is LAYER_SELECTOR for e in extras):
            inner = type_from_hint(base)
            return LAYERS.with_nullable() if inner.nullable else LAYERS
        return type_from_hint(base)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        inner = type_from_hint(non_none[0]) if len(non_none) == 1 else ANY
        return inner.with_nullable() if len(non_none) < len(args) else inner
    if origin is Literal:
        return enum(*args)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            items = {type_from_hint(a) for a in args}
            item = items.pop() if len(items) == 1 else ANY
            return list_of(item, length=len(args))
        item = type_from_hint(args[0]) if args else ANY
        return list_of(item)
    simple = {int: INT, float: FLOAT, bool: BOOL, str: STR, Path: PATH}
    return simple.get(hint, ANY)


class CommandRegistry:
    """Name -> ScriptCommand. A name can be registered once; a second time is a PluginError."""

    def __init__(self) -> None:
        self._commands: dict[str, ScriptCommand] = {}

    def register(self, command: ScriptCommand, source: str | None = None) -> ScriptCommand:
        """Add a command; `source` (e.g. a plugin's name) overrides `command.source`."""
        if source is not None:
            command = command.with_source(source)
        existing = self._commands.get(command.name)
        if existing is not None:
            raise PluginError(
                f"script command '{command.name}' is registered twice: by {existing.source} and by {command.source}"
            )
        self._commands[command.name] = command
        return command

    def get(self, name: str) -> ScriptCommand | None:
        return self._commands.get(name)

    def lookup(self, dotted: str) -> ScriptCommand | None:
        """Find a command by its full name, or for `obj.method` by the method name."""
        found = self._commands.get(dotted)
        if found is None and "." in dotted:
            found = self._commands.get(dotted.rsplit(".", 1)[1])
        return found

    def names(self) -> list[str]:
        return sorted(self._commands)

    def copy(self) -> "CommandRegistry":
        new = CommandRegistry()
        new._commands = dict(self._commands)
        return new

    def __contains__(self, name: object) -> bool:
        return name in self._commands

    def __iter__(self) -> Iterator[ScriptCommand]:
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._commands)
