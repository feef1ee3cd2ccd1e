"""The seeded text-image generator other tests and benchmarks reuse."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "data_gen"))
from text_images import TextLineGenerator, TextPageGenerator, write_lines  # noqa: E402


def test_lines_are_deterministic_48_high_and_at_most_192_wide():
    a, b = TextLineGenerator(seed=3), TextLineGenerator(seed=3)
    for i in range(10):
        la, lb = a.sample(i), b.sample(i)
        assert la.text == lb.text and la.rotated == lb.rotated
        assert np.array_equal(np.asarray(la.image), np.asarray(lb.image))
        assert la.image.mode == "RGB" and la.image.height == 48 and 8 <= la.image.width <= 192
    assert TextLineGenerator(seed=4).sample(0).text != a.sample(0).text or \
        not np.array_equal(np.asarray(TextLineGenerator(seed=4).sample(0).image), np.asarray(a.sample(0).image))


def test_rotation_fraction_and_labels(tmp_path):
    lines = [TextLineGenerator(seed=0, rotate_fraction=0.5).sample(i) for i in range(64)]
    rotated = sum(line.rotated for line in lines)
    assert 16 < rotated < 48 and {line.label for line in lines} == {0, 1}
    assert all(not TextLineGenerator(rotate_fraction=0.0).sample(i).rotated for i in range(8))
    paths = write_lines(tmp_path, 3)
    assert [p.name for p in paths] == ["line_00000.png", "line_00001.png", "line_00002.png"]
    assert (tmp_path / "labels.json").is_file()


def test_pages_have_text_on_paper():
    page = np.asarray(TextPageGenerator(seed=0, width=320, height=240).sample(0))
    assert page.shape == (240, 320, 3)
    assert page.std() > 10  # not blank


def test_hard_pages_are_deterministic_with_boxes_inside_the_page_over_text():
    from text_images import HardTextPageGenerator

    gen = HardTextPageGenerator(seed=5, width=320, height=320)
    (a, boxes), (b, boxes_b) = gen.sample_with_boxes(2), HardTextPageGenerator(seed=5, width=320,
                                                                              height=320).sample_with_boxes(2)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and boxes == boxes_b
    assert a.size == (320, 320) and a.mode == "RGB" and len(boxes) >= 3
    page = np.asarray(a, np.float32).mean(axis=2)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 320
        assert page[y0:y1, x0:x1].std() > 2.0  # ink on the background, not an empty box
    other, _ = HardTextPageGenerator(seed=6, width=320, height=320).sample_with_boxes(2)
    assert not np.array_equal(np.asarray(other), np.asarray(a))  # calibration and evaluation seeds differ
