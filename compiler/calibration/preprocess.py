"""Turn a decoded image into a model input: letterbox resize, channel order, layout, mean/std.

Calibration images are resized preserving their aspect ratio; the bands left
over are filled with a constant (letterbox), so an image is never distorted.
The arithmetic is `(pixel - mean[c]) / std[c]` in float32. When the model
script's `normalization(...)` has been folded into the model (see
`npuc.calibration.normalization`), the model takes raw pixels and the
preprocessing here must keep mean 0 and std 1.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from PIL import Image

from npuc.errors import CalibrationError
from npuc.ir.tensor import Tensor

log = logging.getLogger(__name__)

LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
ALIGNS = ("center", "topleft")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes one item (batch 1) of a model input.

    size: target (height, width); None keeps the image size.
    channel_order: RGB, BGR or GRAY (one channel).
    layout: NCHW or NHWC of the produced array.
    mean, std: per-channel (or one shared) values, applied as (x - mean) / std
      on pixels in 0..255, in the channel order given.
    letterbox: keep the aspect ratio and pad (True, the default) — False only
      when the images already have the target size (a mismatch is then an error,
      never a silent stretch).
    pad_value: raw pixel value (0..255) of the letterbox bands.
    align: 'center' (bands on both sides) or 'topleft' (bands right/bottom,
      as PaddleOCR pads text lines).
    """

    size: tuple[int, int] | None = None
    channel_order: str = "RGB"
    layout: str = "NCHW"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    letterbox: bool = True
    pad_value: float = 0.0
    align: str = "center"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_order", self.channel_order.upper())
        object.__setattr__(self, "layout", self.layout.upper())
        object.__setattr__(self, "mean", tuple(float(m) for m in np.atleast_1d(self.mean)))
        object.__setattr__(self, "std", tuple(float(s) for s in np.atleast_1d(self.std)))
        if self.size is not None:
            object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
            if min(self.size) <= 0:
                raise CalibrationError(f"preprocessing size must be positive, got {self.size}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise CalibrationError(f"channel order must be one of {CHANNEL_ORDERS}, got '{self.channel_order}'")
        if self.layout not in LAYOUTS:
            raise CalibrationError(f"layout must be one of {LAYOUTS}, got '{self.layout}'")
        if self.align not in ALIGNS:
            raise CalibrationError(f"letterbox alignment must be one of {ALIGNS}, got '{self.align}'")
        if len(self.mean) not in (1, self.channels) or len(self.std) not in (1, self.channels):
            raise CalibrationError(
                f"normalization has {len(self.mean)} means and {len(self.std)} stds for "
                f"{self.channels} channel(s) ({self.channel_order})")
        if any(s == 0.0 or not np.isfinite(s) for s in self.std):
            raise CalibrationError(f"normalization std must be finite and non-zero, got {list(self.std)}")

    # ------------------------------------------------------------ properties
    @property
    def channels(self) -> int:
        return 1 if self.channel_order == "GRAY" else 3

    @property
    def is_identity_normalization(self) -> bool:
        return all(m == 0.0 for m in self.mean) and all(s == 1.0 for s in self.std)

    def input_shape(self) -> tuple[int, ...] | None:
        """Shape (batch 1) of what `apply` produces, when the size is known."""
        if self.size is None:
            return None
        h, w = self.size
        return (1, self.channels, h, w) if self.layout == "NCHW" else (1, h, w, self.channels)

    # -------------------------------------------------------------- factory
    @classmethod
    def for_input(cls, tensor: Tensor, **overrides) -> "Preprocessing":
        """Preprocessing matching a 4-D image input: size, layout and channels from its shape.

        The layout comes from `tensor.layout` when set, else from where the
        1- or 3-sized channel dimension is (NCHW preferred). Keyword overrides
        replace any field (e.g. mean/std, channel_order='BGR').
        """
        shape = tensor.shape
        if len(shape) != 4:
            raise CalibrationError(
                f"model input '{tensor.name}' has shape {shape}; images need a 4-D input "
                f"(N,C,H,W or N,H,W,C) — give .npy/.npz arrays instead")
        layout = (tensor.layout or "").upper()
        if layout not in LAYOUTS:
            if shape[1] in (1, 3):
                layout = "NCHW"
            elif shape[3] in (1, 3):
                layout = "NHWC"
            else:
                raise CalibrationError(
                    f"model input '{tensor.name}' {shape} has no 1- or 3-channel dimension: "
                    f"images cannot feed it (give .npy/.npz arrays)")
        channels, h, w = (shape[1], shape[2], shape[3]) if layout == "NCHW" else (shape[3], shape[1], shape[2])
        if channels not in (1, 3):
            raise CalibrationError(
                f"model input '{tensor.name}' {shape} ({layout}) has {channels} channels; images give 1 or 3")
        fields = {"size": (h, w), "layout": layout}
        if channels == 1:
            fields["channel_order"] = "GRAY"
        fields.update(overrides)
        pre = cls(**fields)
        if pre.channels != channels:
            raise CalibrationError(
                f"preprocessing channel order {pre.channel_order} gives {pre.channels} channel(s) but model "
                f"input '{tensor.name}' {shape} has {channels}")
        return pre

    def with_(self, **changes) -> "Preprocessing":
        """A copy with some fields replaced."""
        return replace(self, **changes)

    # --------------------------------------------------------------- applying
    def letterbox_geometry(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(new_w, new_h, left, top): the resized image size and where it is pasted."""
        th, tw = self.size  # type: ignore[misc]
        ratio = min(tw / width, th / height)
        nw = max(1, min(tw, int(round(width * ratio))))
        nh = max(1, min(th, int(round(height * ratio))))
        if self.align == "center":
            return nw, nh, (tw - nw) // 2, (th - nh) // 2
        return nw, nh, 0, 0

    def apply(self, image: Image.Image, name: str = "<image>") -> np.ndarray:
        """One decoded image -> float32 array of `input_shape()` (batch 1)."""
        mode = "L" if self.channel_order == "GRAY" else "RGB"
        img = image.convert(mode) if image.mode != mode else image
        if self.size is not None and (img.height, img.width) != self.size:
            if not self.letterbox:
                raise CalibrationError(
                    f"calibration image '{name}' is {img.width}x{img.height}, the model input is "
                    f"{self.size[1]}x{self.size[0]}, and letterboxing is disabled (images are never stretched)")
            img = self._letterbox(img)
        pixels = np.asarray(img, dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self.channel_order == "BGR":
            pixels = pixels[:, :, ::-1]
        mean = np.asarray(self.mean, dtype=np.float32)
        inv_std = (1.0 / np.asarray(self.std, dtype=np.float64)).astype(np.float32)
        if not self.is_identity_normalization:
            pixels = (pixels - mean) * inv_std
        if self.layout == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels[None], dtype=np.float32)

    def _letterbox(self, img: Image.Image) -> Image.Image:
        nw, nh, left, top = self.letterbox_geometry(img.width, img.height)
        resized = img.resize((nw, nh), Image.Resampling.BILINEAR)
        th, tw = self.size  # type: ignore[misc]
        fill = int(round(self.pad_value))
        canvas = Image.new(img.mode, (tw, th), fill if img.mode == "L" else (fill, fill, fill))
        canvas.paste(resized, (left, top))
        return canvas


def parse_channel_order(text: str | Sequence[str]) -> str:
    """Accept 'rgb', 'BGR', 'gray'/'grey' or a list like ['B','G','R']."""
    if not isinstance(text, str):
        text = "".join(text)
    t = text.strip().upper()
    return "GRAY" if t in ("GREY", "L", "GRAYSCALE") else t
