"""Calibration + quantization wall time: npuc vs onnxruntime's quantize_static (issue 4).

    python benchmarks/calibration.py                      # MobileNetV2-style 224x224 and PP-OCRv4 det 640x640
    python benchmarks/calibration.py --models mobilenet --items 16

Both tools get the same 64 inputs (a stacked .npy: npuc reads it as its
calibration set, onnxruntime through a CalibrationDataReader over the same
rows) and the same algorithm:

* minmax: npuc `calibration(method=minmax)` vs onnxruntime CalibrationMethod.MinMax;
* KL:     npuc `calibration(method=kl)`     vs onnxruntime CalibrationMethod.Entropy.

Both quantize to int8 with per-channel weights (onnxruntime: QDQ format,
uint8 activations). npuc's time is the `calibrate` + `quantize` stages of
`compile_model` (its stage_seconds); the import/float-rewrite time is printed
next to it. onnxruntime's time is the whole `quantize_static` call (it loads
the model, augments it, calibrates, quantizes and saves). Ratio = onnxruntime
time / npuc time (> 1: npuc faster). Targets: npuc no slower for minmax
(ratio >= 1), at least 2x faster for KL (ratio >= 2).

Inputs: MobileNetV2-style model from benchmarks/mobilenet_v2.py (seeded
random weights, seeded N(0, 1) inputs); the det model gets rendered pages
(benchmarks/accuracy/data.py, calibration seed) preprocessed as rapidocr does.
"""
from __future__ import annotations

import argparse
import importlib.resources
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "accuracy"))

import mobilenet_v2  # noqa: E402
from ort_quant import ort_quantize  # noqa: E402

DET_MODEL = Path(str(importlib.resources.files("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_det_infer.onnx"))
#: (npuc method, onnxruntime method, required ratio ort/npuc)
ALGORITHMS = (("minmax", "minmax", 1.0), ("kl", "entropy", 2.0))


@dataclass
class Case:
    name: str
    model: Path
    input_name: str
    shape: tuple[int, ...]
    calib: Path  # stacked .npy


def mobilenet_case(work: Path, items: int) -> Case:
    model = mobilenet_v2.write(work / "mobilenet_v2.onnx", seed=0)
    rng = np.random.default_rng(1234)
    calib = work / "mobilenet_calibration.npy"
    np.save(calib, rng.normal(0.0, 1.0, size=(items, *mobilenet_v2.INPUT_SHAPE[1:])).astype(np.float32))
    return Case("MobileNetV2-style 224x224", model, "input", mobilenet_v2.INPUT_SHAPE, calib)


def det_case(work: Path, items: int) -> Case:
    import data

    return Case("PP-OCRv4 det 640x640", DET_MODEL, "x", data.DET_SHAPE, data.det_calibration(work, items))


CASES = {"mobilenet": mobilenet_case, "det": det_case}


def time_npuc(case: Case, method: str, work: Path) -> tuple[float, float]:
    """(calibrate + quantize seconds, import + float rewrites seconds) of npuc's pipeline."""
    from npuc.driver import CompileRequest, compile_model

    script = work / f"{method}.alls"
    script.write_text(f"calibration(method={method})\n")
    result = compile_model(CompileRequest(case.model, script=script, calib=str(case.calib),
                                          input_shapes={case.input_name: case.shape},
                                          quantize_options={"per_channel": True}))
    s = result.stage_seconds
    return s.get("calibrate", 0.0) + s.get("quantize", 0.0), s.get("import", 0.0) + s.get("optimize", 0.0)


def time_ort(case: Case, method: str, work: Path) -> float:
    stack = np.load(case.calib)
    start = time.perf_counter()
    ort_quantize(case.model, work / f"ort_{method}.onnx", case.input_name, stack, method)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet,det", help="comma-separated: mobilenet, det")
    parser.add_argument("--items", type=int, default=64, help="calibration inputs (default 64)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if any(n not in CASES for n in names):
        parser.error(f"choose models from {sorted(CASES)}")
    print(f"calibrate + quantize, {args.items} inputs, per-channel int8; {os.cpu_count()} cores")
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix="npuc-calib-bench-") as tmp:
        work = Path(tmp)
        for name in names:
            case = CASES[name](work, args.items)
            for npuc_method, ort_method, target in ALGORITHMS:
                print(f"  {case.name}: npuc {npuc_method} ...", file=sys.stderr, flush=True)
                npuc_s, front_s = time_npuc(case, npuc_method, work)
                print(f"  {case.name}: onnxruntime {ort_method} ...", file=sys.stderr, flush=True)
                ort_s = time_ort(case, ort_method, work)
                ratio = ort_s / npuc_s
                met = ratio >= target
                rows.append((case.name, f"{npuc_method} / {ort_method}", npuc_s, front_s, ort_s, ratio, target, met))
                print(f"  {case.name} {npuc_method}: npuc {npuc_s:.2f} s (+{front_s:.2f} s import), "
                      f"onnxruntime {ort_s:.2f} s, ratio {ratio:.2f}", file=sys.stderr, flush=True)
    print()
    print("| model | algorithm (npuc / onnxruntime) | npuc calibrate+quantize s | npuc import+rewrites s "
          "| onnxruntime quantize_static s | ratio ort/npuc | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for name, algo, npuc_s, front_s, ort_s, ratio, target, met in rows:
        print(f"| {name} | {algo} | {npuc_s:.2f} | {front_s:.2f} | {ort_s:.2f} | {ratio:.2f}x | >= {target:g}x "
              f"| {'yes' if met else 'NO'} |")
        verdicts.append(met)
    print(f"\ntargets met: {sum(verdicts)}/{len(verdicts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
