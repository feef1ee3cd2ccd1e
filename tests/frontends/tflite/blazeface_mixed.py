"""Mixed precision for MediaPipe's face detectors, chosen on the calibration set by npuc's own analysis.

The rule (COVERAGE and HEADROOM fixed before its figures on the portraits were measured; see docs/tflite.md):

1. **Noise per layer, held out.** The fold's calibration items are split as `select_recipe` splits them
   (even / odd); the model is compiled int8 with the fold's recipe on one half and `npuc analyze`'s
   sensitivity (SNR at each output with only layer n quantized) is measured on the OTHER half, and back.
   Held out, a layer's noise includes the values its 8-bit grid clips because the calibrating half did
   not reach them. Each layer's SNR becomes a noise power relative to the signal, averaged over the two
   halves.
2. **Layers at 16 bit.** Layers are ranked by their largest share of an output's summed noise; the
   fewest top-ranked layers covering COVERAGE of every output's sum get 16-bit activations
   (`quantization_param(..., precision_mode=a16_w8)`; weights stay 8-bit). The input normalization's
   two layers (`normalization1/sub`, `/mul`) are not candidates: at 16 bit alone they gain nothing, the
   8-bit conversion in front of the first conv has the same half-step error, and the coverage counted
   for them is missing elsewhere (back, tried at ae7c9c7 once the layers could be selected: scores 23.9
   -> 18.6 dB). The output heads are not candidates either (point 4); their noise is left out.
3. **Headroom.** The final model is compiled on all calibration items; the ranges of the 16-bit
   activations are then widened HEADROOM times around zero (`quantization_overrides`, 16-bit AIMET
   encodings): 2 of the 16 bits for values the calibration photos did not reach.
4. **float16 heads.** The output heads (the layers from the trunk's last activation to the outputs)
   run in float16 (`data_type(..., float16)`): no output grid clips a logit of a new photo.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

#: share of every output's summed single-layer noise the 16-bit layers must cover
COVERAGE = 0.9
#: 16-bit activation ranges are this many times the calibrated ones
HEADROOM = 4.0
#: the output heads in float16 (False: they keep the int8 recipe; for benchmarks/blazeface_noise_budget.py)
FLOAT16_HEADS = True
#: the layers of the script's input normalization (`normalization1 = normalization(...)`): no candidates
NORMALIZATION_PREFIX = "normalization1/"


@dataclass
class MixedChoice:
    layers16: list[str]  # 16-bit activations, worst first
    heads: list[str]  # float16
    noise: dict[str, dict[str, float]]  # output -> layer -> held-out noise power / signal power
    analysed: int  # layers the analysis saw

    def script(self, overrides: Path | None = None) -> str:
        lines = f"data_type({selector(self.heads)}, float16)\n" if FLOAT16_HEADS else ""
        if self.layers16:
            lines = f"quantization_param({selector(self.layers16)}, precision_mode=a16_w8)\n" + lines
        if overrides is not None:
            lines += f'quantization_overrides("{overrides}")\n'
        return lines


def selector(names: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{n}"' for n in names) + "]"


def layer_noise(report) -> dict[str, dict[str, float]]:
    """{output: {layer: noise power relative to the signal}} with only that layer quantized."""
    return {out: {r.name: 10.0 ** (-r.sensitivity_db[out] / 10.0) for r in report.layers
                  if r.sensitivity_db.get(out) is not None}
            for out in report.outputs}


def analyse(result, items_glob: str, preprocessing):
    """npuc's analysis (with sensitivity) of a compile result on the items of `items_glob`."""
    from npuc.analysis.analyzer import AnalysisOptions, analyze
    from npuc.calibration.dataset import open_calibration_set

    data = open_calibration_set(items_glob, result.fp_optimized, preprocessing)
    return analyze(result.fp_optimized, result.quantized, iter(data), AnalysisOptions())


