"""Quantization encodings in the AIMET/SNPE JSON format: import as fixed encodings, export the chosen ones.

Format (the "legacy" AIMET format that SNPE/QNN `--quantization_overrides` read)::

    {"activation_encodings": {"tensor": [{"bitwidth": 8, "min": -1.0, "max": 1.0,
                                           "scale": 0.0078, "offset": -128,
                                           "is_symmetric": "True", "dtype": "int"}]},
     "param_encodings":      {"conv1.weight": [{...}, {...}, ...]}}   # one entry per channel

AIMET describes an unsigned grid q in [0, 2**bitwidth - 1] with
``real = scale * (q + offset)``, offset = round(min / scale) <= 0. In npuc's
terms (``real = scale * (q - zero_point)``):

* an unsigned encoding has ``zero_point = -offset``;
* a symmetric encoding (``is_symmetric`` true and ``offset == -2**(bitwidth-1)``)
  is signed with ``zero_point = 0`` (weights, biases, symmetric activations);
* a signed asymmetric encoding, which AIMET cannot tell apart from an unsigned
  one, is written with the extra key ``"signed": true`` (read back by npuc,
  ignored by other tools) so an export -> import round trip is exact.

When ``scale``/``offset`` are absent they are derived from ``bitwidth``, ``min``
and ``max`` as AIMET does: the range is widened to contain 0 (and to the
minimum width of `npuc.quantization.schemes`), ``scale = (max - min) /
(2**bitwidth - 1)``, ``offset = round(min / scale)``; symmetric:
``scale = max(|min|, |max|) / (2**(bitwidth-1) - 1)``, ``offset = -2**(bitwidth-1)``.
Entries with ``"dtype": "float"`` mark float16/float32 tensors.

Imported encodings are stored on the tensors as ``tensor.meta["fixed_quant"]``
(a QuantParams; per channel along the output-channel axis for weights) or
``tensor.meta["fixed_dtype"]`` (a float DType); the quantizer gives them
priority over calibration.
"""
from __future__ import annotations

import difflib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from npuc.errors import QuantizationError
from npuc.ir.dtypes import DType
from npuc.ir.graph import Graph
from npuc.ir.quant_params import QuantParams
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

FIXED_QUANT = "fixed_quant"
FIXED_DTYPE = "fixed_dtype"
SECTIONS = ("activation_encodings", "param_encodings")
INT_BITWIDTHS = (4, 8, 16, 32)

try:  # the shared minimum range width, so overrides and calibration agree
    from npuc.quantization.schemes import MIN_RANGE_WIDTH
except ImportError:  # pragma: no cover - quantization package not installed
    MIN_RANGE_WIDTH = 1e-5


# --------------------------------------------------------------------------- one entry
def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise QuantizationError(f"{where}: is_symmetric must be true/false, got {value!r}")


