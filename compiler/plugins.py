"""Plugins: how passes, op kinds, float kernels, front-ends and targets get into npuc.

A plugin is a `Plugin` object of *lazy loaders*: zero-argument callables that
import what they need only when the plugin is activated. They are found

* through the entry-point group ``npuc.plugins`` (an installed package
  declares ``[project.entry-points."npuc.plugins"] name = "pkg.module:PLUGIN"``),
* through ``npuc --plugin path/to/file.py`` (a file defining ``PLUGIN = Plugin(...)``).

The built-in passes and ops register the same way (npuc.builtin_plugin).
Activation is all-or-nothing: every name a plugin brings is checked first,
and a name that is already taken is a PluginError naming both sources.

Loader return values:

* passes:    iterable of Pass subclasses
* ops:       iterable of OpSpec
* kernels:   mapping {op kind: kernel fn} or iterable of (kind, fn) pairs
* frontends: iterable of npuc.frontends.Frontend
* targets:   iterable of target descriptions: pathlib.Path of a .toml file, or TOML text
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from npuc.errors import NpucError, PluginError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "npuc.plugins"
BUILTIN_SOURCE = "builtin"

Loader = Callable[[], Any]


@dataclass(frozen=True)
class Plugin:
    """What a plugin contributes, as lazy loaders (see the module docstring)."""

    name: str
    passes: Loader | None = None
    ops: Loader | None = None
    kernels: Loader | None = None
    frontends: Loader | None = None
    targets: Loader | None = None
    description: str = ""


#: plugins activated in this process: id(plugin) -> (plugin, source)
_ACTIVE: dict[int, tuple[Plugin, str]] = {}
_FILES: dict[Path, Plugin] = {}
_ENTRY_POINTS_LOADED = False
_ACTIVATING_BUILTIN = False


# ---------------------------------------------------------------- public API
def ensure_builtin_plugin() -> None:
    """Activate the built-in plugin if nothing has yet (library use without the CLI)."""
    global _ACTIVATING_BUILTIN
    if _ACTIVATING_BUILTIN:
        return
    from npuc.builtin_plugin import PLUGIN

    if id(PLUGIN) in _ACTIVE:
        return
    _ACTIVATING_BUILTIN = True
    try:
        activate(PLUGIN, BUILTIN_SOURCE)
    finally:
        _ACTIVATING_BUILTIN = False


def load_plugins(paths: Sequence[str | Path] = (), entry_points: bool = True) -> list[tuple[Plugin, str]]:
    """Activate the built-in plugin, installed entry-point plugins, then plugin files, in that order.

    Safe to call repeatedly: a plugin already active is skipped. Returns (plugin, source) of
    every active plugin.
    """
    global _ENTRY_POINTS_LOADED
    ensure_builtin_plugin()
    if entry_points and not _ENTRY_POINTS_LOADED:
        for plugin, source in _discover_entry_points():
            if id(plugin) not in _ACTIVE:
                activate(plugin, source)
        _ENTRY_POINTS_LOADED = True
    for path in paths:
        plugin, source = load_plugin_file(path)
        if id(plugin) not in _ACTIVE:
            activate(plugin, source)
    return active_plugins()


def active_plugins() -> list[tuple[Plugin, str]]:
    return list(_ACTIVE.values())


def load_plugin_file(path: str | Path) -> tuple[Plugin, str]:
    """Import a plugin file and return its `PLUGIN` (the same object if the file was loaded before)."""
    p = Path(path)
    source = f"plugin file {path}"
    if not p.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    key = p.resolve()
    if key in _FILES:
        return _FILES[key], source
    digest = hashlib.sha1(str(key).encode()).hexdigest()[:8]
    mod_name = f"npuc_plugin_{''.join(c if c.isalnum() else '_' for c in p.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, key)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path} cannot be imported as Python (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except NpucError:
        sys.modules.pop(mod_name, None)
        raise
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise PluginError(f"plugin file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    plugin = getattr(module, "PLUGIN", None)
    if not isinstance(plugin, Plugin):
        raise PluginError(
            f"plugin file {path} must define PLUGIN = npuc.plugins.Plugin(...), "
            f"found {type(plugin).__name__ if plugin is not None else 'nothing'}"
        )
    _FILES[key] = plugin
    return plugin, source


def activate(plugin: Plugin, source: str) -> None:
    """Run a plugin's loaders and register everything, or nothing if any name clashes."""
    if id(plugin) in _ACTIVE:
        return
    from npuc.ir.op_spec import OPS
    from npuc.passes.registry import PASSES

    passes = list(_call(plugin.passes, "passes", source))
    ops = list(_call(plugin.ops, "ops", source))
    kernels = _pairs(_call(plugin.kernels, "kernels", source))
    frontends = list(_call(plugin.frontends, "frontends", source))
    targets = _targets(_call(plugin.targets, "targets", source), source)

    # check everything first so a failing plugin leaves no trace
    PASSES.check_new(passes, source)
    seen_ops: set[str] = set()
    for spec in ops:
        if spec.kind in OPS:
            raise PluginError(f"op kind '{spec.kind}' is registered twice: by {OPS.source(spec.kind)} and by {source}")
        if spec.kind in seen_ops:
            raise PluginError(f"op kind '{spec.kind}' is registered twice by {source}")
        seen_ops.add(spec.kind)
    if kernels:
        from npuc.backends.reference.kernels import FLOAT_KERNELS, KERNEL_SOURCES

        for kind, _ in kernels:
            if kind in FLOAT_KERNELS:
                raise PluginError(
                    f"float kernel for op kind '{kind}' is registered twice: by {KERNEL_SOURCES[kind]} and by {source}")
    if frontends:
        from npuc.frontends import FRONTENDS

        seen_fe: set[str] = set()
        for fe in frontends:
            if fe.name in FRONTENDS or fe.name in seen_fe:
                first = FRONTENDS[fe.name].source if fe.name in FRONTENDS else source
                raise PluginError(f"front-end '{fe.name}' is registered twice: by {first} and by {source}")
            seen_fe.add(fe.name)
    if targets:
        from npuc.backends.npu.target import available_targets

        known = {name: t.source for name, t in available_targets().items()}
        for name, _ in targets:
            if name in known:
                raise PluginError(f"target '{name}' is registered twice: by {known[name]} and by {source}")
            known[name] = source

    for cls in passes:
        PASSES.register(cls, source)
    for spec in ops:
        OPS.register(spec, source)
    if kernels:
        from npuc.backends.reference.kernels import register_kernel

        for kind, fn in kernels:
            register_kernel(kind, fn, source)
    if frontends:
        from npuc.frontends import register_frontend

        for fe in frontends:
            register_frontend(dataclasses.replace(fe, source=source))
    if targets:
        from npuc.backends.npu.target import register_target_text

        for _, text in targets:
            register_target_text(text, source)
    _ACTIVE[id(plugin)] = (plugin, source)
    log.debug("plugin %s activated from %s: %d passes, %d ops, %d kernels", plugin.name, source,
              len(passes), len(ops), len(kernels))


