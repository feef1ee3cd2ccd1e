"""Three-way accuracy of the real PP-OCR models: float vs npuc's quantized models vs onnxruntime's, against ground truth.

    python benchmarks/accuracy/run.py                 # cls (400 lines) and det (200 pages), writes docs/accuracy.md
    python benchmarks/accuracy/run.py --quick         # fewer items, for a smoke run (docs untouched)
    python benchmarks/accuracy/run.py --models cls

For each model (`cls_task`, `det_task`) and each row below, the model is
calibrated on the same seeded calibration set (64 items, rendered with other
seeds than the evaluation items) and scored with the task's metric against the
rendered ground truth:

* float: the original ONNX model run by onnxruntime;
* npuc rows: `compile_model` with a generated model script; the compiled binary
  (`CompileResult.binary`, what `npuc compile` writes as model.npub) is decoded
  and run by the numba NPU simulator (`--npuc-executor reference` runs the
  quantized graph on the integer reference executor instead: bit-exact, much
  slower); rows whose pass is not in this npuc print "n/a (pass not available)";
* onnxruntime rows: `quantize_static` (QDQ, per-channel, MinMax / Entropy) on the
  same calibration arrays (Entropy on det: only the first 8, see below), run by
  onnxruntime.

Targets (issue 6): npuc's best int8 row within 0.5 points of float and at least
as good as onnxruntime's best; the verdict is computed, never written by hand.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import cls_task  # noqa: E402
import data  # noqa: E402
import det_task  # noqa: E402
from ort_quant import ort_quantize  # noqa: E402

TASKS = {"cls": cls_task, "det": det_task}
DOC = REPO / "docs" / "accuracy.md"
NA = "n/a (pass not available)"

CLE = "pre_quantization_optimization(equalization, policy=enabled)"
BC = "post_quantization_optimization(bias_correction, policy=enabled)"
IBC = "post_quantization_optimization(bias_correction, policy=enabled, iterative=True)"
ADAROUND = "post_quantization_optimization(adaround, policy=enabled)"


@dataclass(frozen=True)
class Row:
    """One way of running the model."""

    label: str
    engine: str  # float | npuc | ort
    int8: bool = False  # counts for "best int8"
    script: tuple[str, ...] = ()
    quantize: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # npuc passes the row needs
    head16: bool = False  # the task's head layers in a16_w16
    ort_method: str = ""
    #: onnxruntime calibration items per task (first N of the shared set); absent: all of them
    ort_calib: dict[str, int] = field(default_factory=dict)

    def label_for(self, task_name: str) -> str:
        n = self.ort_calib.get(task_name)
        return f"{self.label} ({n} calibration items)" if n else self.label


ROWS = (
    Row("float (onnxruntime fp32)", "float"),
    Row("npuc int8 per-tensor minmax", "npuc", True, quantize={"per_channel": False}),
    Row("npuc int8 per-channel", "npuc", True),
    Row("npuc int8 per-channel + CLE", "npuc", True, (CLE,), needs=("cross_layer_equalization",)),
    Row("npuc int8 per-channel + CLE + BC", "npuc", True, (CLE, BC),
        needs=("cross_layer_equalization", "bias_correction")),
    Row("npuc int8 per-channel + CLE + IBC", "npuc", True, (CLE, IBC),
        needs=("cross_layer_equalization", "bias_correction")),
    Row("npuc int8 per-channel + AdaRound", "npuc", True, (ADAROUND,), needs=("adaround",)),
    Row("npuc a16_w16", "npuc", quantize={"precision_mode": "a16_w16"}),
    Row("npuc mixed: int8 per-channel, head a16_w16", "npuc", head16=True),
    Row("onnxruntime QDQ per-channel MinMax", "ort", True, ort_method="minmax"),
    # onnxruntime's Entropy calibrator keeps every intermediate output of every item until it builds
    # its histograms (~700 MB per 640x640 det item): 64 items ran out of memory on 24 GiB, so det's
    # Entropy row calibrates on the first 8 items of the shared set (its label says so)
    Row("onnxruntime QDQ per-channel Entropy", "ort", True, ort_method="entropy", ort_calib={"det": 8}),
)


@dataclass
class Result:
    row: Row
    metrics: dict[str, float] | None = None
    note: str = ""
    prepare_s: float = 0.0  # compile / quantize_static
    eval_s: float = 0.0  # per item

    @property
    def value(self) -> float | None:
        return None if self.metrics is None else next(iter(self.metrics.values()))


def _short(metrics: dict | None) -> dict | None:
    """The metrics without the per-item counts (for the log)."""
    return None if metrics is None else {k: round(v, 2) for k, v in metrics.items() if isinstance(v, (int, float))}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def available_passes() -> set[str]:
    from npuc.passes.registry import PASSES

    return set(PASSES.names())


def head_layers(task, model: Path) -> list[str]:
    """The task's head, named as the script binds layers (after import and the default cleanup)."""
    from npuc.frontends import load_model
    from npuc.passes.base import PassContext
    from npuc.passes.manager import PassManager, default_pipeline

    graph = load_model(model, input_shapes={task.INPUT: task.SHAPE})
    PassManager(default_pipeline(), []).run(graph, PassContext())
    return task.head_layers(graph.ops())


