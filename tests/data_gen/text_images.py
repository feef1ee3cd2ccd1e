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
* `HardTextPageGenerator`: harder, photo-like pages (small text, gradient /
  coloured / dark backgrounds, low contrast, distractors, blur, noise, JPEG)
  with the same `sample` / `sample_with_boxes` interface; the PP-OCR det
  accuracy benchmark (benchmarks/accuracy) evaluates on these.

Reuse from other tests or benchmarks by path::

    sys.path.insert(0, str(Path(__file__).parents[1] / "data_gen"))
    from text_images import TextLineGenerator, write_lines

Command line: ``python tests/data_gen/text_images.py OUT_DIR -n 64 --kind line --seed 0``.
"""
from __future__ import annotations

import argparse
import io
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


def _luminance(rgb) -> float:
    r, g, b = (float(v) for v in rgb)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """HxWx3 float32: a paper / coloured / dark tone with a linear gradient and low-frequency texture."""
    kind = rng.random()
    if kind < 0.55:  # paper
        base = rng.uniform(170, 255, size=3)
    elif kind < 0.85:  # coloured (signs, packaging, screens)
        base = rng.uniform(40, 255, size=3)
    else:  # dark
        base = rng.uniform(0, 80, size=3)
    other = np.clip(base + rng.uniform(-70, 70, size=3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    arr = base[None, None, :] * (1 - t[..., None]) + other[None, None, :] * t[..., None]
    amplitude = rng.uniform(0, 28)
    if amplitude > 0:  # blotchy texture: coarse noise upsampled
        cells = int(rng.integers(4, 24))
        coarse = rng.normal(0, 1, size=(cells, cells, 3)).astype(np.float32)
        coarse = (coarse - coarse.min()) / max(float(coarse.max() - coarse.min()), 1e-6) * 255
        tex = np.asarray(Image.fromarray(coarse.astype(np.uint8), "RGB").resize(
            (width, height), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0 - 0.5
        arr = arr + amplitude * 2 * tex
    return np.clip(arr, 0, 255).astype(np.float32)


def _ink_for(rng: np.random.Generator, region: np.ndarray) -> tuple[int, int, int]:
    """An ink colour with a random (sometimes low) contrast against the mean colour of `region`."""
    mean = region.reshape(-1, 3).mean(axis=0)
    lum = _luminance(mean)
    contrast = rng.uniform(45, 220)
    direction = -1.0 if (lum > 128 if rng.random() < 0.9 else lum <= 128) else 1.0
    target = lum + direction * contrast
    if not 0 <= target <= 255:  # not reachable that way: go the other way
        target = lum - direction * contrast
    target = float(np.clip(target, 0, 255))
    tint = rng.uniform(-40, 40, size=3)
    ink = np.clip(target + tint - (0.299 * tint[0] + 0.587 * tint[1] + 0.114 * tint[2]), 0, 255)
    return tuple(int(v) for v in ink)


def _degrade(arr: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Uneven lighting, resolution loss, blur, sensor noise and JPEG compression, each at a random strength."""
    h, w, _ = arr.shape
    if rng.random() < 0.5:  # uneven illumination: a smooth multiplicative shade
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / np.hypot(h, w)
        arr = arr * (1.0 - rng.uniform(0.1, 0.45) * dist)[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:  # resolution loss (a smaller camera image scaled up)
        factor = rng.uniform(0.5, 0.85)
        img = img.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.Resampling.BILINEAR)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.5))))
    out = np.asarray(img, dtype=np.float32)
    out = out + rng.normal(0.0, rng.uniform(2.0, 14.0), size=out.shape).astype(np.float32)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.7:
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=int(rng.integers(20, 86)))
        buffer.seek(0)
        img = Image.open(buffer).convert("RGB")
    return img


def _fit_text(rng: np.random.Generator, font, max_width: int, min_words: int, max_words: int) -> str:
    """A random line shortened word by word until it is at most `max_width` px wide ('' if nothing fits)."""
    words = random_text(rng, min_words, max_words).split(" ")
    while words:
        left, _, right, _ = font.getbbox(" ".join(words))
        if right - left <= max_width:
            return " ".join(words)
        words.pop()
    return ""


