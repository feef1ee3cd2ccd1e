"""JSON forms of the values stored in a binary's header (attributes, quantization parameters)."""
from __future__ import annotations

from typing import Any

import numpy as np

from npuc.ir.dtypes import DType
from npuc.ir.quant_params import QuantParams


def attr_to_json(value: Any) -> Any:
    """Op attribute -> JSON value. DTypes become {"dtype": name}; tuples become lists."""
    if isinstance(value, DType):
        return {"dtype": value.value}
    if isinstance(value, (list, tuple)):
        return [attr_to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [attr_to_json(v) for v in value.tolist()]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"attribute value {value!r} of type {type(value).__name__} cannot be stored in a binary")


def attr_from_json(value: Any) -> Any:
    """Inverse of attr_to_json (lists come back as tuples, like the IR's own attributes)."""
    if isinstance(value, dict):
        if set(value) != {"dtype"} or value["dtype"] not in {d.value for d in DType}:
            raise ValueError(f"bad attribute object {value!r}")
        return DType(value["dtype"])
    if isinstance(value, list):
        return tuple(attr_from_json(v) for v in value)
    return value


def quant_to_json(q: QuantParams | None) -> dict[str, Any] | None:
    if q is None:
        return None
    return {"scale": list(q.scale), "zero_point": list(q.zero_point), "bits": q.bits, "signed": q.signed,
            "axis": q.axis}


def quant_from_json(d: Any) -> QuantParams | None:
    if d is None:
        return None
    if not isinstance(d, dict) or set(d) != {"scale", "zero_point", "bits", "signed", "axis"}:
        raise ValueError(f"bad quantization record {d!r}")
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in d["scale"]):
        raise ValueError("scales must be numbers")
    if not all(isinstance(z, int) and not isinstance(z, bool) for z in d["zero_point"]):
        raise ValueError("zero points must be integers")
    if d["bits"] not in (4, 8, 16, 32) or not isinstance(d["signed"], bool):
        raise ValueError(f"bad bits/signed {d['bits']!r}/{d['signed']!r}")
    if d["axis"] is not None and (not isinstance(d["axis"], int) or isinstance(d["axis"], bool)):
        raise ValueError(f"bad axis {d['axis']!r}")
    return QuantParams(tuple(float(s) for s in d["scale"]), tuple(d["zero_point"]), d["bits"], d["signed"], d["axis"])
