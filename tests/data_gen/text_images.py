"""Seeded generator of real-looking text images: text lines (PP-OCR cls/rec) and pages (PP-OCR det).

Everything is rendered with pillow from the DejaVu fonts bundled with
matplotlib (falling back to pillow's built-in font), so no data is downloaded
and a (seed, index) pair always gives the same image.

* `TextLineGenerator`: cropped text lines, 48 px high and at most 192 px wide
  (the PP-OCR direction classifier's 3x48x192 input), dark-on-light or
  light-on-dark, slight skew, blur and noise; a chosen fraction is rotated by
  180 degrees (label 1), the rest are upright (label 0).
* `TextPageGenerator`: document-like pages (several lines of text on a paper
  tone, some boxes) for the text detector, e.g. 640x640; `sample_with_boxes`
  also returns each line's ground-truth box.

Reuse from other tests or benchmarks by path::

    sys.path.insert(0, str(Path(__file__).parents[1] / "data_gen"))
    from text_images import TextLineGenerator, write_lines

Command line: ``python tests/data_gen/text_images.py OUT_DIR -n 64 --kind line --seed 0``.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

log = logging.getLogger(__name__)

WORDS = (
    "the quick brown fox jumps over lazy dog invoice total amount date paid receipt order number "
    "street city phone email name address customer item price quantity tax discount balance due "
    "model compiler neural network quantized accelerator kernel layer tensor weights bias scale "
    "open close north south east west river station market bridge garden school hospital library "
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday report summary page chapter section"
).split()
PUNCT = (",", ".", ":", ";", "-", "/", "#", "%", "$")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
)


@lru_cache(maxsize=None)
def font_paths() -> tuple[Path, ...]:
    """The bundled DejaVu fonts that exist (empty when matplotlib is unavailable)."""
    try:
        import matplotlib
    except ImportError:
        return ()
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return tuple(folder / f for f in FONT_FILES if (folder / f).is_file())


@lru_cache(maxsize=256)
def load_font(index: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Font number `index` (modulo the available ones) at `size` px; pillow's default font otherwise."""
    paths = font_paths()
    if paths:
        return ImageFont.truetype(str(paths[index % len(paths)]), size)
    return ImageFont.load_default(size)


def random_text(rng: np.random.Generator, min_words: int = 1, max_words: int = 4) -> str:
    """A short line of words, numbers and punctuation."""
    parts = []
    for _ in range(int(rng.integers(min_words, max_words + 1))):
        r = rng.random()
        if r < 0.15:
            parts.append(str(int(rng.integers(0, 100000))))
        elif r < 0.22:
            parts.append(f"{rng.integers(1, 999)}{PUNCT[int(rng.integers(len(PUNCT)))]}{rng.integers(0, 99):02d}")
        else:
            word = WORDS[int(rng.integers(len(WORDS)))]
            parts.append(word.capitalize() if rng.random() < 0.3 else word.upper() if rng.random() < 0.1 else word)
    return " ".join(parts)