def heldout_noise(halves: Sequence[Sequence], tmp: Path, compile_fn: Callable, preprocessing
                  ) -> tuple[dict[str, dict[str, float]], int]:
    """Per output and layer, the noise of that layer alone on one half of the calibration set with the
    model calibrated on the other half, averaged over both ways; and the number of layers analysed."""
    total: dict[str, dict[str, float]] = {}
    analysed = 0
    for k in (0, 1):
        folder = tmp / f"half_{k}"
        for part, items in (("calib", halves[k]), ("held_out", halves[1 - k])):
            (folder / part).mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(items):
                img.save(folder / part / f"item_{i}.png")
        result, _ = compile_fn(folder / "calib", folder)
        report = analyse(result, str(folder / "held_out" / "*.png"), preprocessing)
        analysed = max(analysed, len(report.layers))
        for out, by_layer in layer_noise(report).items():
            acc = total.setdefault(out, {})
            for name, n in by_layer.items():
                acc[name] = acc.get(name, 0.0) + n / 2
    return total, analysed


def select_16bit(noise: dict[str, dict[str, float]], coverage: float | None = None,
                 exclude: Iterable[str] = ()) -> list[str]:
    """The fewest layers, worst first, covering `coverage` of each output's summed noise (layers in
    `exclude` or of the input normalization neither count nor are chosen)."""
    coverage = COVERAGE if coverage is None else coverage
    exclude = set(exclude)
    usable = {out: {n: v for n, v in by.items() if n not in exclude and not n.startswith(NORMALIZATION_PREFIX)}
              for out, by in noise.items()}
    share: dict[str, float] = {}
    for by_layer in usable.values():
        total = sum(by_layer.values())
        for name, n in by_layer.items():
            share[name] = max(share.get(name, 0.0), n / total)
    chosen: list[str] = []
    for name in sorted(share, key=lambda n: (-share[n], n)):
        if all(sum(by.get(n, 0.0) for n in chosen) >= coverage * sum(by.values()) for by in usable.values()):
            break
        chosen.append(name)
    return chosen


def widened_encodings(result, factor: float) -> dict:
    """AIMET encodings of the 16-bit integer activations of `result`, widened `factor` times around zero
    (same zero point, scale x factor). Left out: conversions' tensors (`name:u8`, inserted after
    calibration), and tensors that are also converted to another width: the quantizer would derive that
    width's encoding from the fixed (widened) range, a grid `factor` times coarser for an 8-bit reader;
    their 16-bit range stays the calibrated one."""
    from npuc.calibration.encodings import export_encodings

    encodings = export_encodings(result.quantized)["activation_encodings"]
    converted = {name.split(":")[0] for name in encodings if ":" in name}
    acts = {}
    for name, entries in encodings.items():
        e = entries[0]
        if (e.get("dtype") == "int" and e["bitwidth"] == 16 and name not in converted
                and result.fp_optimized.has_tensor(name)):
            acts[name] = [dict(e, scale=e["scale"] * factor, min=e["min"] * factor, max=e["max"] * factor)]
    return {"activation_encodings": acts, "param_encodings": {}}


def compile_mixed(calib_dir: Path, tmp: Path, choice: MixedChoice, compile_fn: Callable,
                  headroom: float | None = None):
    """Compile with `choice`'s script lines on all of `calib_dir`, then again with the 16-bit ranges
    widened `headroom` times. compile_fn(calib_dir, folder, extra_script) -> (result, binary)."""
    headroom = HEADROOM if headroom is None else headroom
    first, binary = compile_fn(calib_dir, tmp / "ranges", choice.script())
    if headroom == 1.0:
        return first, binary
    path = tmp / "widened_encodings.json"
    path.write_text(json.dumps(widened_encodings(first, headroom)))
    return compile_fn(calib_dir, tmp / "final", choice.script(path))


def noise_db(noise: float) -> float:
    return float("inf") if noise <= 0 else float(-10.0 * np.log10(noise))
