"""Per-layer quantization settings: defaults plus per-op overrides keyed by op name.

The script binding resolves selectors (`quantization_param({conv*}, precision_mode=a16_w16)`,
`data_type(...)`) to op names and records them here; the `quantize` pass asks
`QuantConfig.for_op(name)` for the resolved settings of every op.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.ops.conv import REQUANTIZATIONS as MAC_REQUANTIZATIONS

#: precision_mode -> (activation bits, weight bits)
PRECISION_MODES: dict[str, tuple[int, int]] = {
    "a8_w8": (8, 8),
    "a8_w4": (8, 4),
    "a16_w8": (16, 8),
    "a16_w16": (16, 16),
    "a8_w16": (8, 16),
}
#: Hailo's bias modes: one scale (bias at the accumulator scale) or a 16-bit bias with its own extra scale.
BIAS_MODES = ("single_scale_decomposition", "double_scale_initialization")
SCHEMES = ("asymmetric", "symmetric", "power_of_two")
WEIGHT_RANGE_METHODS = ("minmax", "mse", "adjusted")
#: how MAC layers requantize their accumulator (docs/numerics.md sections 6 and 6a)
REQUANTIZATIONS = MAC_REQUANTIZATIONS
#: data_type(...) names -> (float16, activation bits, signed)
DATA_TYPES: dict[str, tuple[bool, int, bool | None]] = {
    "uint8": (False, 8, False),
    "int8": (False, 8, True),
    "uint16": (False, 16, False),
    "int16": (False, 16, True),
    "float16": (True, 16, None),
}


@dataclass(frozen=True)
class LayerQuantConfig:
    """The resolved quantization settings of one op.

    activation_signed None means "as the scheme says": unsigned for asymmetric,
    signed for symmetric and power-of-two.
    """

    scheme: str = "asymmetric"
    activation_bits: int = 8
    activation_signed: bool | None = None
    weight_bits: int = 8
    bias_bits: int = 32
    bias_mode: str = "single_scale_decomposition"
    per_channel: bool = True
    weight_range_method: str = "minmax"
    float16: bool = False
    requantization: str = "integer"
    #: [lo, hi] replacing the calibrated range of the layer's output / of the tensor it reads
    force_range_out: tuple[float, float] | None = None
    force_range_in: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _check_choice("scheme", self.scheme, SCHEMES)
        _check_choice("bias_mode", self.bias_mode, BIAS_MODES)
        _check_choice("weight_range_method", self.weight_range_method, WEIGHT_RANGE_METHODS)
        _check_choice("activation_bits", self.activation_bits, (8, 16))
        _check_choice("weight_bits", self.weight_bits, (4, 8, 16))
        _check_choice("bias_bits", self.bias_bits, (16, 32))
        _check_choice("requantization", self.requantization, REQUANTIZATIONS)
        for key in ("force_range_out", "force_range_in"):
            rng = getattr(self, key)
            if rng is not None and not (len(rng) == 2 and all(math.isfinite(v) for v in rng) and rng[0] < rng[1]):
                raise QuantizationError(f"{key} must be [low, high] with finite low < high, got {list(rng)}")

    @property
    def signed_activations(self) -> bool:
        if self.activation_signed is not None:
            return self.activation_signed
        return self.scheme != "asymmetric"

    @property
    def activation_dtype(self) -> DType:
        """Element type of this layer's activations (FLOAT16 for float16 layers)."""
        if self.float16:
            return DType.FLOAT16
        return DType.integer(self.activation_bits, self.signed_activations)

    @property
    def weight_dtype(self) -> DType:
        if self.float16:
            return DType.FLOAT16
        return DType.integer(self.weight_bits, True)

    @property
    def precision_mode(self) -> str:
        """`a8_w8`-style name, or `float16`."""
        return "float16" if self.float16 else f"a{self.activation_bits}_w{self.weight_bits}"


def _check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise QuantizationError(f"{name}={value!r} is not one of {', '.join(map(str, choices))}")


def settings_for_precision_mode(mode: str) -> dict[str, Any]:
    """Field overrides for `precision_mode=a16_w8` (or `float16`)."""
    if mode == "float16":
        return {"float16": True}
    if mode not in PRECISION_MODES:
        raise QuantizationError(
            f"unknown precision_mode {mode!r}; choose one of {', '.join([*PRECISION_MODES, 'float16'])}")
    a, w = PRECISION_MODES[mode]
    return {"activation_bits": a, "weight_bits": w, "float16": False}


def settings_for_data_type(name: str) -> dict[str, Any]:
    """Field overrides for `data_type(layers, int16)`: activation width/signedness, or float16."""
    key = name.strip().lower()
    if key not in DATA_TYPES:
        raise QuantizationError(f"unknown data type {name!r}; choose one of {', '.join(DATA_TYPES)}")
    f16, bits, signed = DATA_TYPES[key]
    if f16:
        return {"float16": True}
    return {"float16": False, "activation_bits": bits, "activation_signed": signed}


@dataclass
class QuantConfig:
    """Default settings plus per-op overrides (op name -> field values), applied in the order set."""

    default: LayerQuantConfig = field(default_factory=LayerQuantConfig)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_options(cls, **options: Any) -> "QuantConfig":
        """A config whose defaults are the given LayerQuantConfig fields (None values ignored)."""
        known = {f.name for f in dataclasses.fields(LayerQuantConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise QuantizationError(f"unknown quantization option(s) {unknown}; known: {sorted(known)}")
        return cls(LayerQuantConfig(**{k: v for k, v in options.items() if v is not None}))

    def set_layers(self, names: Iterable[str], **fields: Any) -> None:
        """Override fields for the named ops (later calls win field by field)."""
        known = {f.name for f in dataclasses.fields(LayerQuantConfig)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise QuantizationError(f"unknown per-layer quantization setting(s) {unknown}; known: {sorted(known)}")
        for name in names:
            merged = {**self.overrides.get(name, {}), **fields}
            dataclasses.replace(self.default, **merged)  # validate now, not at quantize time
            self.overrides[name] = merged

    def set_precision_mode(self, names: Iterable[str], mode: str) -> None:
        self.set_layers(names, **settings_for_precision_mode(mode))

    def set_data_type(self, names: Iterable[str], data_type: str) -> None:
        self.set_layers(names, **settings_for_data_type(data_type))

    def set_bias_mode(self, names: Iterable[str], mode: str) -> None:
        self.set_layers(names, bias_mode=mode)

    def for_op(self, name: str) -> LayerQuantConfig:
        """The resolved settings of the op named `name`."""
        extra = self.overrides.get(name)
        return dataclasses.replace(self.default, **extra) if extra else self.default

    def unknown_names(self, known: Iterable[str]) -> list[str]:
        """Override keys that name no op in `known` (for a clear error in the pass)."""
        known_set = set(known)
        return sorted(n for n in self.overrides if n not in known_set)