def _colors(rng: np.random.Generator) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(background, ink) with good contrast: mostly dark ink on a light paper tone."""
    light = tuple(int(v) for v in rng.integers(190, 256, size=3))
    dark = tuple(int(v) for v in rng.integers(0, 70, size=3))
    return (dark, light) if rng.random() < 0.15 else (light, dark)


def _finish(img: Image.Image, rng: np.random.Generator, noise: float) -> Image.Image:
    """Slight blur and sensor noise, as in photographed text."""
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.2, 0.9))))
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0.0, noise, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


@dataclass(frozen=True)
class TextLine:
    """One rendered line: the image, its text and whether it is upside down (cls label 1)."""

    image: Image.Image
    text: str
    rotated: bool

    @property
    def label(self) -> int:
        return int(self.rotated)


@dataclass(frozen=True)
class TextLineGenerator:
    """Text-line crops for the PP-OCR direction classifier (and recognizer)."""

    seed: int = 0
    height: int = 48
    max_width: int = 192
    rotate_fraction: float = 0.5
    noise: float = 4.0

    def sample(self, index: int) -> TextLine:
        """The line number `index` (deterministic for (seed, index))."""
        rng = np.random.default_rng([self.seed, index])
        text = random_text(rng)
        background, ink = _colors(rng)
        font_size = int(rng.integers(int(self.height * 0.55), int(self.height * 0.8) + 1))
        font = load_font(int(rng.integers(0, 64)), font_size)
        left, top, right, bottom = font.getbbox(text)
        margin_x = int(rng.integers(2, 10))
        canvas = Image.new("RGB", (right - left + 2 * margin_x, self.height), background)
        y = (self.height - (bottom - top)) // 2 - top + int(rng.integers(-2, 3))
        ImageDraw.Draw(canvas).text((margin_x - left, y), text, font=font, fill=ink)
        if rng.random() < 0.5:  # slight skew of a photographed line
            canvas = canvas.rotate(float(rng.uniform(-2.0, 2.0)), resample=Image.Resampling.BILINEAR,
                                   expand=False, fillcolor=background)
        ratio = canvas.width / canvas.height
        width = min(self.max_width, max(8, int(round(self.height * ratio))))
        if width != canvas.width:  # too long: keep the start of the line rather than squash it
            canvas = canvas.crop((0, 0, min(canvas.width, width), self.height)) if canvas.width > width \
                else canvas.resize((width, self.height), Image.Resampling.BILINEAR)
        rotated = bool(rng.random() < self.rotate_fraction)
        if rotated:
            canvas = canvas.rotate(180)
        return TextLine(_finish(canvas, rng, self.noise), text, rotated)

    def __iter__(self):
        i = 0
        while True:
            yield self.sample(i)
            i += 1


@dataclass(frozen=True)
class TextPageGenerator:
    """Document-like pages with several text lines, for the PP-OCR text detector."""

    seed: int = 0
    width: int = 640
    height: int = 640
    noise: float = 3.0

    def sample(self, index: int) -> Image.Image:
        return self.sample_with_boxes(index)[0]

    def sample_with_boxes(self, index: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
        """The page number `index` and the ground-truth box (x0, y0, x1, y1) of each text line on it.

        A box is the line's rendered text extent (pillow's textbbox) clipped to the page; lines
        that run off the right edge keep their visible part. Same image as `sample(index)`.
        """
        rng = np.random.default_rng([self.seed, 1_000_003, index])
        background, ink = _colors(rng)
        page = Image.new("RGB", (self.width, self.height), background)
        draw = ImageDraw.Draw(page)
        boxes: list[tuple[int, int, int, int]] = []
        y = int(rng.integers(10, 40))
        while y < self.height - 30:
            size = int(rng.integers(14, 40))
            font = load_font(int(rng.integers(0, 64)), size)
            x = int(rng.integers(10, max(11, self.width // 4)))
            text = random_text(rng, 2, 8)
            draw.text((x, y), text, font=font, fill=ink)
            box = draw.textbbox((x, y), text, font=font)
            clipped = (max(0, box[0]), max(0, box[1]), min(self.width, box[2]), min(self.height, box[3]))
            if clipped[2] - clipped[0] > 2 and clipped[3] - clipped[1] > 2:
                boxes.append(clipped)
            if rng.random() < 0.1:  # a ruled box around some lines (forms, tables)
                draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), outline=ink, width=1)
            y += int(size * rng.uniform(1.3, 2.4))
        return _finish(page, rng, self.noise), boxes


def write_lines(folder: str | Path, count: int, seed: int = 0, rotate_fraction: float = 0.5) -> list[Path]:
    """Write `count` line images as PNG plus labels.json ({file: {"text", "label"}}); returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    gen = TextLineGenerator(seed=seed, rotate_fraction=rotate_fraction)
    paths, labels = [], {}
    for i in range(count):
        line = gen.sample(i)
        path = out / f"line_{i:05d}.png"
        line.image.save(path)
        labels[path.name] = {"text": line.text, "label": line.label}
        paths.append(path)
    (out / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True))
    return paths


def write_pages(folder: str | Path, count: int, seed: int = 0, size: tuple[int, int] = (640, 640),
                fmt: str = "jpg") -> list[Path]:
    """Write `count` page images (JPEG by default); returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    gen = TextPageGenerator(seed=seed, width=size[0], height=size[1])
    paths = []
    for i in range(count):
        path = out / f"page_{i:05d}.{fmt}"
        gen.sample(i).save(path, quality=90) if fmt == "jpg" else gen.sample(i).save(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("-n", "--count", type=int, default=64)
    parser.add_argument("--kind", choices=("line", "page"), default="line")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rotate-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.kind == "line":
        paths = write_lines(args.out, args.count, args.seed, args.rotate_fraction)
    else:
        paths = write_pages(args.out, args.count, args.seed)
    log.info("wrote %d %s images to %s", len(paths), args.kind, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
