"""The built-in script commands: those with meaning on npuc, and other vendors' that are skipped.

The semantics of the meaningful ones (normalization folding, calibration,
quantization, ...) live in the passes and the driver; here they are declared
so that scripts parse, bind and validate against them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from npuc.ir.ops.conv import REQUANTIZATIONS
from npuc.script.commands import CommandRegistry, ScriptCommand, Variant
from npuc.script.options import (
    BOOL,
    LAYERS,
    PATH,
    STR,
    TENSOR,
    Param,
    enum,
    float_in,
    int_in,
    list_of,
)

SOURCE = "builtin"

POLICY = enum("enabled", "disabled")
PRECISION_MODES = ("a8_w8", "a8_w4", "a16_w8", "a16_w16", "a8_w16")
BIAS_MODES = ("single_scale_decomposition", "double_scale_initialization")
DATA_TYPES = ("uint8", "int8", "int16", "float16")
CALIBRATION_METHODS = ("minmax", "percentile", "mse", "kl")
LOSS_TYPES = ("l2", "l2rel", "cosine", "ce")

FLOAT = float_in()
RANGE_PAIR = list_of(FLOAT, length=2).with_nullable()
OPTIONAL_LAYERS = LAYERS.with_nullable()


def _layers_param(doc: str = "layers to apply to; all layers when omitted") -> Param:
    return Param("layers", OPTIONAL_LAYERS, None, doc)


def _ordered_pair(*names: str):
    """A check: each named [lo, hi] option must have lo < hi."""

    def check(args: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        problems = []
        for name in names:
            pair = args.get(name)
            if pair is not None and not pair[0] < pair[1]:
                problems.append((name, f"{name} must be [low, high] with low < high, got {pair}"))
        return problems

    return check


def _check_normalization(args: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    mean, std = args.get("mean"), args.get("std")
    problems = []
    if mean is not None and std is not None and len(mean) != len(std):
        problems.append(("std", f"mean has {len(mean)} values but std has {len(std)}: give one per channel"))
    if std is not None and any(s == 0 for s in std):
        problems.append(("std", "std must not contain 0 (it divides the input)"))
    if mean is not None and not mean:
        problems.append(("mean", "mean must have one value per channel, got an empty list"))
    return problems


def _check_clipping(args: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    problems = list(_ordered_pair("clipping_values")(args))
    mode, values = args.get("mode"), args.get("clipping_values")
    if mode in ("manual", "percentile") and values is None:
        problems.append(("mode", f"mode={mode} needs clipping_values=[low, high]"))
    if mode == "percentile" and values is not None and not all(0 <= v <= 100 for v in values):
        problems.append(("clipping_values", f"percentile clipping values must be within [0, 100], got {values}"))
    return problems


def _at_least_one(name: str):
    def check(args: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        return [] if args.get(name) else [(name, f"give at least one {name[:-1]} name")]

    return check


def _ignored(name: str, doc: str) -> Variant:
    return Variant(name, (), doc, "ignored")


# ---- meaningful commands ------------------------------------------------------------------

NORMALIZATION = ScriptCommand(
    "normalization",
    params=(
        Param("mean", list_of(FLOAT), doc="per-channel means subtracted from the input, e.g. [123.675, 116.28, 103.53]"),
        Param("std", list_of(FLOAT), doc="per-channel divisors, e.g. [58.395, 57.12, 57.375]; none may be 0"),
        Param("inputs", OPTIONAL_LAYERS, None, "input layer(s) to normalize; the model's first input when omitted"),
    ),
    doc="Fold input normalization (x - mean) / std into the model, so it takes raw pixel values.",
    effect="config",
    check=_check_normalization,
)

MODEL_OPTIMIZATION_CONFIG = ScriptCommand(
    "model_optimization_config",
    params=(Param("feature", enum("calibration", "compression_params", "globals", "checker_cfg", "negative_exponent"), doc="which settings to change"),),
    variants=(
        Variant(
            "calibration",
            (
                Param("batch_size", int_in(1), 8, "images per calibration batch (statistics stream batch by batch)"),
                Param("calibset_size", int_in(1), 64, "how many calibration items to use"),
            ),
            "Calibration set usage.",
            "config",
        ),
        _ignored("compression_params", "4-bit weight compression ratios of another toolchain."),
        _ignored("globals", "GPU and multiprocessing policies of another toolchain."),
        _ignored("checker_cfg", "Another toolchain's layer-noise checker settings."),
        _ignored("negative_exponent", "Another toolchain's accumulator shift handling."),
    ),
    doc="Optimization settings, grouped by feature: `model_optimization_config(calibration, batch_size=8, calibset_size=64)`.",
    effect="config",
)

MODEL_OPTIMIZATION_FLAVOR = ScriptCommand(
    "model_optimization_flavor",
    options=(
        Param("optimization_level", int_in(0, 4), 2, "0: calibrate only; 1: + equalization and bias correction; 2 and up: + iterative bias correction and fine-tuning where the set is large enough"),
        Param("compression_level", int_in(0, 5), 1, "how many layers may use 4-bit weights (0: none)"),
        Param("batch_size", int_in(1).with_nullable(), None, "batch size of the optimization algorithms"),
    ),
    doc="Pick a preset of optimization algorithms by level.",
    effect="config",
)

PRE_QUANTIZATION_OPTIMIZATION = ScriptCommand(
    "pre_quantization_optimization",
    params=(Param("feature", enum(
        "equalization", "activation_clipping", "weights_clipping", "dead_layers_removal", "zero_static_channels",
        "se_optimization", "ew_add_fusing", "global_avgpool_reduction", "layer_norm_decomposition",
        "matmul_correction", "smart_softmax_stats", "switch_concat_with_add", "split_ew_mult_by_bit_significance",
        "resolution_reduction"), doc="the optimization to configure"),),
    variants=(
        Variant(
            "equalization",
            (_layers_param(), Param("policy", POLICY, "enabled", "enabled or disabled"),
             Param("ranges", enum("weights", "activations"), "weights",
                   "what is equalized against the next layer's weight ranges: the layer's weight ranges (weights) "
                   "or its calibrated per-channel output ranges (activations, needs calibration data)")),
            "Cross-layer equalization (Nagel et al. 2019): rescale consecutive conv/gemm pairs so their per-channel weight ranges match.",
            "pass",
            pass_name="cross_layer_equalization",
        ),
        Variant(
            "activation_clipping",
            (
                _layers_param(),
                Param("mode", enum("disabled", "manual", "percentile"), "disabled", "how activation ranges are clipped"),
                Param("clipping_values", RANGE_PAIR, None, "[low, high]: values (manual) or percentiles (percentile)"),
                Param("recollect_stats", BOOL, False, "collect statistics again after clipping"),
            ),
            "Clip long tails of activation ranges before quantization.",
            "config",
            check=_check_clipping,
        ),
        Variant(
            "weights_clipping",
            (
                _layers_param(),
                Param("mode", enum("disabled", "manual", "percentile", "mmse", "mmse_if4b"), "disabled", "how weight ranges are clipped"),
                Param("clipping_values", RANGE_PAIR, None, "[low, high]: values (manual) or percentiles (percentile)"),
            ),
            "Clip weight ranges before quantization.",
            "config",
            check=_check_clipping,
        ),
        _ignored("dead_layers_removal", "Another toolchain's removal of dead channels."),
        _ignored("zero_static_channels", "Another toolchain's zeroing of static channels."),
        _ignored("se_optimization", "Another toolchain's squeeze-and-excitation rewrite."),
        _ignored("ew_add_fusing", "Another toolchain's element-wise add fusing."),
        _ignored("global_avgpool_reduction", "Another toolchain's global-average-pool split."),
        _ignored("layer_norm_decomposition", "Another toolchain's layer-norm decomposition."),
        _ignored("matmul_correction", "Another toolchain's matmul correction."),
        _ignored("smart_softmax_stats", "Another toolchain's softmax statistics."),
        _ignored("switch_concat_with_add", "Another toolchain's concat-to-add rewrite."),
        _ignored("split_ew_mult_by_bit_significance", "Another toolchain's element-wise multiply split."),
        _ignored("resolution_reduction", "Another toolchain's reduced-resolution optimization."),
    ),
    doc="Float-graph optimizations run before quantization.",
    effect="config",
)

_TRAINING = (
    Param("policy", POLICY, "disabled", "enabled or disabled"),
    Param("learning_rate", float_in(0, min_exclusive=True), 1e-4, "optimizer learning rate"),
    Param("epochs", int_in(1), 4, "passes over the data"),
    Param("batch_size", int_in(1), 8, "items per optimizer step"),
    Param("dataset_size", int_in(1), 1024, "calibration items used"),
)

POST_QUANTIZATION_OPTIMIZATION = ScriptCommand(
    "post_quantization_optimization",
    params=(Param("feature", enum("bias_correction", "finetune", "adaround", "mix_precision_search"), doc="the optimization to configure"),),
    variants=(
        Variant(
            "bias_correction",
            (
                _layers_param(),
                Param("policy", POLICY, "enabled", "enabled or disabled"),
                Param("iterative", BOOL, False, "iterative bias correction: layer by layer, feeding corrected activations forward"),
            ),
            "Correct the mean output error of each layer using float vs quantized activations.",
            "pass",
            pass_name="bias_correction",
        ),
        Variant(
            "finetune",
            (
                *_TRAINING,
                Param("loss_layer_names", list_of(STR).with_nullable(), None, "layers whose outputs the loss compares"),
                Param("loss_types", list_of(enum(*LOSS_TYPES)).with_nullable(), None, "one loss per loss layer"),
                Param("loss_factors", list_of(float_in(0)).with_nullable(), None, "weight of each loss"),
                Param("def_loss_type", enum(*LOSS_TYPES), "l2rel", "loss of the layers not listed"),
                Param("layers_to_freeze", OPTIONAL_LAYERS, None, "layers whose weights stay fixed"),
            ),
            "Quantization-aware fine-tuning on the calibration set.",
            "pass",
            pass_name="finetune",
        ),
        Variant(
            "adaround",
            (*_TRAINING, _layers_param(), Param("warmup", float_in(0, 1), 0.2, "fraction of epochs before rounding is regularized")),
            "AdaRound: learn whether each weight rounds up or down.",
            "pass",
            pass_name="adaround",
        ),
        _ignored("mix_precision_search", "Another toolchain's automatic precision search."),
    ),
    doc="Optimizations of the quantized model.",
    effect="config",
)

QUANTIZATION_PARAM = ScriptCommand(
    "quantization_param",
    params=(Param("layers", LAYERS, doc="layers to configure"),),
    options=(
        Param("precision_mode", enum(*PRECISION_MODES).with_nullable(), None, "activation and weight bits: a8_w8, a8_w4, a16_w8, a16_w16, a8_w16"),
        Param("bias_mode", enum(*BIAS_MODES).with_nullable(), None, "single_scale_decomposition (8-bit bias) or double_scale_initialization (16-bit bias)"),
        Param("requantization", enum(*REQUANTIZATIONS).with_nullable(), None, "MAC layers: integer (31-bit multiplier, half up) or float32 (onnxruntime's QLinearConv arithmetic, docs/numerics.md 6a)"),
        Param("quantization_groups", int_in(1, 16).with_nullable(), None, "split output channels into this many groups, each with its own scale"),
        Param("force_range_in", RANGE_PAIR, None, "[min, max] replacing the calibrated range of the tensor the layer reads (its producer writes in it)"),
        Param("force_range_out", RANGE_PAIR, None, "[min, max] replacing the calibrated range of the layer's output"),
        Param("max_elementwise_feed_repeat", int_in(1).with_nullable(), None, "limit on element-wise feed repeats"),
        Param("max_bias_feed_repeat", int_in(1).with_nullable(), None, "limit on bias feed repeats"),
        Param("null_channels_cutoff_factor", float_in(0).with_nullable(), None, "channels below this share of the range count as null"),
    ),
    doc="Per-layer quantization settings.",
    effect="config",
    check=_ordered_pair("force_range_in", "force_range_out"),
)

CALIBRATION = ScriptCommand(
    "calibration",
    params=(_layers_param("layers whose output ranges use this algorithm (a line with layers wins over one "
                          "without, in any order; later lines win per layer); all layers when omitted"),),
    options=(
        Param("method", enum(*CALIBRATION_METHODS), "minmax", "range algorithm: minmax (true min/max), percentile, mse (enhanced, may clip tails), kl (entropy)"),
        Param("percentile", float_in(0, 100, min_exclusive=True), 99.99, "for method=percentile: the percentile kept"),
        Param("per_channel", BOOL, False, "per-channel ranges where the layer allows it"),
    ),
    doc="npuc: how activation ranges are computed from the calibration set.",
    effect="config",
)

PRUNE_AFTER = ScriptCommand(
    "prune_after",
    variadic=Param("tensors", TENSOR, doc="tensor names; every layer after them is dropped"),
    doc="npuc: end the model at these tensors (cut off post-processing and unneeded outputs).",
    effect="config",
    check=_at_least_one("tensors"),
)

OUTPUTS = ScriptCommand(
    "outputs",
    variadic=Param("tensors", TENSOR, doc="output tensor names to keep"),
    doc="npuc: keep only these outputs (same as prune_after).",
    effect="config",
    check=_at_least_one("tensors"),
)

INPUT_SHAPE = ScriptCommand(
    "input_shape",
    params=(
        Param("name", STR, doc="model input name"),
        Param("shape", list_of(int_in(1)), doc="dimensions, e.g. [1, 3, 48, 192]; calibration needs batch 1"),
    ),
    doc="npuc: fix the shape of a model input whose dimensions are symbolic.",
    effect="config",
)

DATA_TYPE = ScriptCommand(
    "data_type",
    params=(
        Param("layers", LAYERS, doc="layers to set"),
        Param("dtype", enum(*DATA_TYPES), doc="uint8, int8, int16 or float16"),
    ),
    doc="npuc: per-layer data type (mixed precision); conversion layers are inserted where it changes.",
    effect="config",
)

QUANTIZATION_OVERRIDES = ScriptCommand(
    "quantization_overrides",
    params=(Param("path", PATH, doc="AIMET-format encodings JSON, relative to the script"),),
    doc="npuc: load per-tensor encodings ({activation,param}_encodings) that override computed ranges.",
    effect="config",
)

MEANINGFUL: tuple[ScriptCommand, ...] = (
    NORMALIZATION,
    MODEL_OPTIMIZATION_CONFIG,
    MODEL_OPTIMIZATION_FLAVOR,
    PRE_QUANTIZATION_OPTIMIZATION,
    POST_QUANTIZATION_OPTIMIZATION,
    QUANTIZATION_PARAM,
    CALIBRATION,
    PRUNE_AFTER,
    OUTPUTS,
    INPUT_SHAPE,
    DATA_TYPE,
    QUANTIZATION_OVERRIDES,
)

# ---- other vendors' hardware-allocation commands: parsed, warned about, skipped ---------------

IGNORED_COMMANDS: dict[str, str] = {
    "resources_param": "resource utilization limits of another NPU's allocator",
    "allocator_param": "another NPU's allocator tuning (timeouts, strategies)",
    "context_switch_param": "another NPU's context-switch settings",
    "performance_param": "another NPU's compiler optimization level",
    "buffers": "another NPU's inter-layer buffer sizes",
    "platform_param": "another NPU's target platforms",
    "compilation_param": "another NPU's per-layer compilation settings",
    "hef_param": "another NPU's binary-format settings",
    "nms_postprocess": "another NPU's on-chip NMS post-processing",
    "change_output_activation": "another NPU's output activation rewrite",
    "input_conversion": "another NPU's on-chip input color conversion",
    "format_conversion": "another NPU's input format conversion",
    "resize": "another NPU's on-chip resize",
    "reshape": "another NPU's reshape insertion",
    "transpose": "another NPU's transpose insertion",
    "set_seed": "another toolchain's random seed",
    "context": "another NPU's context definition",
    "place": "another NPU's layer placement into contexts",
    "defuse": "another NPU's layer defusing",
    "defuse_block": "another NPU's block defusing",
    "shortcut": "another NPU's shortcut layer insertion",
    "portal": "another NPU's portal insertion",
    "ddr": "another NPU's DDR buffer insertion",
    "output_mux": "another NPU's output multiplexer",
    "feature_splitter": "another NPU's feature splitter",
    "logits_layer": "another NPU's logits layer insertion",
}


def ignored_command(name: str, what: str) -> ScriptCommand:
    """A command accepted with any arguments and skipped with a warning."""
    return ScriptCommand(name, doc=f"Has no effect on this target: {what}.", effect="ignored")


def register_builtins(registry: CommandRegistry) -> CommandRegistry:
    """Register every built-in command into `registry` (and return it)."""
    for command in MEANINGFUL:
        registry.register(command, SOURCE)
    for name, what in IGNORED_COMMANDS.items():
        registry.register(ignored_command(name, what), SOURCE)
    return registry
