"""Common shape of every range observer: streaming, mergeable, per tensor or per channel."""
from __future__ import annotations

import abc
import copy

import numpy as np

from npuc.errors import QuantizationError

Range = tuple[float, float] | tuple[np.ndarray, np.ndarray]


def as_rows(x: np.ndarray, axis: int | None, channels: int | None) -> np.ndarray:
    """View `x` as float64 rows: one row per tensor (axis None) or one per channel along `axis`."""
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise QuantizationError("observed data contains NaN or infinity")
    if axis is None:
        return arr.reshape(1, -1)
    if arr.ndim == 0 or not -arr.ndim <= axis < arr.ndim:
        raise QuantizationError(f"channel axis {axis} out of range for an array of shape {arr.shape}")
    if channels is not None and arr.shape[axis] != channels:
        raise QuantizationError(f"observer saw {channels} channels before, now {arr.shape[axis]} (axis {axis})")
    return np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)


def channel_view(x: np.ndarray, axis: int | None, channels: int | None) -> np.ndarray:
    """View `x` as (pre, rows, post) without converting it: rows are the channels along `axis`, or one row.

    The same checks as `as_rows` except the NaN/infinity one, which the observers
    get from their min/max reductions (NaN and infinities propagate into them).
    Copies only what is not C-contiguous (activations are).
    """
    arr = np.asarray(x)
    if axis is None:
        return np.ascontiguousarray(arr).reshape(1, 1, -1)
    if arr.ndim == 0 or not -arr.ndim <= axis < arr.ndim:
        raise QuantizationError(f"channel axis {axis} out of range for an array of shape {arr.shape}")
    if channels is not None and arr.shape[axis] != channels:
        raise QuantizationError(f"observer saw {channels} channels before, now {arr.shape[axis]} (axis {axis})")
    arr = np.ascontiguousarray(arr)
    axis %= arr.ndim
    return arr.reshape(int(np.prod(arr.shape[:axis])), arr.shape[axis], -1)


class Observer(abc.ABC):
    """Collects statistics of a tensor batch by batch; memory does not grow with the data.

    ``observe(a); observe(b)`` gives the same state as observing the concatenation,
    and as ``merge``-ing an observer of ``a`` with one of ``b``.
    """

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis
        self.channels: int | None = None

    @abc.abstractmethod
    def observe(self, x: np.ndarray) -> None:
        """Add a batch of values."""

    @abc.abstractmethod
    def merge(self, other: "Observer") -> "Observer":
        """Fold another observer of the same kind and configuration into this one; returns self."""

    @abc.abstractmethod
    def range(self, bits: int = 8, signed: bool = False, symmetric: bool = False) -> Range:
        """The chosen (min, max): floats per tensor, float64 arrays per channel."""

    @property
    @abc.abstractmethod
    def empty(self) -> bool:
        """True until data has been observed."""

    def copy(self) -> "Observer":
        """An independent deep copy."""
        return copy.deepcopy(self)

    def _check_mergeable(self, other: "Observer") -> None:
        if type(other) is not type(self) or other.axis != self.axis:
            raise QuantizationError(
                f"cannot merge {type(other).__name__}(axis={other.axis}) into {type(self).__name__}(axis={self.axis})")
        if self.channels is not None and other.channels is not None and self.channels != other.channels:
            raise QuantizationError(f"cannot merge observers of {self.channels} and {other.channels} channels")

    def _check_not_empty(self) -> None:
        if self.empty:
            raise QuantizationError(f"{type(self).__name__} has observed no data; run calibration first")

    def _shape_result(self, lo: np.ndarray, hi: np.ndarray) -> Range:
        if self.axis is None:
            return float(lo[0]), float(hi[0])
        return lo, hi
