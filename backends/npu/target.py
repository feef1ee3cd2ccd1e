"""NPU target descriptions, read from TOML files (built-ins in backends/targets/, user folders, plugins)."""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

from npuc.errors import NpucError

#: data types the timing model prices; a16_w8 and a8_w16 layers run at the 16-bit rate
DTYPE_KEYS = ("int8", "int16", "float16")


class TargetError(NpucError):
    """A target name is unknown or its description is invalid."""


@dataclass(frozen=True)
class Target:
    """What the timing model needs to know about an NPU."""

    name: str
    description: str
    clock_mhz: float
    array_rows: int
    array_cols: int
    macs_per_cycle: dict[str, float]
    vector_elements_per_cycle: dict[str, float]
    sram_bytes: int
    weight_sram_fraction: float
    dram_bytes_per_cycle: float
    dram_latency_cycles: int
    layer_overhead_cycles: int
    layout_bytes_per_cycle: float
    conversion_elements_per_cycle: float
    source: str = "builtin"

    @property
    def weight_sram_bytes(self) -> int:
        return int(self.sram_bytes * self.weight_sram_fraction)

    @property
    def activation_sram_bytes(self) -> int:
        return self.sram_bytes - self.weight_sram_bytes


def _get(doc: dict, path: str, kind: type, where: str):
    node: object = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise TargetError(f"{where}: missing key '{path}'")
        node = node[part]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or isinstance(node, bool):
        raise TargetError(f"{where}: '{path}' must be a {kind.__name__}, got {node!r}")
    if kind in (int, float) and node <= 0 and path != "memory.dram_latency_cycles":
        raise TargetError(f"{where}: '{path}' must be > 0, got {node!r}")
    return node


def parse_target(text: str, where: str) -> Target:
    """Parse and validate one target description (TOML text); `where` names it in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{where}: not valid TOML: {exc}") from None
    per_dtype = {}
    for table in ("macs_per_cycle", "vector_elements_per_cycle"):
        per_dtype[table] = {k: _get(doc, f"{table}.{k}", float, where) for k in DTYPE_KEYS}
    fraction = _get(doc, "memory.weight_sram_fraction", float, where)
    if not 0.0 < fraction < 1.0:
        raise TargetError(f"{where}: 'memory.weight_sram_fraction' must be between 0 and 1, got {fraction}")
    return Target(
        name=_get(doc, "name", str, where),
        description=doc.get("description", ""),
        clock_mhz=_get(doc, "clock_mhz", float, where),
        array_rows=_get(doc, "mac_array.rows", int, where),
        array_cols=_get(doc, "mac_array.cols", int, where),
        macs_per_cycle=per_dtype["macs_per_cycle"],
        vector_elements_per_cycle=per_dtype["vector_elements_per_cycle"],
        sram_bytes=int(_get(doc, "memory.sram_kib", int, where)) * 1024,
        weight_sram_fraction=fraction,
        dram_bytes_per_cycle=_get(doc, "memory.dram_bytes_per_cycle", float, where),
        dram_latency_cycles=int(_get(doc, "memory.dram_latency_cycles", int, where)),
        layer_overhead_cycles=_get(doc, "overheads.layer_cycles", int, where),
        layout_bytes_per_cycle=_get(doc, "overheads.layout_bytes_per_cycle", float, where),
        conversion_elements_per_cycle=_get(doc, "overheads.conversion_elements_per_cycle", float, where),
        source=where,
    )


#: targets contributed by plugins: name -> TOML text
_PLUGIN_TARGETS: dict[str, tuple[str, str]] = {}


def register_target_text(text: str, source: str) -> None:
    """Let a plugin add a target description."""
    target = parse_target(text, source)
    if target.name in _PLUGIN_TARGETS:
        raise TargetError(f"target '{target.name}' is registered twice: by {_PLUGIN_TARGETS[target.name][1]} and by {source}")
    _PLUGIN_TARGETS[target.name] = (text, source)


def available_targets(search_paths: Iterable[str | Path] = ()) -> dict[str, Target]:
    """All targets: built-ins, then plugin ones, then *.toml files in `search_paths` (later ones win)."""
    found: dict[str, Target] = {}
    builtin_dir = resources.files("npuc.backends") / "targets"
    for entry in sorted(builtin_dir.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            t = parse_target(entry.read_text(encoding="utf-8"), f"builtin:{entry.name}")
            found[t.name] = t
    for text, source in _PLUGIN_TARGETS.values():
        t = parse_target(text, source)
        found[t.name] = t
    for folder in search_paths:
        folder = Path(folder)
        if not folder.is_dir():
            raise TargetError(f"target path '{folder}' is not a folder")
        for path in sorted(folder.glob("*.toml")):
            t = parse_target(path.read_text(encoding="utf-8"), str(path))
            found[t.name] = t
    return found


DEFAULT_TARGET = "npu-s"


def load_target(name: str = DEFAULT_TARGET, search_paths: Iterable[str | Path] = ()) -> Target:
    """The target called `name`; an unknown name lists the known ones."""
    targets = available_targets(search_paths)
    if name in targets:
        return targets[name]
    close = difflib.get_close_matches(name, list(targets), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise TargetError(f"unknown target '{name}'{hint}; known targets: {', '.join(sorted(targets))}")
