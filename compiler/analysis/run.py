"""`analyze_model`: compile as `npuc compile` does, analyse on the calibration data, write the report folder.

Files written into the output folder:

* ``report.json``: every number of the analysis (ranked layers, SNRs, KL, plot paths, timings);
* ``quantization_entropy.txt``: ``<layer>:out<k>, <kl>`` / ``<layer>:weight, <kl>`` lines, highest first;
* ``plots/*.png``: SNR charts, histograms and scatter plots of the worst layers;
* ``report.html``: one offline page showing all of it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from npuc.analysis.analyzer import AnalysisOptions, analyze
from npuc.analysis.entropy import write_entropy_file
from npuc.analysis.plots import write_plots
from npuc.analysis.report import AnalysisReport
from npuc.analysis.report_html import write_html
from npuc.errors import NpucError

if TYPE_CHECKING:
    from npuc.driver import CompileRequest

log = logging.getLogger(__name__)

REPORT_FILES = ("report.html", "report.json", "quantization_entropy.txt")


@dataclass
class AnalyzeRequest:
    """What to analyse: a compile request plus the analysis settings."""

    compile: "CompileRequest"  # calib is required: the analysis runs on that data
    out_dir: Path
    samples: int = 16  # calibration items the analysis runs on
    plot_layers: int = 12  # worst layers that get histogram and scatter plots
    options: AnalysisOptions = field(default_factory=AnalysisOptions)


def analyze_model(req: AnalyzeRequest, progress: Callable[[str, int], None] | None = None,
                  on_layers: Callable[[int, int], None] | None = None) -> AnalysisReport:
    """Compile, analyse and write the report folder; returns the report.

    on_layers(layers, samples) is called once the work is known (for a progress bar).
    """
    from npuc.calibration.dataset import open_calibration_set
    from npuc.driver import compile_model

    creq = req.compile
    if creq.calib is None:
        raise NpucError("npuc analyze needs data to run the model on: give --calib DATA (the calibration set)")
    if req.samples < 1:
        raise NpucError(f"--samples must be at least 1, got {req.samples}")
    out_dir = Path(req.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NpucError(f"output '{out_dir}' exists and is not a folder")
    t0 = time.perf_counter()
    result = compile_model(creq)
    t1 = time.perf_counter()
    fp, q = result.fp_optimized, result.quantized
    data = open_calibration_set(creq.calib, fp, creq.preprocessing)
    data = data.select(min(req.samples, len(data)), seed=req.options.seed)
    if on_layers is not None:
        from npuc.analysis.layers import find_layers

        on_layers(len(find_layers(fp, q)), len(data))
    report = analyze(fp, q, iter(data), req.options, progress, model_name=Path(creq.model).name)
    t2 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_plots(report, out_dir, req.plot_layers)
    t3 = time.perf_counter()
    report.seconds = {"compile": round(t1 - t0, 3), **report.seconds, "plots": round(t3 - t2, 3)}
    write_entropy_file(report.entropy, out_dir / "quantization_entropy.txt")
    report.seconds["total"] = round(time.perf_counter() - t0, 3)
    report.write_json(out_dir / "report.json")
    write_html(report, out_dir / "report.html")
    log.info("analysis report written to %s", out_dir)
    return report
