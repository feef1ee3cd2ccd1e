"""Regenerate the bundled calibration images (32 rendered text lines, fixed seed, some upside down).

    python examples/ppocr_cls/make_calib.py
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.data_gen.text_images import write_lines  # noqa: E402

if __name__ == "__main__":
    paths = write_lines(HERE / "calib", count=32, seed=20261125, rotate_fraction=0.5)
    print(f"wrote {len(paths)} images to {HERE / 'calib'}")