def _number(entry: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in entry or entry[key] is None:
        return None
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QuantizationError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Encoding:
    """One channel's integer encoding, normalised to npuc's terms."""

    bits: int
    signed: bool
    scale: float
    zero_point: int


def parse_entry(entry: Mapping[str, Any], where: str) -> Encoding | DType:
    """One AIMET entry -> Encoding (integer) or DType (a float marker)."""
    if not isinstance(entry, Mapping):
        raise QuantizationError(f"{where}: an encoding must be an object, got {type(entry).__name__}")
    bits = entry.get("bitwidth")
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise QuantizationError(f"{where}: 'bitwidth' must be an integer, got {bits!r}")
    kind = str(entry.get("dtype", "int")).lower()
    if kind == "float":
        if bits not in (16, 32):
            raise QuantizationError(f"{where}: float encodings have bitwidth 16 or 32, got {bits}")
        return DType.FLOAT16 if bits == 16 else DType.FLOAT32
    if kind != "int":
        raise QuantizationError(f"{where}: 'dtype' must be 'int' or 'float', got {entry.get('dtype')!r}")
    if bits not in INT_BITWIDTHS:
        raise QuantizationError(f"{where}: integer bitwidth must be one of {INT_BITWIDTHS}, got {bits}")
    levels = (1 << bits) - 1
    half = 1 << (bits - 1)
    symmetric = _as_bool(entry["is_symmetric"], where) if "is_symmetric" in entry else None
    rmin, rmax = _number(entry, "min", where), _number(entry, "max", where)
    scale, offset = _number(entry, "scale", where), _number(entry, "offset", where)

    if scale is None or offset is None:
        if rmin is None or rmax is None:
            raise QuantizationError(f"{where}: needs 'scale' and 'offset', or 'min' and 'max' to derive them")
        if rmin > rmax:
            raise QuantizationError(f"{where}: min {rmin} > max {rmax}")
        lo, hi = min(rmin, 0.0), max(rmax, 0.0)
        if hi - lo < MIN_RANGE_WIDTH:
            hi = lo + MIN_RANGE_WIDTH
        if scale is None:
            scale = max(-lo, hi) / (half - 1) if symmetric else (hi - lo) / levels
        if offset is None:
            offset = float(-half) if symmetric else float(np.rint(lo / scale))
    elif rmin is not None and abs(rmin - scale * offset) > scale:
        log.warning("%s: min %g disagrees with scale*offset %g; scale and offset are used", where, rmin, scale * offset)
    if not (scale > 0.0):
        raise QuantizationError(f"{where}: scale must be > 0, got {scale}")
    if offset != int(offset) or not -levels <= offset <= 0:
        raise QuantizationError(f"{where}: offset must be an integer in [{-levels}, 0], got {offset}")
    zp_unsigned = -int(offset)

    signed_hint = entry.get("signed")
    if signed_hint is not None:
        signed = _as_bool(signed_hint, where)
    elif symmetric is None:
        signed = zp_unsigned == half
    else:
        signed = symmetric and zp_unsigned == half
    if bits == 32 and not signed:
        raise QuantizationError(f"{where}: 32-bit encodings must be symmetric (signed, offset {-half})")
    zero_point = zp_unsigned - half if signed else zp_unsigned
    return Encoding(bits, signed, float(scale), zero_point)


def encoding_entry(scale: float, zero_point: int, bits: int, signed: bool) -> dict[str, Any]:
    """npuc's (scale, zero point, bits, signedness) -> one AIMET entry (exactly invertible by parse_entry)."""
    half = 1 << (bits - 1)
    offset = -(zero_point + half) if signed else -zero_point
    entry: dict[str, Any] = {
        "bitwidth": bits,
        "dtype": "int",
        "is_symmetric": "True" if signed and zero_point == 0 else "False",
        "min": scale * offset,
        "max": scale * (offset + (1 << bits) - 1),
        "offset": offset,
        "scale": scale,
    }
    if signed and zero_point != 0:
        entry["signed"] = True
    return entry


# --------------------------------------------------------------------------- QuantParams
def output_channel_axis(graph: Graph, tensor: Tensor) -> int | None:
    """The axis per-channel encodings of a constant run along: its consumer's output channels."""
    for op, port in graph.consumers(tensor):
        if port == 1 and op.kind in ("Conv", "Gemm"):
            return 0
        if port == 1 and op.kind == "ConvTranspose":
            return 1
        if port == 1 and op.kind == "MatMul":
            return tensor.rank - 1
        if port == 2 and op.kind in ("Conv", "Gemm", "ConvTranspose"):
            return 0
    return None


def to_quant_params(encodings: list[Encoding], axis: int | None, where: str) -> QuantParams:
    """Entries of one tensor -> QuantParams (per tensor for one entry, per channel along `axis` otherwise)."""
    kinds = {(e.bits, e.signed) for e in encodings}
    if len(kinds) != 1:
        raise QuantizationError(f"{where}: channels mix bit widths/signedness {sorted(kinds)}")
    bits, signed = kinds.pop()
    try:
        if len(encodings) == 1 and axis is None:
            return QuantParams.per_tensor(encodings[0].scale, encodings[0].zero_point, bits, signed)
        return QuantParams.per_channel([e.scale for e in encodings], [e.zero_point for e in encodings],
                                       axis if axis is not None else 0, bits, signed)
    except ValueError as exc:
        raise QuantizationError(f"{where}: {exc}") from None


def to_entries(qp: QuantParams) -> list[dict[str, Any]]:
    """QuantParams -> AIMET entries (one per channel)."""
    return [encoding_entry(s, z, qp.bits, qp.signed) for s, z in zip(qp.scale, qp.zero_point)]


# --------------------------------------------------------------------------- files
def read_encodings(source: str | Path | Mapping[str, Any]) -> dict[str, dict[str, list]]:
    """Load and shape-check an encodings file (or an already parsed dict).

    Returns {'activation_encodings': {...}, 'param_encodings': {...}} with
    every value a list of entries (a single entry object is accepted as a list of one).
    """
    where = str(source) if not isinstance(source, Mapping) else "encodings"
    if isinstance(source, Mapping):
        data: Any = source
    else:
        try:
            data = json.loads(Path(source).read_text())
        except FileNotFoundError:
            raise QuantizationError(f"quantization overrides file '{source}' does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise QuantizationError(f"cannot read quantization overrides '{source}': {exc}") from None
        except json.JSONDecodeError as exc:
            raise QuantizationError(f"quantization overrides '{source}' is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping) or not any(k in data for k in SECTIONS):
        raise QuantizationError(f"'{where}' has neither 'activation_encodings' nor 'param_encodings'")
    out: dict[str, dict[str, list]] = {}
    for section in SECTIONS:
        block = data.get(section) or {}
        if not isinstance(block, Mapping):
            raise QuantizationError(f"'{where}': '{section}' must map tensor names to encodings")
        out[section] = {}
        for name, entries in block.items():
            entries = [entries] if isinstance(entries, Mapping) else entries
            if not isinstance(entries, list) or not entries:
                raise QuantizationError(f"'{where}': {section}['{name}'] must be a non-empty list of encodings")
            out[section][str(name)] = entries
    return out


def _nearest(name: str, graph: Graph) -> str:
    close = difflib.get_close_matches(name, [t.name for t in graph.tensors()], n=3, cutoff=0.5)
    return f" (nearest: {', '.join(repr(c) for c in close)})" if close else ""


def apply_encodings(graph: Graph, source: str | Path | Mapping[str, Any]) -> dict[str, int]:
    """Import encodings as fixed encodings on `graph`'s tensors.

    Every tensor named must exist; unknown names are all reported in one
    QuantizationError with the nearest tensor names. Returns counts
    {'activations': n, 'params': m, 'float': k}.
    """
    data = read_encodings(source)
    where_file = str(source) if not isinstance(source, Mapping) else "encodings"
    unknown = [name for section in SECTIONS for name in data[section] if not graph.has_tensor(name)]
    if unknown:
        lines = [f"'{n}'{_nearest(n, graph)}" for n in unknown]
        raise QuantizationError(
            f"quantization overrides '{where_file}' name {len(unknown)} tensor(s) not in the model: " + "; ".join(lines))
    counts = {"activations": 0, "params": 0, "float": 0}
    for section in SECTIONS:
        for name, entries in data[section].items():
            tensor = graph.tensor(name)
            where = f"'{where_file}' {section}['{name}']"
            parsed = [parse_entry(e, f"{where}[{i}]") for i, e in enumerate(entries)]
            if any(isinstance(p, DType) for p in parsed):
                if len(parsed) != 1:
                    raise QuantizationError(f"{where}: a float encoding has exactly one entry")
                tensor.meta[FIXED_DTYPE] = parsed[0]
                tensor.meta.pop(FIXED_QUANT, None)
                counts["float"] += 1
                continue
            axis = _axis_for(graph, tensor, len(parsed), where)
            tensor.meta[FIXED_QUANT] = to_quant_params(parsed, axis, where)  # type: ignore[arg-type]
            tensor.meta.pop(FIXED_DTYPE, None)
            counts["params" if tensor.is_const else "activations"] += 1
    log.info("quantization overrides %s: %s", where_file, counts)
    return counts


def _axis_for(graph: Graph, tensor: Tensor, n: int, where: str) -> int | None:
    if n == 1:
        return None
    if not tensor.is_const:
        raise QuantizationError(f"{where}: {n} entries, but activation '{tensor.name}' takes one (per-tensor) encoding")
    axis = output_channel_axis(graph, tensor)
    if axis is None:
        sized = [i for i, d in enumerate(tensor.shape) if d == n]
        if len(sized) != 1:
            raise QuantizationError(
                f"{where}: {n} per-channel entries but no single axis of {tensor.shape} has {n} channels")
        axis = sized[0]
    if tensor.shape[axis] != n:
        raise QuantizationError(
            f"{where}: {n} per-channel entries, but '{tensor.name}' {tensor.shape} has {tensor.shape[axis]} "
            f"output channels on axis {axis}")
    return axis


def export_encodings(graph: Graph, path: str | Path | None = None) -> dict[str, dict[str, list]]:
    """The chosen encodings (tensor.quant, and float16 tensors of a quantized graph) in AIMET format.

    Constants go to param_encodings, everything else to activation_encodings;
    names are sorted so the file is identical run to run. Written as JSON when
    `path` is given.
    """
    out: dict[str, dict[str, list]] = {"activation_encodings": {}, "param_encodings": {}}
    quantized = any(t.quant is not None for t in graph.tensors())
    for t in sorted(graph.tensors(), key=lambda t: t.name):
        section = "param_encodings" if t.is_const else "activation_encodings"
        if t.quant is not None:
            out[section][t.name] = to_entries(t.quant)
        elif quantized and t.dtype is DType.FLOAT16:
            out[section][t.name] = [{"bitwidth": 16, "dtype": "float"}]
    if path is not None:
        Path(path).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
        log.info("wrote %d activation and %d param encodings to %s",
                 len(out["activation_encodings"]), len(out["param_encodings"]), path)
    return out