@dataclass(frozen=True)
class HardTextPageGenerator:
    """Harder, photo-like pages for the PP-OCR text detector, with honest axis-aligned line boxes.

    Compared with `TextPageGenerator`: font sizes from 9 to 48 px (many small lines), gradient,
    coloured, dark and blotchy backgrounds, coloured panels, ink of random (sometimes low)
    contrast, one or two text columns, ruled lines and filled shapes as distractors, then
    uneven lighting, resolution loss, blur, gaussian noise and JPEG compression at random
    strengths. Text is never rotated (the ground truth stays axis-aligned) and never runs off
    the page. A box is the line's rendered text extent (pillow's textbbox).
    """

    seed: int = 0
    width: int = 640
    height: int = 640

    def sample(self, index: int) -> Image.Image:
        return self.sample_with_boxes(index)[0]

    def sample_with_boxes(self, index: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
        """The page number `index` and the ground-truth box (x0, y0, x1, y1) of each text line on it."""
        rng = np.random.default_rng([self.seed, 2_000_029, index])
        w, h = self.width, self.height
        arr = _background(rng, w, h)
        for _ in range(int(rng.integers(0, 3))):  # coloured panels (labels, banners)
            x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            x1, y1 = int(rng.integers(x0 + 40, w + 1)), int(rng.integers(y0 + 30, min(h, y0 + 260) + 1))
            arr[y0:y1, x0:x1] = rng.uniform(0, 255, size=3)
        page = Image.fromarray(arr.astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(page)
        boxes: list[tuple[int, int, int, int]] = []
        y = int(rng.integers(4, 30))
        while True:
            r = rng.random()
            size = int(rng.integers(9, 16) if r < 0.4 else rng.integers(16, 28) if r < 0.85 else rng.integers(28, 49))
            if y + 1.3 * size > h - 4:
                break
            if rng.random() < 0.06:  # a filled shape instead of text (logo, bullet block, photo)
                x0 = int(rng.integers(0, w - 60))
                shape = (x0, y, x0 + int(rng.integers(20, 200)), y + int(size * rng.uniform(1.0, 2.5)))
                fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
                (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(shape, fill=fill)
                y = shape[3] + int(size * rng.uniform(0.4, 1.0))
                continue
            font = load_font(int(rng.integers(0, 64)), size)
            columns = 2 if rng.random() < 0.3 else 1
            x = int(rng.integers(4, w // 5))
            bottom = y + size
            for c in range(columns):
                right_limit = (w // 2 - 2 * size) if columns == 2 and c == 0 else w - 4
                if right_limit - x < 3 * size:
                    break
                text = _fit_text(rng, font, right_limit - x, 1, 7)
                if not text:
                    break
                box = draw.textbbox((x, y), text, font=font)
                region = np.asarray(page, dtype=np.float32)[max(0, box[1]):max(box[1] + 1, box[3]),
                                                             max(0, box[0]):max(box[0] + 1, box[2])]
                draw.text((x, y), text, font=font, fill=_ink_for(rng, region))
                clipped = (max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3]))
                if clipped[2] - clipped[0] > 2 and clipped[3] - clipped[1] > 2:
                    boxes.append(clipped)
                bottom = max(bottom, box[3])
                x = max(box[2] + 3 * size, w // 2 + int(rng.integers(0, w // 6)))
            if rng.random() < 0.12:  # a rule under the line (forms, tables)
                ink = tuple(int(v) for v in rng.integers(0, 256, size=3))
                ry = bottom + max(2, size // 4)
                draw.line((int(rng.integers(0, w // 4)), ry, int(rng.integers(w // 2, w)), ry), fill=ink,
                          width=int(rng.integers(1, 3)))
            y += int(size * rng.uniform(1.3, 2.3))
        return _degrade(np.asarray(page, dtype=np.float32), rng), boxes


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
