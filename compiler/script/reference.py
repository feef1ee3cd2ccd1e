"""Markdown reference of script commands, generated from the registry (docs/script-language.md embeds it)."""
from __future__ import annotations

from npuc.script.commands import CommandRegistry, ScriptCommand, Variant
from npuc.script.options import Param

BEGIN = "<!-- BEGIN GENERATED COMMAND REFERENCE -->"
END = "<!-- END GENERATED COMMAND REFERENCE -->"


def _default(p: Param) -> str:
    if p.required:
        return "required"
    if p.default is None:
        return "not set"
    if isinstance(p.default, bool):
        return "`True`" if p.default else "`False`"
    return f"`{p.default}`"


def _table(params: tuple[Param, ...], how: str) -> list[str]:
    if not params:
        return []
    lines = [f"| {how} | type | default | meaning |", "| --- | --- | --- | --- |"]
    for p in params:
        cells = (f"`{p.name}`", p.type.describe(), _default(p), p.doc)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines + [""]


def _signature(c: ScriptCommand) -> str:
    parts = [p.name if p.required else f"[{p.name}]" for p in c.params]
    if c.variadic is not None:
        parts.append(f"{c.variadic.name}...")
    if c.options or c.variants:
        parts.append("key=value, ...")
    return f"{c.name}({', '.join(parts)})"


def _variant(c: ScriptCommand, v: Variant) -> list[str]:
    effect = f"runs pass `{v.pass_name}`" if v.effect == "pass" and v.pass_name else v.effect
    lines = [f"#### `{c.name}({v.name}, ...)` — {effect}", "", v.doc, ""]
    return lines + _table(v.options, "option")


def command_section(c: ScriptCommand) -> list[str]:
    """The markdown of one command."""
    lines = [f"### `{c.name}`", "", f"`{_signature(c)}` — effect: **{c.effect}**", "", c.doc, ""]
    lines += _table(c.params, "positional")
    if c.variadic is not None:
        lines += _table((c.variadic,), "more positionals")
    lines += _table(c.options, "option")
    active = [v for v in c.variants if v.effect != "ignored"]
    skipped = [v.name for v in c.variants if v.effect == "ignored"]
    for v in active:
        lines += _variant(c, v)
    if skipped:
        lines += ["Accepted and skipped with a warning (no effect on this target): "
                  + ", ".join(f"`{s}`" for s in skipped) + ".", ""]
    return lines


def markdown_reference(registry: CommandRegistry) -> str:
    """Reference of every registered command: meaningful ones in full, ignored ones as a table."""
    meaningful = [c for c in registry if c.effect != "ignored"]
    ignored = [c for c in registry if c.effect == "ignored"]
    lines: list[str] = []
    for c in meaningful:
        lines += command_section(c)
    lines += ["### Commands of other toolchains (skipped with a warning)", "",
              "Any arguments are accepted; each use is one warning (an error with `--strict`).", "",
              "| command | what it does elsewhere |", "| --- | --- |"]
    for c in ignored:
        lines.append(f"| `{c.name}` | {c.doc.removeprefix('Has no effect on this target: ').rstrip('.')} |")
    return "\n".join(lines).rstrip() + "\n"
