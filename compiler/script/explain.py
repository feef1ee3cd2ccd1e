"""Explain a bound script: for every line, which layers it selects and what it sets on each."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from npuc.script.binder import BoundDirective, BoundScript
from npuc.script.options import Kind, LayerSelection
from npuc.script.printer import format_number, print_statement

MAX_NAMES = 8


@dataclass(frozen=True)
class ExplainRow:
    """One script line: what it is, what it selects and what it sets."""

    line: int
    text: str
    effect: str
    scope: str  # "layers", "all layers", "model", "skipped"
    layers: tuple[str, ...]
    settings: dict[str, Any]
    note: str = ""


@dataclass(frozen=True)
class LayerRow:
    """One layer that a selector picked: its final settings and the lines that set them."""

    name: str
    kind: str
    settings: dict[str, Any]
    lines: tuple[int, ...]


def format_value(value: Any) -> str:
    """Script-like text of a converted value."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, LayerSelection):
        return value.text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None:
        return "None"
    return str(value)


def _setting_keys(d: BoundDirective) -> dict[str, Any]:
    prefix = f"{d.variant.name}." if d.variant is not None else ""
    return {prefix + k: v for k, v in d.settings().items()}


def _layer_param_names(d: BoundDirective) -> set[str]:
    return {p.name for p in d.params() if p.type.kind is Kind.LAYERS}


def _has_layer_param(d: BoundDirective) -> bool:
    return bool(_layer_param_names(d))


def explain_rows(bound: BoundScript) -> list[ExplainRow]:
    """One row per statement, in source order."""
    rows = []
    all_layers = tuple(l.name for l in bound.layers) if bound.layers is not None else ()
    for d in bound.directives:
        text = print_statement(d.statement)
        if d.effect == "ignored":
            note = "unknown command" if not d.known else "no effect on this target"
            rows.append(ExplainRow(d.line, text, d.effect, "skipped", (), {}, note))
            continue
        selected = d.selected()
        settings = _setting_keys(d)
        if d.layers:
            scope, layers = "layers", selected or ()
        elif _has_layer_param(d):
            scope = "model inputs" if _layer_param_names(d) == {"inputs"} else "all layers"
            layers = () if scope == "model inputs" else all_layers
        else:
            scope, layers = "model", ()
        note = f"runs pass {d.pass_name}" if d.effect == "pass" and d.pass_name else ""
        if d.name == "calibration":
            note = _calibration_note(bound, d, scope, tuple(layers))
        rows.append(ExplainRow(d.line, text, d.effect, scope, tuple(layers), settings, note))
    return rows


def _calibration_note(bound: BoundScript, d: BoundDirective, scope: str, layers: tuple[str, ...]) -> str:
    """What a calibration line really sets: per-layer lines win over all-layers lines, and only where the
    layer's output has a range of its own (a pass-through layer takes its input's encoding)."""
    if scope == "all layers":
        per_layer = any(o.name == "calibration" and o.layers and o.selected() for o in bound.directives)
        return "all layers but those set per layer" if per_layer else ""
    if scope != "layers" or not layers:
        return ""
    from npuc.quantization.op_params import PASS_THROUGH_KINDS

    kinds = {l.name: l.kind for l in bound.layers or ()}
    through = [n for n in layers if kinds.get(n) in PASS_THROUGH_KINDS]
    note = "these layers' output ranges; wins over lines without layers"
    if through:
        note += (f"; {len(through)} pass-through layer(s) ({', '.join(through[:3])}"
                 f"{', …' if len(through) > 3 else ''}) take their input's range instead")
    return note


def layer_rows(bound: BoundScript) -> list[LayerRow]:
    """Per layer picked by an explicit selector: merged settings (later lines win), in model order."""
    if bound.layers is None:
        return []
    settings: dict[str, dict[str, Any]] = {}
    lines: dict[str, list[int]] = {}
    for d in bound.directives:
        if d.effect == "ignored" or not d.layers:
            continue
        values = _setting_keys(d)
        for name in d.selected() or ():
            settings.setdefault(name, {}).update(values)
            lines.setdefault(name, []).append(d.line)
    return [
        LayerRow(l.name, l.kind, settings[l.name], tuple(lines[l.name])) for l in bound.layers if l.name in settings
    ]


def _names(layers: Sequence[str], scope: str) -> str:
    if scope == "skipped":
        return "—"
    if scope == "model":
        return "(whole model)"
    if scope == "model inputs":
        return "(model inputs)"
    if scope == "all layers":
        return f"(all layers{', ' + str(len(layers)) if layers else ''})"
    if not layers:
        return "(none)"
    shown = ", ".join(layers[:MAX_NAMES])
    more = f", … +{len(layers) - MAX_NAMES} more" if len(layers) > MAX_NAMES else ""
    return f"{len(layers)}: {shown}{more}"


def _settings_text(settings: dict[str, Any], note: str) -> str:
    parts = [f"{k}={format_value(v)}" for k, v in settings.items()]
    if note:
        parts.append(f"({note})")
    return ", ".join(parts) if parts else "—"


def explain_table(bound: BoundScript) -> Table:
    """The per-line table."""
    table = Table(title="Script lines", show_lines=False, expand=False)
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("command", overflow="fold")
    table.add_column("effect", no_wrap=True)
    table.add_column("selects", overflow="fold")
    table.add_column("sets on each", overflow="fold")
    for row in explain_rows(bound):
        table.add_row(str(row.line), row.text, row.effect, _names(row.layers, row.scope), _settings_text(row.settings, row.note))
    return table


def layers_table(bound: BoundScript) -> Table:
    """The per-layer table (only layers a selector picked)."""
    table = Table(title="Layers picked by selectors (final settings; later lines win)")
    table.add_column("layer", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("settings", overflow="fold")
    table.add_column("lines", no_wrap=True)
    for row in layer_rows(bound):
        table.add_row(row.name, row.kind, _settings_text(row.settings, ""), ", ".join(map(str, row.lines)))
    return table


def render_explain(bound: BoundScript, console: Console) -> None:
    """Print both tables."""
    console.print(explain_table(bound))
    if bound.layers is not None and layer_rows(bound):
        console.print(layers_table(bound))