def row_script(row: Row, head: Sequence[str]) -> str:
    lines = ["# generated by benchmarks/accuracy/run.py", "calibration(method=minmax)", *row.script]
    if row.head16:
        lines.append(f"quantization_param({{{', '.join(head)}}}, precision_mode=a16_w16)")
    return "\n".join(lines) + "\n"


#: metrics key of a row's fidelity to the float model: SNR of its raw outputs against float's over all items
SNR_KEY = "output SNR vs float dB"


def output_snr(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """10 log10(sum ref^2 / sum (out - ref)^2) over all items (inf when identical)."""
    signal = sum(float(np.sum(np.square(r, dtype=np.float64))) for r in reference)
    noise = sum(float(np.sum(np.square(np.asarray(o, np.float64) - r))) for o, r in zip(outputs, reference))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def evaluate(run_one: Callable[[np.ndarray], np.ndarray], task, items: Sequence, label: str,
             reference: Sequence[np.ndarray] | None = None) -> tuple[dict, float]:
    """Metrics of `run_one` over the items (with the output SNR against `reference`, float's outputs,
    when given), and the seconds per item."""
    outputs, start = [], time.perf_counter()
    for i, item in enumerate(items):
        outputs.append(run_one(item.x))
        if i == 0:
            first = time.perf_counter() - start
            log(f"  {label}: first item {first:.2f} s -> about {first * len(items):.0f} s for {len(items)} items")
    per_item = (time.perf_counter() - start) / max(1, len(items))
    metrics = task.score(outputs, items)
    if reference is not None:
        metrics[SNR_KEY] = output_snr(outputs, reference)
    return metrics, per_item


def npuc_runner(result, executor: str, source: str) -> Callable[[np.ndarray], np.ndarray]:
    """x -> float output of the compiled model: the NPU simulator on the binary, or the reference executor."""
    if executor == "reference":
        from npuc.backends.reference.quantized_executor import QuantizedExecutor

        graph = result.quantized
        ref = QuantizedExecutor(graph)
        name_in, name_out = graph.inputs[0].name, graph.outputs[0].name
        return lambda x: ref.run({name_in: x}, [name_out])[name_out]
    from npuc.backends.npu.decode import decode
    from npuc.backends.npu.sim import Simulator

    program = decode(result.binary, source)  # the bytes `npuc compile` writes as model.npub
    sim = Simulator(program, source)
    name_in = program.tensors[program.inputs[0]].name
    name_out = program.tensors[program.outputs[0]].name
    return lambda x: sim.run({name_in: x}, dequantize=True)[name_out]


def run_npuc(row: Row, task, calib: Path, items: Sequence, head: Sequence[str], work: Path,
             executor: str = "simulator", reference: Sequence[np.ndarray] | None = None) -> Result:
    from npuc.driver import CompileRequest, compile_model

    script = work / f"{task.NAME}_{re.sub(r'[^A-Za-z0-9]+', '_', row.label)}.alls"
    script.write_text(row_script(row, head))
    start = time.perf_counter()
    result = compile_model(CompileRequest(task.MODEL, script=script, calib=str(calib),
                                          input_shapes={task.INPUT: task.SHAPE}, quantize_options=dict(row.quantize)))
    prepare = time.perf_counter() - start
    run_one = npuc_runner(result, executor, f"{task.NAME}: {row.label}")
    metrics, per_item = evaluate(run_one, task, items, row.label, reference)
    return Result(row, metrics, prepare_s=prepare, eval_s=per_item)


def float_outputs(task, items: Sequence) -> list[np.ndarray]:
    """The float model's outputs (onnxruntime fp32), the reference of every row's output SNR."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(task.MODEL), providers=["CPUExecutionProvider"])
    return [session.run(None, {task.INPUT: item.x})[0] for item in items]


def run_onnxruntime(row: Row, task, stack: np.ndarray, items: Sequence, work: Path,
                    reference: Sequence[np.ndarray] | None = None) -> Result:
    import onnxruntime as ort

    model, prepare = task.MODEL, 0.0
    if row.engine == "ort":
        start = time.perf_counter()
        n = row.ort_calib.get(task.NAME, len(stack))
        model = ort_quantize(task.MODEL, work / f"{task.NAME}_{row.ort_method}.onnx", task.INPUT, stack[:n],
                             row.ort_method)
        prepare = time.perf_counter() - start
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    metrics, per_item = evaluate(lambda x: session.run(None, {task.INPUT: x})[0], task, items, row.label,
                                 reference if row.engine != "float" else None)
    return Result(row, metrics, prepare_s=prepare, eval_s=per_item)


class ResultCache:
    """Row results in a JSON file, written after every row: a run killed half-way (or split over
    several processes with --rows) is resumed with --resume instead of recomputed."""

    def __init__(self, path: Path | None, resume: bool) -> None:
        self.path, self.resume = path, resume
        self.data: dict[str, dict] = {}
        if path is not None and resume and path.is_file():
            self.data = json.loads(path.read_text())

    @staticmethod
    def key(task, count: int, calib_items: int, row: Row, executor: str = "simulator") -> str:
        suffix = "|reference" if row.engine == "npuc" and executor == "reference" else ""
        settings = f"|{task.settings()}" if hasattr(task, "settings") else ""
        return f"{task.NAME}|{count}|{calib_items}{settings}|{row.label}{suffix}"

    def get(self, key: str, row: Row) -> Result | None:
        if self.path is not None and self.resume and self.path.is_file():  # other processes' rows too
            self.data = {**self.data, **json.loads(self.path.read_text())}
        entry = self.data.get(key) if self.resume else None
        return None if entry is None else Result(row, entry["metrics"], entry["note"], entry["prepare_s"],
                                                 entry["eval_s"])

    def put(self, key: str, res: Result) -> None:
        if self.path is None or res.note == NA:
            return
        if self.path.is_file():  # another process may have added its rows
            self.data = {**json.loads(self.path.read_text()), **self.data}
        self.data[key] = {"metrics": res.metrics, "note": res.note, "prepare_s": res.prepare_s, "eval_s": res.eval_s}
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self.path)


#: task name -> a sentence about its evaluation items (e.g. how many boxes), filled by run_task
DESCRIPTIONS: dict[str, str] = {}

NOT_RUN = "not run (no result in --results; rerun without --cached-only)"


def run_task(task, count: int, calib_items: int, rows: Sequence[Row], cache: ResultCache,
             cached_only: bool = False, executor: str = "simulator") -> list[Result]:
    passes = available_passes()
    log(f"[{task.NAME}] {count} evaluation items, {calib_items} calibration items")
    items = task.eval_items(count)
    sentences = [task.describe(items)] if hasattr(task, "describe") else []
    if hasattr(task, "fit_postprocessing"):  # on calibration pages, with the float model
        import onnxruntime as ort

        session = ort.InferenceSession(str(task.MODEL), providers=["CPUExecutionProvider"])
        sentences.append(task.fit_postprocessing(lambda x: session.run(None, {task.INPUT: x})[0]))
        log(f"  {sentences[-1]}")
    DESCRIPTIONS[task.NAME] = " ".join(sentences)
    results = []
    with tempfile.TemporaryDirectory(prefix=f"npuc-acc-{task.NAME}-") as tmp:
        work = Path(tmp)
        calib = task.calibration(work, calib_items)
        stack = np.load(calib)
        head = head_layers(task, task.MODEL) if any(r.head16 for r in rows) else []
        reference: list[np.ndarray] | None = None
        for row in rows:
            row = replace(row, label=row.label_for(task.NAME))
            key = cache.key(task, count, calib_items, row, executor)
            cached = cache.get(key, row)
            if cached is not None:
                log(f"  {row.label}: {_short(cached.metrics) or cached.note} (from {cache.path})")
                results.append(cached)
                continue
            if cached_only:
                results.append(Result(row, note=NOT_RUN))
                continue
            missing = [p for p in row.needs if p not in passes]
            if missing:
                log(f"  {row.label}: {NA} ({', '.join(missing)})")
                results.append(Result(row, note=NA))
                continue
            log(f"  {row.label} ...")
            if reference is None and row.engine != "float":
                reference = float_outputs(task, items)
            try:
                if row.engine == "npuc":
                    res = run_npuc(row, task, calib, items, head, work, executor, reference)
                else:
                    res = run_onnxruntime(row, task, stack, items, work, reference)
            except Exception as exc:  # one failing row must not lose the others; the table says why
                logging.getLogger(__name__).exception("%s failed", row.label)
                res = Result(row, note=f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            log(f"  {row.label}: {_short(res.metrics) or res.note} (prepare {res.prepare_s:.1f} s, {res.eval_s:.3f} s/item)")
            results.append(res)
            cache.put(key, res)
    return results


# ---------------------------------------------------------------- report
BOOTSTRAP, BOOTSTRAP_SEED = 2000, 0


def interval(task, a: Result, b: Result) -> tuple[float, float] | None:
    """95 % paired bootstrap interval (over the evaluation items, resampled with replacement) of
    metric(a) - metric(b), or None without per-item counts (or when they do not pair up)."""
    ca, cb = (np.asarray((r.metrics or {}).get("per_item", []), dtype=np.float64) for r in (a, b))
    if ca.size == 0 or ca.shape != cb.shape or not hasattr(task, "metric_from_counts"):
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, len(ca), size=(BOOTSTRAP, len(ca)))
    diff = task.metric_from_counts(ca[idx].sum(axis=1)) - task.metric_from_counts(cb[idx].sum(axis=1))
    low, high = np.percentile(diff, [2.5, 97.5])
    return float(low), float(high)


def _ci(task, a: Result, b: Result) -> str:
    ci = interval(task, a, b)
    return "" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def verdict(results: Sequence[Result], task=None) -> list[str]:
    """The issue-6 targets, computed from the results."""
    float_value = next((r.value for r in results if r.row.engine == "float"), None)
    npuc8 = [r for r in results if r.row.engine == "npuc" and r.row.int8 and r.value is not None]
    ort8 = [r for r in results if r.row.engine == "ort" and r.value is not None]
    if float_value is None or not npuc8:
        return ["targets: not evaluated (missing float or npuc int8 results)"]
    best = max(npuc8, key=lambda r: r.value)
    gap = float_value - best.value
    float_row = next(r for r in results if r.row.engine == "float")
    ci = _ci(task, best, float_row) if task is not None else ""
    out = [f"best npuc int8: {best.row.label} = {best.value:.2f} ({-gap:+.2f} vs float {float_value:.2f}"
           + (f"; 95 % bootstrap interval of the difference {ci}" if ci else "") + "): "
           f"within 0.5 points of float: {'MET' if gap <= 0.5 else 'NOT MET'}"]
    if ort8:
        best_ort = max(ort8, key=lambda r: r.value)
        ok = best.value >= best_ort.value
        ci = _ci(task, best, best_ort) if task is not None else ""
        out.append(f"best onnxruntime int8: {best_ort.row.label} = {best_ort.value:.2f} (npuc's best "
                   f"{best.value - best_ort.value:+.2f}" + (f"; 95 % bootstrap interval {ci}" if ci else "")
                   + f"): npuc at least as good: {'MET' if ok else 'NOT MET'}")
    snr_npuc = [r for r in npuc8 if SNR_KEY in r.metrics]
    snr_ort = [r for r in ort8 if SNR_KEY in r.metrics]
    if snr_npuc and snr_ort:  # fidelity to float, not a target: the metric can reward errors (see above)
        a, b = (max(rs, key=lambda r: r.metrics[SNR_KEY]) for rs in (snr_npuc, snr_ort))
        out.append(f"most faithful int8 (output SNR vs float): {a.row.label} {a.metrics[SNR_KEY]:.2f} dB; "
                   f"{b.row.label} {b.metrics[SNR_KEY]:.2f} dB")
    if task is not None:
        above, below = [], []
        for r in results:
            ci = None if r.row.engine == "float" or r.metrics is None else interval(task, r, float_row)
            if ci is not None and ci[0] > 0:
                above.append(r.row.label)
            elif ci is not None and ci[1] < 0:
                below.append(r.row.label)
        if above or below:
            out.append("rows whose interval vs float excludes 0: above float: " + (", ".join(above) or "none")
                       + "; below float: " + (", ".join(below) or "none"))
    if task is not None and any((r.metrics or {}).get("per_item") for r in results):
        out.append(f"intervals: paired bootstrap over the {task.NAME} evaluation items ({BOOTSTRAP} resamples, "
                   f"seed {BOOTSTRAP_SEED}), 2.5th-97.5th percentile of the metric difference; the verdicts "
                   "compare the point values, the intervals show how much of a difference is sampling noise; "
                   f"npuc's best is the maximum over {len(npuc8)} int8 rows and onnxruntime's over {len(ort8)}, "
                   "and a maximum over more rows is biased upwards")
    return out


def table(task, results: Sequence[Result]) -> str:
    float_value = next((r.value for r in results if r.row.engine == "float"), None)
    float_row = next((r for r in results if r.row.engine == "float"), None)
    extra = list(dict.fromkeys(k for r in results for k, v in (r.metrics or {}).items()
                               if k != task.METRIC and isinstance(v, (int, float))))
    head = ["configuration", task.METRIC, "vs float", "95 % interval", *extra, "prepare s", "eval s/item"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if r.metrics is None:
            cells = [r.row.label, r.note, "", "", *[""] * len(extra), "", ""]
        else:
            delta = "" if r.row.engine == "float" or float_value is None else f"{r.value - float_value:+.2f}"
            ci = "" if r.row.engine == "float" or float_row is None or float_row.metrics is None \
                else _ci(task, r, float_row)
            cells = [r.row.label, f"{r.value:.2f}", delta, ci, *[f"{r.metrics[k]:.2f}" if k in r.metrics else "" for k in extra],
                     f"{r.prepare_s:.1f}" if r.prepare_s else "", f"{r.eval_s:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"npuc commit {commit}")


def report(sections: list[tuple[Any, int, list[Result], float]], command: str, cached: bool = False,
           executor: str = "simulator") -> str:
    out = [
        "# Accuracy: float vs npuc int8/int16 vs onnxruntime, against ground truth",
        "",
        "Produced by `benchmarks/accuracy/run.py` (do not edit by hand; rerun it).",
        "",
        f"- command: `{command}`" + (" (renders the rows stored in the --results file by earlier runs of this "
                                     "script, possibly several in parallel with --labels/--rows; section wall "
                                     "times are then only the rendering)" if cached else ""),
        f"- machine: {machine()}",
        f"- date: {datetime.date.today().isoformat()}",
        "",
        "Data (rendered with pillow and the DejaVu fonts of matplotlib's wheel, fixed seeds; "
        "`benchmarks/accuracy/data.py`): calibration and evaluation images come from different seeds. "
        f"Every quantized row is calibrated on the same {data.CALIB_ITEMS} calibration items (minmax ranges "
        "unless the row says otherwise); onnxruntime's `quantize_static` gets the very same arrays. "
        + ("npuc's rows are run by the integer reference executor on the quantized graph "
           "(bit-exact with the simulator); " if executor == "reference" else
           "npuc's rows are run by the numba NPU simulator on the compiled binary (the bytes `npuc compile` "
           "writes as model.npub; bit-exact with the integer reference executor, which "
           "`--npuc-executor reference` uses instead); ")
        + "onnxruntime's by onnxruntime. Preprocessing is rapidocr's "
        "(BGR; cls: height 48, right padding to 192, (x/255-0.5)/0.5; det: (x/255-0.5)/0.5, the mean/std "
        "of rapidocr's config.yaml). Rows whose npuc pass is not "
        "available in this build say so. \"prepare s\" is the compile (npuc: import to binary) or "
        "`quantize_static` time; \"eval s/item\" the inference time per item (both on a shared, loaded "
        "machine: rough). \"95 % interval\": paired bootstrap interval of the row's difference to float "
        f"(evaluation items resampled with replacement, {BOOTSTRAP} resamples); differences whose interval "
        "contains 0 are within sampling noise. \"output SNR vs float dB\": how faithful a row is to the float "
        "model, 10 log10(sum f^2 / sum (q - f)^2) of its raw outputs q (cls: the softmax, det: the probability "
        "map) against float's f over all evaluation items. The task metric and the SNR can disagree: on det, "
        "F1 at IoU 0.5 against tight boxes is sensitive to box size, so an error that shrinks or grows the text "
        "regions moves F1 whatever it does to the SNR (with rapidocr's unclip 1.6, float's boxes were too large "
        "for the rendered boxes and errors that shrank them raised F1; hence the fitted unclip ratio); rank "
        "fidelity by the SNR.",
        "",
    ]
    for task, count, results, seconds in sections:
        doc = {"cls": "PP-OCR direction classifier `ch_ppocr_mobile_v2.0_cls_infer.onnx` (1x3x48x192), "
                      f"{count} rendered text lines, half rotated by 180 degrees; metric: accuracy.",
               "det": "PP-OCRv4 text detector `ch_PP-OCRv4_det_infer.onnx` (1x3x640x640), "
                      f"{count} rendered photo-like pages with known line boxes "
                      "(`HardTextPageGenerator` in tests/data_gen/text_images.py: font sizes 9-48 px, many "
                      "small lines, gradient / coloured / dark / blotchy backgrounds and coloured panels, ink of "
                      "random and sometimes low contrast, one or two columns, rules and filled shapes as "
                      "distractors, then uneven lighting, resolution loss, blur, gaussian noise and JPEG "
                      "compression at random strengths; text is not rotated, so the axis-aligned ground-truth "
                      "boxes stay exact); rapidocr's DB post-processing "
                      "(threshold 0.3, box threshold 0.5, unclip ratio fitted as below); metric: precision / recall / F1 "
                      "at IoU 0.5, micro-averaged over the pages. onnxruntime's Entropy calibrator keeps every "
                      "intermediate output of every calibration item (about 700 MB per 640x640 item); an earlier "
                      "run of this benchmark with all 64 items ran out of memory on this 24 GiB machine, so its "
                      "det row calibrates on the first 8 of them."}[task.NAME]
        if DESCRIPTIONS.get(task.NAME):
            doc += " " + DESCRIPTIONS[task.NAME]
        out += [f"## {task.NAME}", "", doc, "", table(task, results), "",
                *[f"- {line}" for line in verdict(results, task)], f"- wall time of this section: {seconds / 60:.1f} min", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cls,det", help="comma-separated: cls, det")
    parser.add_argument("--quick", action="store_true", help="fewer evaluation items; docs/accuracy.md is not written")
    parser.add_argument("--items", type=int, default=None, help="evaluation items per model (default: task's own)")
    parser.add_argument("--calib-items", type=int, default=data.CALIB_ITEMS)
    parser.add_argument("--rows", default=None, help="only rows whose label contains one of these comma-separated words")
    parser.add_argument("--output", type=Path, default=None, help=f"markdown file to write (default {DOC.relative_to(REPO)}; "
                                                                  "not written with --quick unless given)")
    parser.add_argument("--results", type=Path, default=None,
                        help="JSON file of row results, updated after every row (several processes may share it)")
    parser.add_argument("--resume", action="store_true", help="reuse the rows already in --results")
    parser.add_argument("--cached-only", action="store_true",
                        help="with --results: only render the rows already there (the others say 'not run')")
    parser.add_argument("--npuc-executor", choices=("simulator", "reference"), default="simulator",
                        help="what runs npuc's compiled models: the NPU simulator on the binary (default) or the "
                             "integer reference executor on the quantized graph (bit-exact, much slower)")
    parser.add_argument("--labels", default=None, help="only the rows with exactly these labels (';'-separated)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(TASKS)}")
    rows = [r for r in ROWS if args.rows is None or r.engine == "float"
            or any(w.strip().lower() in r.label.lower() for w in args.rows.split(","))]
    if args.labels is not None:
        wanted = {w.strip() for w in args.labels.split(";")}
        rows = [r for r in rows if r.engine == "float" or r.label in wanted]
    if args.cached_only and args.results is None:
        parser.error("--cached-only needs --results")
    cache = ResultCache(args.results, args.resume or args.cached_only)
    sections = []
    for name in names:
        task = TASKS[name]
        count = args.items or (task.QUICK_ITEMS if args.quick else task.ITEMS)
        start = time.perf_counter()
        results = run_task(task, count, args.calib_items, rows, cache, args.cached_only, args.npuc_executor)
        seconds = time.perf_counter() - start
        sections.append((task, count, results, seconds))
        print(f"\n## {name} ({count} items, {seconds / 60:.1f} min)\n\n{table(task, results)}\n")
        for line in verdict(results, task):
            print(f"- {line}")
    command = "python benchmarks/accuracy/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    output = args.output or (None if args.quick else DOC)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report(sections, command.strip(), args.cached_only or args.resume, args.npuc_executor))
        print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