@contextlib.contextmanager
def isolated_registries() -> Iterator[None]:
    """Undo every registration made inside the block (tests load plugins without leaking them)."""
    global _ENTRY_POINTS_LOADED
    from npuc.ir.op_spec import OPS
    from npuc.passes.registry import PASSES

    ensure_builtin_plugin()
    import npuc.backends.npu.target as target_mod
    import npuc.backends.reference.kernels as kernels_mod
    import npuc.frontends as frontends_mod

    dicts = [OPS._specs, OPS._sources, kernels_mod.FLOAT_KERNELS, kernels_mod.KERNEL_SOURCES,  # noqa: SLF001
             kernels_mod.INPLACE_KERNELS, frontends_mod.FRONTENDS, target_mod._PLUGIN_TARGETS,  # noqa: SLF001
             _ACTIVE, _FILES]
    saved = [dict(d) for d in dicts]
    passes, entry_points_loaded = PASSES.snapshot(), _ENTRY_POINTS_LOADED
    try:
        yield
    finally:
        for d, old in zip(dicts, saved):
            d.clear()
            d.update(old)
        PASSES.restore(passes)
        _ENTRY_POINTS_LOADED = entry_points_loaded


# ------------------------------------------------------------------ helpers
def _discover_entry_points() -> list[tuple[Plugin, str]]:
    from npuc.builtin_plugin import PLUGIN as BUILTIN

    found = []
    eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    for ep in eps:
        dist = getattr(ep, "dist", None)
        where = f" from package {dist.name} {dist.version}" if dist is not None else ""
        source = f"entry point '{ep.name} = {ep.value}'{where}"
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {source} failed to load: {type(exc).__name__}: {exc}") from exc
        if plugin is BUILTIN:
            continue
        if not isinstance(plugin, Plugin):
            raise PluginError(f"plugin {source} must name a npuc.plugins.Plugin object, got {type(plugin).__name__}")
        found.append((plugin, source))
    return found


def _call(loader: Loader | None, what: str, source: str) -> Iterable[Any]:
    if loader is None:
        return ()
    try:
        items = loader()
    except NpucError:
        raise
    except Exception as exc:
        raise PluginError(f"{source}: loading its {what} failed: {type(exc).__name__}: {exc}") from exc
    return () if items is None else items


def _pairs(items: Any) -> list[tuple[str, Any]]:
    if isinstance(items, Mapping):
        return list(items.items())
    return [tuple(i) for i in items]  # type: ignore[misc]


def _targets(items: Any, source: str) -> list[tuple[str, str]]:
    """(name, TOML text) of each target a plugin brings."""
    if not items:
        return []
    from npuc.backends.npu.target import parse_target

    out = []
    for item in items:
        if isinstance(item, Path) or (isinstance(item, str) and item.endswith(".toml") and "\n" not in item):
            try:
                text = Path(item).read_text(encoding="utf-8")
            except OSError as exc:
                raise PluginError(f"{source}: cannot read target file {item}: {exc}") from None
        else:
            text = str(item)
        try:
            out.append((parse_target(text, source).name, text))
        except NpucError as exc:
            raise PluginError(f"{source}: bad target description: {exc}") from None
    return out
