"""Peak memory of streaming calibration on the PP-OCR text detector: 16 vs 128 images at 1x3x640x640.

Each measurement runs in a fresh subprocess (so peaks do not leak between
runs): import the model, open the calibration set, run the `calibrate` pass.
It reports the child's peak resident set (ru_maxrss) and the peak of memory
allocated during calibration alone (tracemalloc, which numpy reports to).
Calibration streams items, so both figures should differ by well under 20%
between 16 and 128 images.

    python benchmarks/calibration_memory.py [--method minmax|percentile|mse|kl] [--images DIR]

The images are rendered text pages (tests/data_gen/text_images.py), generated
into a temporary folder unless --images is given.
"""
from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

log = logging.getLogger("calibration_memory")

ROOT = Path(__file__).resolve().parents[1]
SIZES = (16, 128)
SHAPE = (1, 3, 640, 640)


def det_model_path() -> Path:
    return Path(str(importlib.resources.files("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_det_infer.onnx"))


def make_images(folder: Path, count: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "data_gen"))
    from text_images import write_pages

    write_pages(folder, count, seed=0, size=(SHAPE[3], SHAPE[2]))


def child(images: Path, count: int, method: str) -> dict:
    """One measurement (runs inside the subprocess)."""
    from npuc.calibration import Preprocessing, open_calibration_set
    from npuc.frontends.onnx import load_onnx
    from npuc.passes.base import PassContext
    from npuc.passes.calibrate import Calibrate

    graph = load_onnx(str(det_model_path()), input_shapes={"x": SHAPE})
    # PP-OCR det normalisation (ImageNet mean/std on 0..1 pixels), BGR as PaddleOCR feeds it
    pre = Preprocessing(channel_order="BGR", mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
                        std=(0.229 * 255, 0.224 * 255, 0.225 * 255))
    calib = open_calibration_set(images, graph, pre)
    tracemalloc.start()
    t0 = time.perf_counter()
    result = Calibrate(method=method, calibset_size=count, batch_size=8).run(
        graph, PassContext(state={"calibration_set": calib}))
    seconds = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "count": count,
        "items": result.stats["items"],
        "seconds": seconds,
        "traced_peak_mb": traced_peak / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(images: Path, count: int, method: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(count), "--images", str(images), "--method", method]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement with {count} images failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="minmax", choices=("minmax", "percentile", "mse", "kl"))
    parser.add_argument("--images", type=Path, help="folder of >= 128 images (default: generated)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.images, args.child, args.method)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="npuc-calib-mem-") as tmp:
        images = args.images
        if images is None:
            images = Path(tmp)
            log.info("rendering %d text pages at %dx%d ...", max(SIZES), SHAPE[3], SHAPE[2])
            make_images(images, max(SIZES))
        results = [measure(images, n, args.method) for n in SIZES]
    small, large = results
    print(f"PP-OCRv4 det, {SHAPE}, method={args.method}")
    print(f"{'images':>7} {'seconds*':>8} {'peak RSS MB':>12} {'calib peak MB (tracemalloc)':>28}")
    for r in results:
        print(f"{r['items']:>7} {r['seconds']:>8.1f} {r['maxrss_mb']:>12.1f} {r['traced_peak_mb']:>28.1f}")
    print("* wall time with tracemalloc on (it slows allocation-heavy numpy code several-fold)")
    rss_ratio = large["maxrss_mb"] / small["maxrss_mb"]
    traced_ratio = large["traced_peak_mb"] / small["traced_peak_mb"]
    print(f"ratio {large['items']}/{small['items']}: peak RSS {rss_ratio:.3f}, calibration peak {traced_ratio:.3f} "
          f"(target: within 20%) -> {'OK' if max(rss_ratio, traced_ratio) < 1.2 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
