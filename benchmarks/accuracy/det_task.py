"""PP-OCRv4 text detector (ch_PP-OCRv4_det): precision / recall / F1 at IoU 0.5 on rendered pages.

The probability map is decoded into boxes by rapidocr's own DB post-processing
(`DBPostProcess` with rapidocr's settings: threshold 0.3, box threshold 0.5,
dilation, fast box score; the unclip ratio, rapidocr's 1.6, is refitted to the
rendered boxes on the calibration pages by `fit_postprocessing`) followed by its box filter
(`TextDetector.filter_tag_det_res`). Detections are matched one-to-one to the
ground-truth line boxes, greedily by decreasing IoU (polygon IoU, shapely);
a match needs IoU >= 0.5. Counts are summed over all pages (micro average).
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Sequence

import numpy as np
from rapidocr_onnxruntime.ch_ppocr_det.text_detect import TextDetector
from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess
from shapely.geometry import Polygon, box as shapely_box

import data

NAME = "det"
MODEL = Path(str(importlib.resources.files("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_det_infer.onnx"))
INPUT = "x"
SHAPE = data.DET_SHAPE
METRIC = "F1 %"
#: pages evaluated: full run / --quick
ITEMS, QUICK_ITEMS = 200, 10
IOU = 0.5

#: unclip ratios tried by `fit_postprocessing` (rapidocr's default is 1.6)
UNCLIP_GRID = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
#: calibration pages the unclip ratio is fitted on
FIT_ITEMS = 64
_UNCLIP = 1.6


def _post(unclip: float) -> DBPostProcess:
    return DBPostProcess(thresh=0.3, box_thresh=0.5, max_candidates=1000, unclip_ratio=unclip,
                         score_mode="fast", use_dilation=True)


_POST = _post(_UNCLIP)


def fit_postprocessing(run_float) -> str:
    """Fit DB's unclip ratio to the ground-truth box convention: the ratio of UNCLIP_GRID with the best
    float F1 on the calibration pages (never the evaluation pages), then used for every row alike.
    The rendered boxes are the tight text extents; rapidocr's 1.6 suits real data's looser labels and
    makes the float model's boxes too large here. Returns a sentence for the report."""
    global _POST, _UNCLIP
    gen = data.HardTextPageGenerator(seed=data.DET_CALIB_SEED, width=SHAPE[3], height=SHAPE[2])
    pages = [gen.sample_with_boxes(i) for i in range(FIT_ITEMS)]
    probs = [run_float(data.det_preprocess(page)) for page, _ in pages]
    truth = [data.DetItem(None, tuple(boxes)) for _, boxes in pages]  # type: ignore[arg-type]
    f1 = {}
    for unclip in UNCLIP_GRID:
        _POST = _post(unclip)
        f1[unclip] = score(probs, truth)["F1 %"]
    _UNCLIP = max(UNCLIP_GRID, key=lambda u: (f1[u], -abs(u - 1.6)))
    _POST = _post(_UNCLIP)
    return (f"The unclip ratio is fitted for the float model on the {FIT_ITEMS} calibration pages: "
            + ", ".join(f"{u:.1f}: {v:.2f}" for u, v in f1.items())
            + f" (float F1 %); {_UNCLIP:.1f} is used for every row.")


def settings() -> str:
    """What the cached results depend on besides the rows (part of the cache key)."""
    return f"unclip={_UNCLIP:.1f}"


def eval_items(count: int) -> list[data.DetItem]:
    return data.det_eval_items(count)


def describe(items: Sequence[data.DetItem]) -> str:
    """How many ground-truth boxes the evaluation pages hold, and how small they are."""
    heights = np.array([b[3] - b[1] for item in items for b in item.boxes])
    if heights.size == 0:
        return "The pages hold no text lines."
    return (f"The pages hold {heights.size} ground-truth line boxes ({heights.size / len(items):.1f} per page; "
            f"box height median {np.median(heights):.0f} px, {100 * np.mean(heights < 12):.0f} % under 12 px).")


def calibration(folder: Path, count: int) -> Path:
    return data.det_calibration(folder, count)


def head_layers(ops: Sequence) -> list[str]:
    """The DB head: everything after the last Concat (the FPN merge), i.e. the conv/deconv/sigmoid tail."""
    last = max(i for i, op in enumerate(ops) if op.kind == "Concat")
    return [op.name for op in ops[last + 1:]]


def detect(prob: np.ndarray) -> list[np.ndarray]:
    """Boxes (4x2 points) from the (1, 1, H, W) probability map, as rapidocr's TextDetector returns them."""
    prob = np.asarray(prob, dtype=np.float32).reshape(1, 1, SHAPE[2], SHAPE[3])
    boxes, _ = _POST(prob, (SHAPE[2], SHAPE[3]))
    detector = TextDetector.__new__(TextDetector)  # only its stateless box filter is used
    return list(detector.filter_tag_det_res(boxes, (SHAPE[2], SHAPE[3])))


def match(pred: Sequence[np.ndarray], truth: Sequence[tuple[int, int, int, int]], iou: float = IOU) -> int:
    """Number of one-to-one matches with IoU >= `iou` (greedy by decreasing IoU)."""
    polys = [Polygon(p).buffer(0) for p in pred]
    gts = [shapely_box(*b) for b in truth]
    pairs = []
    for i, p in enumerate(polys):
        for j, g in enumerate(gts):
            inter = p.intersection(g).area
            if inter > 0:
                pairs.append((inter / (p.area + g.area - inter), i, j))
    used_p, used_g, hits = set(), set(), 0
    for value, i, j in sorted(pairs, reverse=True):
        if value < iou:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i), used_g.add(j)
            hits += 1
    return hits


def score(outputs: Sequence[np.ndarray], items: Sequence[data.DetItem]) -> dict[str, float]:
    """Precision, recall and F1 (%) at IoU 0.5 over all pages, and the per-page counts
    [matched, detected, ground truth] ("per_item", for the bootstrap intervals)."""
    tp = n_pred = n_true = 0
    per_item = []
    for prob, item in zip(outputs, items):
        pred = detect(prob)
        hits = match(pred, item.boxes)
        per_item.append([hits, len(pred), len(item.boxes)])
        tp += hits
        n_pred += len(pred)
        n_true += len(item.boxes)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"F1 %": 100 * f1, "precision %": 100 * precision, "recall %": 100 * recall, "per_item": per_item}


def metric_from_counts(counts: np.ndarray) -> np.ndarray:
    """Micro F1 (%) from per-page counts [matched, detected, truth] summed: (..., 3) -> (...)."""
    tp, n_pred, n_true = counts[..., 0], counts[..., 1], counts[..., 2]
    return 100.0 * 2 * tp / np.maximum(n_pred + n_true, 1)
