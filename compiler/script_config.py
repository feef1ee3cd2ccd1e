"""What a bound model script asks of the compile pipeline.

The script language (npuc.script) parses and binds; this module turns the
bound directives into pipeline settings: import settings (input shapes,
outputs), float rewrites (normalization, plugin passes, equalization),
calibration options, per-layer quantization settings and post-quantization
passes. Directives npuc accepts but does not act on are reported here, never
silently dropped.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npuc.calibration.statistics import LayerObserverConfig
from npuc.errors import QuantizationError, ScriptError
from npuc.passes.base import Pass
from npuc.quantization.config import QuantConfig

log = logging.getLogger(__name__)

#: script commands read before the model is imported
IMPORT_COMMANDS = ("input_shape", "prune_after", "outputs")
#: commands handled by the driver itself (everything else with effect 'pass' becomes a pass)
CONFIG_COMMANDS = IMPORT_COMMANDS + (
    "normalization", "model_optimization_config", "model_optimization_flavor", "pre_quantization_optimization",
    "post_quantization_optimization", "quantization_param", "calibration", "data_type", "quantization_overrides",
)
#: passes that run on the quantized model (after `quantize`)
POST_QUANTIZATION_PASSES = ("bias_correction", "adaround", "finetune")


def script_registry():
    """The script command registry with every registered pass available as a command."""
    from npuc.passes.registry import PASSES
    from npuc.script import ScriptCommand, default_registry

    registry = default_registry()
    for name in PASSES.names():
        if name in registry:
            continue
        cls = PASSES.get(name)
        registry.register(ScriptCommand.from_dataclass(name, cls, cls.summary(), source=PASSES.source(name)))
    return registry


@dataclass
class ImportSettings:
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


def import_settings(bound) -> ImportSettings:
    """input_shape / prune_after / outputs directives (bound without a model)."""
    out = ImportSettings()
    for d in bound.directives:
        if d.name == "input_shape":
            out.input_shapes[d.value("name")] = tuple(int(v) for v in d.value("shape"))
        elif d.name in ("prune_after", "outputs"):
            out.outputs.extend(t for t in d.value("tensors") if t not in out.outputs)
    return out


@dataclass
class PipelineSettings:
    """Everything the script sets for the passes after import."""

    #: (mean, std, inputs or None for the first, layer name: the script's assignment name or "normalization")
    normalizations: list[tuple[list[float], list[float], tuple[str, ...] | None, str]] = field(default_factory=list)
    float_passes: list[Pass] = field(default_factory=list)
    calibrate_options: dict[str, Any] = field(default_factory=dict)
    #: per-layer calibration methods (`calibration(layers, method=...)`), in script order (later entries win)
    calibration_layers: list[LayerObserverConfig] = field(default_factory=list)
    quantize_options: dict[str, Any] = field(default_factory=dict)
    quant_config: QuantConfig = field(default_factory=QuantConfig)
    post_passes: list[Pass] = field(default_factory=list)
    overrides: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # accepted but not acted on


def _where(d) -> str:
    return f"{d.statement.span.file or 'script'}:{d.line}"


def _make_pass(name: str, options: dict[str, Any], d, notes: list[str]) -> Pass | None:
    """The pass `name` with the statement's options it takes; options it does not take (another toolchain's
    training settings such as learning_rate or epochs) are named in `notes`, not silently dropped."""
    from npuc.passes.manager import make_pass
    from npuc.passes.registry import PASSES

    if name not in PASSES:
        raise ScriptError(f"{_where(d)}: '{d.name}' asks for the pass '{name}', which is not available in this "
                          f"npuc (loaded passes: {', '.join(PASSES.names())})")
    known = {o.name for o in PASSES.get(name).options()}
    chosen = {k: v for k, v in options.items() if k in known}
    ignored = sorted(k for k in options if k not in known and k != "policy")
    if ignored:
        notes.append(f"{_where(d)}: {', '.join(k + '=' for k in ignored)} accepted but not used: npuc's pass "
                     f"'{name}' takes {', '.join(sorted(known)) or 'no options'}")
    if "layers" in known and d.selected() is not None:  # layer selectors resolved against the model
        chosen["layers"] = tuple(d.selected())
    return make_pass(name, chosen)


def pipeline_settings(bound) -> PipelineSettings:
    """Interpret the directives of a script bound against the (cleaned-up) model."""
    s = PipelineSettings()
    for d in bound.effective():
        name, settings, layers = d.name, d.settings(), d.selected()
        if name in IMPORT_COMMANDS:
            continue
        if name == "normalization":
            s.normalizations.append((list(d.value("mean")), list(d.value("std")), d.layers.get("inputs"),
                                     d.targets[0] if d.targets else "normalization"))
        elif name == "model_optimization_config":  # only the 'calibration' variant has an effect
            s.calibrate_options.update({k: v for k, v in settings.items() if k in ("batch_size", "calibset_size")})
        elif name == "calibration":
            given = {k: v for k, v in settings.items() if k in ("method", "percentile", "per_channel")}
            if d.args.get("layers") is None:  # the global setting (per-layer lines win over it, in any order)
                s.calibrate_options.update(given)
            elif layers:  # per-layer: these layers' output tensors (an empty selection was warned about)
                s.calibration_layers.append(LayerObserverConfig(tuple(layers), source=_where(d), **given))
        elif name == "quantization_param":
            names = layers or ()
            if "precision_mode" in settings and settings["precision_mode"] is not None:
                s.quant_config.set_precision_mode(names, settings["precision_mode"])
            if "bias_mode" in settings and settings["bias_mode"] is not None:
                s.quant_config.set_bias_mode(names, settings["bias_mode"])
            if settings.get("requantization") is not None:
                s.quant_config.set_layers(names, requantization=settings["requantization"])
            for key in ("force_range_in", "force_range_out"):
                if settings.get(key) is not None:
                    try:
                        s.quant_config.set_layers(names, **{key: tuple(float(v) for v in settings[key])})
                    except QuantizationError as exc:
                        raise ScriptError(f"{_where(d)}: {exc}") from None
            for key in ("quantization_groups", "max_elementwise_feed_repeat",
                        "max_bias_feed_repeat", "null_channels_cutoff_factor"):
                if settings.get(key) is not None:
                    s.notes.append(f"{_where(d)}: quantization_param {key}= is accepted but has no effect in npuc yet")
        elif name == "data_type":
            s.quant_config.set_data_type(layers or (), d.value("dtype"))
        elif name == "quantization_overrides":
            s.overrides.append(Path(d.value("path")))
        elif name == "model_optimization_flavor":
            s.notes.append(f"{_where(d)}: model_optimization_flavor presets are not applied; enable algorithms "
                           f"explicitly (pre_/post_quantization_optimization)")
        elif name == "pre_quantization_optimization":
            if d.effect == "pass" and d.value("policy") == "enabled":
                p = _make_pass(d.pass_name, settings, d, s.notes)
                if p is not None:
                    s.float_passes.append(p)
            elif d.effect != "pass":
                s.notes.append(f"{_where(d)}: pre_quantization_optimization({d.variant.name}) is accepted but "
                               f"has no effect in npuc yet")
        elif name == "post_quantization_optimization":
            if d.value("policy") == "enabled":
                p = _make_pass(d.pass_name, settings, d, s.notes)
                if p is not None:
                    s.post_passes.append(p)
        elif d.effect == "pass" and (d.pass_name or name) in ("calibrate", "quantize"):
            target = s.calibrate_options if (d.pass_name or name) == "calibrate" else s.quantize_options
            target.update(settings)  # options of the pipeline's own calibrate/quantize steps
        elif d.effect == "pass":  # any registered pass by its own name (built-in or plugin)
            p = _make_pass(d.pass_name or name, settings, d, s.notes)
            if p is None:
                continue
            (s.post_passes if p.name in POST_QUANTIZATION_PASSES else s.float_passes).append(p)
        else:
            s.notes.append(f"{_where(d)}: '{name}' has no effect on this target")
    return s
