"""A calibration set: images or arrays named by a folder, a glob or a list, read lazily.

Nothing is loaded when the set is opened except file headers (to count items
and check shapes early, naming the offending file). Items are decoded one
batch at a time while iterating, so memory does not grow with the set size.

Item sources:
* images (.jpg/.jpeg/.png/.bmp), decoded with pillow and turned into the
  model input by a `Preprocessing` (letterbox resize, channel order, layout,
  mean/std); only for a model with one 4-D image input;
* .npy arrays: model-ready tensors, fed as they are (cast to float32); the
  shape is the input shape (batch 1), the input shape without the batch
  dimension, or a stack (N, ...) giving N items;
* .npz archives: for a one-input model every array in it follows the .npy
  rule; for a several-input model the archive has one array per input name.
"""
from __future__ import annotations

import glob
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from npuc.calibration.preprocess import Preprocessing
from npuc.errors import CalibrationError
from npuc.ir.graph import Graph

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
ARRAY_SUFFIXES = (".npy", ".npz")
SUFFIXES = IMAGE_SUFFIXES + ARRAY_SUFFIXES
_GLOB_CHARS = set("*?[")

Feeds = dict[str, np.ndarray]
Spec = str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class InputSpec:
    """A model input the set feeds: name and shape at batch 1."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ItemRef:
    """Where one item lives: a file and, for stacked arrays, its index (and npz key)."""

    path: Path
    index: int | None = None
    key: str | None = None

    def label(self) -> str:
        where = str(self.path)
        if self.key is not None:
            where += f"[{self.key}]"
        if self.index is not None:
            where += f"[{self.index}]"
        return where


# --------------------------------------------------------------------------- files
def resolve_files(spec: Spec) -> list[Path]:
    """The files a spec names, in a deterministic (sorted) order.

    A folder gives every image/array file under it (recursively, hidden
    files skipped); a pattern with * ? [ is a glob ('**' recurses); a file is
    itself; a list concatenates its elements in order.
    """
    if isinstance(spec, (list, tuple)):
        files: list[Path] = []
        for part in spec:
            files.extend(resolve_files(part))
        return files
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise CalibrationError(
                f"calibration folder '{text}' has no images ({', '.join(IMAGE_SUFFIXES)}) or arrays (.npy/.npz)")
        return found
    if _GLOB_CHARS & set(text):
        matched = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        found = [p for p in matched if p.is_file() and p.suffix.lower() in SUFFIXES]
        if not found:
            extra = f" ({len(matched)} matches, none an image or array file)" if matched else ""
            raise CalibrationError(f"calibration set '{text}' matched no files{extra}")
        return found
    if not path.exists():
        raise CalibrationError(f"calibration file or folder '{text}' does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise CalibrationError(
            f"calibration file '{text}' is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor an array (.npy/.npz)")
    return [path]


def _npz_headers(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of every array in an .npz, read from the headers only."""
    out = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, _ = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, _ = np.lib.format.read_array_header_2_0(f)
            out.append((info.filename[: -len(".npy")], tuple(shape)))
    return out


def _items_in_array(path: Path, shape: tuple[int, ...], inp: InputSpec, key: str | None) -> list[ItemRef]:
    """Item references of one array given its shape, or a clear mismatch error."""
    where = f"'{path}'" + (f" array '{key}'" if key else "")
    item_shape = inp.shape[1:]
    if shape == inp.shape or shape == item_shape:
        return [ItemRef(path, None, key)]
    if len(shape) == len(inp.shape) and shape[1:] == item_shape:
        return [ItemRef(path, i, key) for i in range(shape[0])]
    raise CalibrationError(
        f"calibration array {where} has shape {shape}, which does not fit model input '{inp.name}' "
        f"{inp.shape} (expected {inp.shape}, {item_shape} or (N, {', '.join(map(str, item_shape))}))")


# --------------------------------------------------------------------------- set
class CalibrationSet:
    """An ordered, lazily read collection of calibration items for one model.

    Iterating yields feeds (`{input name: float32 array at batch 1}`);
    `batches(n)` yields feeds stacked n at a time. Only one decoded batch (and
    at most one open .npz archive) is in memory at a time.
    """

    def __init__(
        self,
        items: Sequence[ItemRef],
        inputs: Sequence[InputSpec],
        preprocessing: Preprocessing | None = None,
        source: str = "",
    ) -> None:
        self.items = list(items)
        self.inputs = list(inputs)
        self.preprocessing = preprocessing
        self.source = source

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"CalibrationSet({self.source!r}, {len(self.items)} items)"

    # ---------------------------------------------------------------- subsets
    def select(self, count: int | None, seed: int | None = 0) -> "CalibrationSet":
        """The `count` items to calibrate on.

        With a seed the items are a seeded random sample (kept in set order, so
        results do not depend on dictionary or file-system order); without one,
        the first `count`. Asking for more items than the set has is an error.
        """
        if count is None or count == len(self.items):
            return self
        if count <= 0:
            raise CalibrationError(f"calibset_size must be positive, got {count}")
        if count > len(self.items):
            raise CalibrationError(
                f"calibration set '{self.source}' has {len(self.items)} item(s), fewer than "
                f"calibset_size={count}; add data or lower calibset_size")
        if seed is None:
            chosen = list(range(count))
        else:
            chosen = sorted(np.random.default_rng(seed).choice(len(self.items), size=count, replace=False).tolist())
        return CalibrationSet([self.items[i] for i in chosen], self.inputs, self.preprocessing, self.source)

    # -------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[Feeds]:
        for _, feeds in self.iter_items():
            yield feeds

    def iter_items(self) -> Iterator[tuple[ItemRef, Feeds]]:
        """(where the item comes from, its feeds), one item at a time, in set order."""
        cache = _NpzCache()
        try:
            for ref in self.items:
                yield ref, self._load(ref, cache)
        finally:
            cache.close()

    def batches(self, batch_size: int) -> Iterator[Feeds]:
        """Feeds of up to `batch_size` items stacked along the batch axis."""
        if batch_size <= 0:
            raise CalibrationError(f"batch_size must be positive, got {batch_size}")
        pending: list[Feeds] = []
        for feeds in self:
            pending.append(feeds)
            if len(pending) == batch_size:
                yield _stack(pending)
                pending = []
        if pending:
            yield _stack(pending)

    def _load(self, ref: ItemRef, cache: "_NpzCache") -> Feeds:
        suffix = ref.path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return {self.inputs[0].name: self._load_image(ref.path)}
        if suffix == ".npy":
            try:
                arr = np.load(ref.path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise CalibrationError(f"cannot read calibration array '{ref.path}': {exc}") from None
            return {self.inputs[0].name: self._fit(arr, ref)}
        archive = cache.open(ref.path)
        if len(self.inputs) == 1:
            return {self.inputs[0].name: self._fit(archive[ref.key], ref)}
        return {inp.name: self._fit(archive[inp.name], ref, inp) for inp in self.inputs}

    def _load_image(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                img.load()
                return self.preprocessing.apply(img, str(path))  # type: ignore[union-attr]
        except CalibrationError:
            raise
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise CalibrationError(f"cannot read calibration image '{path}': {exc}") from None

    def _fit(self, arr: np.ndarray, ref: ItemRef, inp: InputSpec | None = None) -> np.ndarray:
        inp = inp or self.inputs[0]
        if ref.index is not None:
            arr = arr[ref.index]
        try:
            out = np.array(arr, dtype=np.float32).reshape(inp.shape)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                f"calibration array '{ref.label()}' cannot feed model input '{inp.name}' {inp.shape}: {exc}") from None
        if not np.isfinite(out).all():
            raise CalibrationError(f"calibration array '{ref.label()}' has NaN or infinite values")
        return out


class _NpzCache:
    """Keeps the most recently used .npz archive open (items of one file come together)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.arrays: dict[str, np.ndarray] = {}

    def open(self, path: Path) -> dict[str, np.ndarray]:
        if path != self.path:
            self.close()
            try:
                with np.load(path, allow_pickle=False) as npz:
                    self.arrays = {k: npz[k] for k in npz.files}
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise CalibrationError(f"cannot read calibration archive '{path}': {exc}") from None
            self.path = path
        return self.arrays

    def close(self) -> None:
        self.path, self.arrays = None, {}


def _stack(feeds: list[Feeds]) -> Feeds:
    return {name: np.concatenate([f[name] for f in feeds], axis=0) for name in feeds[0]}


# --------------------------------------------------------------------------- opening
def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018  (header parsed by open)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CalibrationError(f"cannot read calibration image '{path}': {exc}") from None


def _index_file(path: Path, inputs: list[InputSpec]) -> list[ItemRef]:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        _check_image(path)
        return [ItemRef(path)]
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read calibration array '{path}': {exc}") from None
        return _items_in_array(path, tuple(arr.shape), inputs[0], None)
    try:
        headers = _npz_headers(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"cannot read calibration archive '{path}': {exc}") from None
    if not headers:
        raise CalibrationError(f"calibration archive '{path}' holds no arrays")
    if len(inputs) == 1:
        refs: list[ItemRef] = []
        for key, shape in headers:
            refs.extend(_items_in_array(path, shape, inputs[0], key))
        return refs
    shapes = dict(headers)
    missing = [inp.name for inp in inputs if inp.name not in shapes]
    if missing:
        raise CalibrationError(
            f"calibration archive '{path}' lacks arrays for model input(s) {missing} "
            f"(it has {sorted(shapes)}); a several-input model needs one array per input name")
    counts = {inp.name: _items_in_array(path, shapes[inp.name], inp, inp.name) for inp in inputs}
    sizes = {name: len(refs) for name, refs in counts.items()}
    if len(set(sizes.values())) != 1:
        raise CalibrationError(f"calibration archive '{path}' has different item counts per input: {sizes}")
    first = counts[inputs[0].name]
    return [ItemRef(path, ref.index, None) for ref in first]


def open_calibration_set(
    spec: Spec,
    graph: Graph,
    preprocessing: Preprocessing | None = None,
) -> CalibrationSet:
    """Open the calibration data named by `spec` for `graph`'s inputs.

    spec: a folder, a glob pattern, a file, or a list of these.
    preprocessing: how images become the input; None derives it from the
    model input (size, layout, channels; mean 0, std 1). A preprocessing
    without a size takes the model input's. Its output shape must equal the
    model input's, else the error names both.
    Raises CalibrationError for an empty set, an unreadable file (named), or
    data that does not fit the model input (both shapes named).
    """
    if not graph.inputs:
        raise CalibrationError(f"model '{graph.name}' has no inputs to calibrate")
    inputs = [InputSpec(t.name, tuple(t.shape)) for t in graph.inputs]
    files = resolve_files(spec)
    source = str(spec) if isinstance(spec, (str, Path)) else f"{len(spec)} paths"
    has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in files)
    if has_images:
        if len(inputs) != 1:
            raise CalibrationError(
                f"model '{graph.name}' has {len(inputs)} inputs ({[i.name for i in inputs]}); images can only "
                f"feed a one-input model — give .npz archives with one array per input")
        preprocessing = _fit_preprocessing(preprocessing, graph)
    items: list[ItemRef] = []
    for path in files:
        items.extend(_index_file(path, inputs))
    if not items:
        raise CalibrationError(f"calibration set '{source}' is empty")
    if has_images and "normalization" in graph.meta and preprocessing is not None \
            and not preprocessing.is_identity_normalization:
        log.warning("model '%s' already starts with a normalization layer; preprocessing mean/std %s/%s "
                    "normalizes the calibration images a second time", graph.name,
                    list(preprocessing.mean), list(preprocessing.std))
    log.info("calibration set '%s': %d item(s) from %d file(s)", source, len(items), len(files))
    return CalibrationSet(items, inputs, preprocessing, source)


def _fit_preprocessing(pre: Preprocessing | None, graph: Graph) -> Preprocessing:
    inp = graph.inputs[0]
    if pre is None:
        return Preprocessing.for_input(inp)
    if pre.size is None:
        derived = Preprocessing.for_input(inp, layout=pre.layout, channel_order=pre.channel_order)
        pre = pre.with_(size=derived.size)
    if pre.input_shape() != tuple(inp.shape):
        raise CalibrationError(
            f"preprocessing produces {pre.input_shape()} ({pre.layout}, {pre.channel_order}) but model input "
            f"'{inp.name}' is {tuple(inp.shape)}")
    return pre
