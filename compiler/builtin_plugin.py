"""The built-in plugin: npuc's own passes, op kinds, float kernels and front-ends.

Declared as the entry point `builtin` of the group `npuc.plugins` in
pyproject.toml and registered exactly like third-party plugins (see
npuc.plugins). Op kinds, float kernels and front-ends register themselves
when their modules are imported, so those loaders only import. Built-in targets
are read from backends/targets/*.toml by npuc.backends.npu.target.
"""
from __future__ import annotations

from importlib import import_module

from npuc.plugins import Plugin

#: modules of the built-in passes, one pass per module (the module name is the pass name)
BUILTIN_PASS_MODULES = (
    "fold_constants",
    "remove_identity",
    "fold_batchnorm",
    "recognize_activations",
    "fuse_activations",
    "fuse_scale",
    "fuse_bias",
    "prune_tail",
    "prune_outputs",
    "eliminate_dead_code",
    "normalization",
    "fold_normalization",
    "quantization_overrides",
    "calibrate",
    "quantize",
    "insert_dtype_conversions",
    "cross_layer_equalization",
    "noise_aware_equalization",
    "stream_equalization",
    "bias_correction",
    "adaround",
)


def _passes():
    from npuc.passes.base import Pass

    found = []
    for mod_name in BUILTIN_PASS_MODULES:
        mod = import_module(f"npuc.passes.{mod_name}")
        found += [v for v in vars(mod).values()
                  if isinstance(v, type) and issubclass(v, Pass) and v.__module__ == mod.__name__ and v.name]
    return found


def _ops():
    import_module("npuc.ir.ops")  # registers the built-in kinds with source 'builtin'
    return ()


def _frontends():
    import_module("npuc.frontends")  # registers the ONNX and TFLite front-ends with source 'builtin'
    return ()


def _kernels():
    import_module("npuc.backends.reference.kernels")  # registers the float kernels with source 'builtin'
    return ()


PLUGIN = Plugin(
    name="builtin",
    passes=_passes,
    ops=_ops,
    kernels=_kernels,
    frontends=_frontends,
    description="npuc's own passes, op kinds, float kernels and front-ends (targets: backends/targets/*.toml)",
)
