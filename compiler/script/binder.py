"""Bind a parsed script to the command registry and, optionally, to a model's layers.

`bind` checks every statement, converts its arguments, resolves its layer
selectors and returns the `BoundScript`. Every error in the script is
reported at once, as one ScriptDiagnosticError; warnings (commands with no
effect on this target, unknown commands, selectors matching nothing) are
returned with the result, or become errors with `strict=True`.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from npuc.script import ast
from npuc.script.commands import CommandRegistry, Effect, ScriptCommand, Variant
from npuc.script.diagnostics import Diagnostic, DiagnosticSink, did_you_mean
from npuc.script.layers import LayerRef
from npuc.script.options import Kind, LayerSelection, OptionValueError, Param, convert
from npuc.script.printer import print_value
from npuc.script.selectors import LayerIndex, item_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoundDirective:
    """One statement bound to its command.

    `args` holds the converted values of the arguments the script gave, by
    parameter name; `layers` the op names each layer-selector argument
    selected (None when bound without a model).
    """

    command: ScriptCommand
    variant: Variant | None
    args: Mapping[str, Any]
    layers: Mapping[str, tuple[str, ...] | None]
    statement: ast.Statement
    targets: tuple[str, ...] = ()
    known: bool = True

    @property
    def name(self) -> str:
        return self.command.name

    @property
    def effect(self) -> Effect:
        return self.variant.effect if self.variant is not None else self.command.effect

    @property
    def pass_name(self) -> str | None:
        return self.variant.pass_name if self.variant is not None else self.command.pass_name

    @property
    def span(self) -> ast.Span:
        return self.statement.span

    @property
    def line(self) -> int:
        return self.statement.span.line

    def params(self) -> tuple[Param, ...]:
        return self.command.all_params(self.variant)

    def value(self, name: str) -> Any:
        """The given value of `name`, else its declared default."""
        if name in self.args:
            return self.args[name]
        param = self.command.param(name, self.variant)
        if param is None:
            raise KeyError(f"{self.command.name} has no parameter {name!r}")
        return None if param.required else param.default

    def settings(self) -> dict[str, Any]:
        """What the statement sets: given arguments other than layer selectors and the feature word."""
        skip = set(self.layers)
        if self.command.variants:
            skip.add(self.command.params[0].name)
        return {k: v for k, v in self.args.items() if k not in skip}

    def selected(self) -> tuple[str, ...] | None:
        """Union of the layers all selector arguments picked (None: no selector or no model)."""
        chosen = [names for names in self.layers.values() if names is not None]
        if not chosen:
            return None
        seen: dict[str, None] = {}
        for names in chosen:
            seen.update(dict.fromkeys(names))
        return tuple(seen)


@dataclass(frozen=True)
class BoundScript:
    """A script bound to commands (and layers): directives in source order, plus warnings."""

    script: ast.Script
    directives: tuple[BoundDirective, ...]
    warnings: tuple[Diagnostic, ...] = ()
    layers: tuple[LayerRef, ...] | None = field(default=None, repr=False)

    def effective(self) -> tuple[BoundDirective, ...]:
        """Directives that do something on this target (not 'ignored')."""
        return tuple(d for d in self.directives if d.effect != "ignored")

    def by_command(self, name: str) -> tuple[BoundDirective, ...]:
        return tuple(d for d in self.directives if d.name == name)


def bind(
    script: ast.Script,
    registry: CommandRegistry,
    layers: Sequence[LayerRef] | None = None,
    strict: bool = False,
) -> BoundScript:
    """Bind `script` against `registry` (and `layers`, in topological order, if given).

    Raises ScriptDiagnosticError listing every error; with `strict`, warnings
    count as errors.
    """
    binder = _Binder(script, registry, LayerIndex(layers) if layers is not None else None, strict)
    directives = [d for d in (binder.statement(s) for s in script.statements) if d is not None]
    binder.sink.raise_if_errors()
    return BoundScript(
        script, tuple(directives), tuple(binder.sink.warnings), tuple(layers) if layers is not None else None
    )


class _Binder:
    def __init__(self, script: ast.Script, registry: CommandRegistry, index: LayerIndex | None, strict: bool) -> None:
        self.script = script
        self.registry = registry
        self.index = index
        self.strict = strict
        self.sink = DiagnosticSink(script.source)
        file = script.span.file
        self.base_dir = Path(file).parent if file and not file.startswith("<") else None

    def warn(self, message: str, span: ast.Span) -> None:
        (self.sink.error if self.strict else self.sink.warning)(message, span)

    # ---- statements -----------------------------------------------------------------------

    def statement(self, statement: ast.Statement) -> BoundDirective | None:
        call = statement.call
        targets = _target_names(statement.target) if isinstance(statement, ast.Assignment) else ()
        command = self.registry.lookup(call.name)
        if command is None:
            hint = did_you_mean(call.name, self.registry.names())
            self.warn(f"unknown command '{call.name}', skipped{hint}", call.name_span)
            unknown = ScriptCommand(call.name, doc="unknown command", effect="ignored", source="unknown")
            return BoundDirective(unknown, None, MappingProxyType({}), MappingProxyType({}), statement, targets, False)
        if command.effect == "ignored":
            self.warn(f"'{call.name}' has no effect on this target, skipped", call.name_span)
            return BoundDirective(command, None, MappingProxyType({}), MappingProxyType({}), statement, targets)

        variant = self._variant(command, call)
        if command.variants and variant is None:
            return None  # the error is reported
        if variant is not None and variant.effect == "ignored":
            span = call.positional[0].span if call.positional else call.name_span
            self.warn(f"'{command.name}({variant.name})' has no effect on this target, skipped", span)
            return BoundDirective(command, variant, MappingProxyType({}), MappingProxyType({}), statement, targets)

        nodes = self._match_arguments(command, variant, call)
        args: dict[str, Any] = {}
        layer_args: dict[str, tuple[str, ...] | None] = {}
        errors_before = len(self.sink.errors)
        for param, node in nodes:
            try:
                value = convert(node, param.type, self.base_dir) if not isinstance(node, list) else [
                    convert(n, param.type, self.base_dir) for n in node
                ]
            except OptionValueError as exc:
                self.sink.error(f"{_where(command, variant, param)}: {exc.message}", exc.span)
                continue
            args[param.name] = value
            if isinstance(value, LayerSelection):
                layer_args[param.name] = self._resolve(value)
            elif param.type.kind is Kind.TENSOR:
                for n, v in zip(node if isinstance(node, list) else [node], value if isinstance(value, list) else [value]):
                    self._check_tensor(v, n.span)
        if len(self.sink.errors) == errors_before:
            self._run_checks(command, variant, call, args, {p.name: n for p, n in nodes})
        return BoundDirective(command, variant, MappingProxyType(args), MappingProxyType(layer_args), statement, targets)

    def _variant(self, command: ScriptCommand, call: ast.Call) -> Variant | None:
        if not command.variants:
            return None
        feature = command.params[0]
        node: ast.Node | None = call.positional[0].value if call.positional else None
        if node is None:
            for kw in call.keywords:
                if kw.key == feature.name:
                    node = kw.value
        if node is None:
            names = ", ".join(v.name for v in command.variants)
            self.sink.error(f"'{command.name}' needs a {feature.name} first: one of {names}", call.name_span)
            return None
        word = node.text if isinstance(node, ast.Name) else node.value if isinstance(node, ast.String) else None
        variant = command.variant(word) if isinstance(word, str) else None
        if variant is None:
            names = [v.name for v in command.variants]
            shown = word if isinstance(word, str) else print_value(node)
            hint = did_you_mean(str(shown), names)
            self.sink.error(
                f"unknown {feature.name} '{shown}' for '{command.name}'{hint or '; expected one of ' + ', '.join(names)}",
                node.span,
            )
        return variant

    def _match_arguments(
        self, command: ScriptCommand, variant: Variant | None, call: ast.Call
    ) -> list[tuple[Param, Any]]:
        """Pair each argument with its parameter; report extras, unknowns, duplicates, missing ones."""
        given: dict[str, tuple[Param, Any]] = {}
        extra: list[ast.Node] = []
        seen_keyword = False
        positional_params = list(command.params)
        for arg in call.args:
            if isinstance(arg, ast.KwArg):
                seen_keyword = True
                continue
            if seen_keyword:
                self.sink.error("positional argument after keyword arguments", arg.span)
                continue
            if positional_params:
                param = positional_params.pop(0)
                given[param.name] = (param, arg.value)
            elif command.variadic is not None:
                extra.append(arg.value)
            else:
                most = len(command.params)
                self.sink.error(
                    f"too many positional arguments: '{_label(command, variant)}' takes "
                    f"{'no' if most == 0 else 'at most ' + str(most)} positional argument{'s' if most != 1 else ''}"
                    f"{_signature_hint(command)}",
                    arg.span,
                )
        for kw in call.keywords:
            param = command.param(kw.key, variant)
            if param is None:
                names = [p.name for p in command.all_params(variant)]
                hint = did_you_mean(kw.key, names)
                if not hint and names:
                    hint = "; options are " + ", ".join(names)
                self.sink.error(f"unknown option '{kw.key}' for '{_label(command, variant)}'{hint}", kw.key_span)
                continue
            if param.name in given:
                self.sink.error(f"'{kw.key}' is given twice", kw.key_span)
                continue
            given[param.name] = (param, kw.value)
        if command.variadic is not None and extra:
            given[command.variadic.name] = (command.variadic, extra)
        for param in command.all_params(variant):
            if param.required and param.name not in given:
                self.sink.error(f"'{_label(command, variant)}' needs '{param.name}' ({param.type.describe()})", call.name_span)
        return list(given.values())

    def _run_checks(self, command, variant, call, args, nodes) -> None:
        merged = {p.name: (None if p.required else p.default) for p in command.all_params(variant)}
        merged.update(args)
        for check in (command.check, variant.check if variant is not None else None):
            if check is None:
                continue
            for name, message in check(merged):
                node = nodes.get(name)
                span = node.span if isinstance(node, ast.Node) else call.name_span
                self.sink.error(f"{_label(command, variant)}: {message}", span)

    # ---- selectors and tensor names -----------------------------------------------------

    def _resolve(self, selection: LayerSelection) -> tuple[str, ...] | None:
        if self.index is None:
            return None
        names, matches = self.index.resolve(selection.items)
        for m in matches:
            if m.indices:
                continue
            text = item_text(m.item)
            probe = m.item.start.text if isinstance(m.item, ast.Range) else text
            hint = did_you_mean(probe, self.index.suggest(probe), cutoff=0.0)
            self.warn(f"selector '{text}' matches no layer{hint}", m.item.span)
        return names

    def _check_tensor(self, name: str, span: ast.Span) -> None:
        if self.index is None or not self.index.tensors:
            return
        if name in self.index.tensors or self.index.match_name(name):
            return
        hint = did_you_mean(name, [*self.index.tensors, *self.index.keys])
        self.warn(f"no tensor or layer named '{name}' in the model{hint}", span)


def _label(command: ScriptCommand, variant: Variant | None) -> str:
    return f"{command.name}({variant.name})" if variant is not None else command.name


def _where(command: ScriptCommand, variant: Variant | None, param: Param) -> str:
    return f"{_label(command, variant)} {param.name}"


def _signature_hint(command: ScriptCommand) -> str:
    if not command.params:
        return ""
    return " (" + ", ".join(p.name for p in command.params) + ")"


def _target_names(target: ast.Target) -> tuple[str, ...]:
    if isinstance(target, ast.TupleTarget):
        return tuple(n.text for n in target.names)
    if isinstance(target, ast.DictTarget):
        return tuple(e.key for e in target.entries)
    return (target.text,)
