"""Rendered text-line images for PP-OCR tests (no downloads: PIL's built-in font)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_WORDS = ("npuc", "quantize", "OCR", "text line", "2024", "invoice", "total: 42.50", "hello world",
          "Lorem ipsum", "NPU", "calibration", "int8", "shape", "model", "ABCDEF", "xyz 123")


def render_text_lines(n: int, seed: int = 0, height: int = 48, width: int = 192) -> list[np.ndarray]:
    """n images (1, 3, height, width) float32 in PP-OCR's normalisation ((x/255 - 0.5) / 0.5).

    Dark text on a light background; every fourth line is upside down (the cls model's job).
    """
    rng = np.random.default_rng(seed)
    try:
        font = ImageFont.load_default(size=int(height * 0.6))
    except TypeError:  # pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    out = []
    for i in range(n):
        text = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 4))))
        bg = int(rng.integers(180, 256))
        img = Image.new("RGB", (width, height), (bg, bg, bg))
        ink = tuple(int(v) for v in rng.integers(0, 80, size=3))
        ImageDraw.Draw(img).text((int(rng.integers(0, 20)), int(rng.integers(0, height // 4))), text, fill=ink, font=font)
        if i % 4 == 3:
            img = img.rotate(180)
        arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        arr = arr + rng.normal(0, 0.02, size=arr.shape).astype(np.float32)
        out.append(((arr - 0.5) / 0.5).astype(np.float32))
    return out
