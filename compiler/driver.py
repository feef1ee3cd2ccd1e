"""The compile pipeline: import -> float rewrites -> calibrate -> quantize -> lower -> emit -> price.

`compile_model` does the work and returns everything it made; `write_outputs`
puts the files a user keeps in a folder, atomically, only after the whole
pipeline succeeded (a failed compile never damages an earlier good output).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from npuc import __version__
from npuc.errors import NpucError, ScriptError
from npuc.ir.graph import Graph

log = logging.getLogger(__name__)


@dataclass
class CompileRequest:
    """What to compile and how (CLI flags; the script adds to it)."""

    model: Path
    script: Path | None = None
    calib: str | list[str] | None = None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    target: str = "npu-s"
    target_paths: list[Path] = field(default_factory=list)
    overrides: Path | None = None
    preprocessing: Any = None  # npuc.calibration.Preprocessing; None: derived from the model input
    dump_dir: Path | None = None
    strict: bool = False
    quantize_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompileResult:
    native: Graph  # as imported
    fp_optimized: Graph  # after the float rewrites
    quantized: Graph
    program: Any  # npuc.backends.npu.program.Program
    binary: bytes
    timing: Any  # npuc.backends.npu.timing.TimingReport
    stage_seconds: dict[str, float]
    warnings: list[str]
    pass_records: list[Any]


class _Stages:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _instruments(req: CompileRequest, stage: str) -> list:
    if req.dump_dir is None:
        return []
    from npuc.passes.instruments import DumpIR

    return [DumpIR(Path(req.dump_dir) / stage)]


def _run(passes, graph: Graph, ctx, req: CompileRequest, stage: str, records: list) -> None:
    from npuc.passes.manager import PassManager

    if not passes:
        return
    result = PassManager(passes, _instruments(req, stage)).run(graph, ctx)
    records.extend(getattr(result, "records", []) or [])


@dataclass
class FloatStage:
    """The model after import and the float rewrites, with what the script set for later stages."""

    native: Graph
    graph: Graph  # fp-optimized; later stages rewrite it in place
    pipeline: Any  # npuc.script_config.PipelineSettings or None
    ctx: Any  # npuc.passes.base.PassContext shared by every stage
    stages: _Stages
    warnings: list[str]
    records: list


def build_float(req: CompileRequest) -> FloatStage:
    """Import the model and run the float rewrites (cleanup, normalization, script float passes)."""
    from npuc.calibration import insert_normalization
    from npuc.frontends import load_model
    from npuc.passes.base import PassContext
    from npuc.passes.manager import default_pipeline
    from npuc.script import bind, layers_from_graph, parse_file
    from npuc.script_config import import_settings, pipeline_settings, script_registry

    stages = _Stages()
    warnings: list[str] = []
    records: list = []
    with stages("import"):
        check_script_path(req.script)
        script = parse_file(req.script) if req.script else None
        registry = script_registry()
        shapes, outputs = {}, []
        if script is not None:
            early = bind(script, registry, None, strict=req.strict)
            settings = import_settings(early)
            shapes, outputs = settings.input_shapes, settings.outputs
        shapes = {**shapes, **req.input_shapes}
        outputs = list(req.outputs) or outputs
        graph = load_model(req.model, input_shapes=shapes or None, outputs=outputs or None)
        native = graph.copy()

    with stages("optimize"):
        ctx = PassContext()
        if req.calib is not None:  # float passes may use the data too (e.g. bias absorption in CLE)
            ctx.options["calibration_data"] = req.calib
            if req.preprocessing is not None:
                ctx.options["preprocessing"] = req.preprocessing
        _run(default_pipeline(), graph, ctx, req, "1-cleanup", records)
        pipeline = None
        if script is not None:
            # The normalization layers go in first, named after the script's assignment
            # (`normalization1 = normalization(...)` -> layers normalization1/sub, normalization1/mul), so the
            # other lines can select them; then the script is bound against the model with them.
            bound = bind(script, registry, layers_from_graph(graph), strict=False)
            for mean, std, inputs, label in pipeline_settings(bound).normalizations:
                for i, name in enumerate(inputs or [None]):
                    insert_normalization(graph, mean, std, input_name=name,
                                         name=label if len(inputs or [None]) == 1 else f"{label}_{i}")
            bound = bind(script, registry, layers_from_graph(graph), strict=req.strict)
            pipeline = pipeline_settings(bound)
            warnings += [d.format() for d in bound.warnings] + pipeline.notes
            for text in warnings:  # shown now: a later error must not hide them
                log.warning("%s", text)
            _run(pipeline.float_passes, graph, ctx, req, "2-float-passes", records)
    return FloatStage(native, graph, pipeline, ctx, stages, warnings, records)


def compile_model(req: CompileRequest) -> CompileResult:
    """Run the whole pipeline. Raises NpucError subclasses with messages a user can act on."""
    from npuc.backends.npu.emit import emit
    from npuc.backends.npu.lower import lower
    from npuc.backends.npu.target import load_target
    from npuc.backends.npu.timing import estimate, layer_work_from_graph
    from npuc.calibration import apply_encodings
    from npuc.passes.manager import build_pipeline
    from npuc.quantization.config import QuantConfig

    target = load_target(req.target, req.target_paths)  # fail fast on a bad target name
    fs = build_float(req)
    graph, pipeline, ctx, stages, records = fs.graph, fs.pipeline, fs.ctx, fs.stages, fs.records
    fp_optimized = graph.copy()
    ctx.set("float_graph", fp_optimized)

    with stages("calibrate"):
        overrides = ([req.overrides] if req.overrides else []) + (pipeline.overrides if pipeline else [])
        for path in overrides:
            apply_encodings(graph, path)
        calibrate_options = dict(pipeline.calibrate_options) if pipeline else {}
        if pipeline and pipeline.calibration_layers:
            calibrate_options["layer_methods"] = (tuple(calibrate_options.get("layer_methods", ()))
                                                  + tuple(pipeline.calibration_layers))
        fixed = bool(graph.meta.get("fixed_encodings"))
        if req.calib is not None:
            _run(build_pipeline([("calibrate", calibrate_options)]), graph, ctx, req, "3-calibrate", records)
        elif overrides or fixed:
            ctx.set("calibration", "fixed encodings")
        else:
            raise NpucError(
                "no calibration data: quantization needs activation ranges. Give a calibration set with "
                "--calib (a folder, a glob like 'calib/*.jpg', or .npy/.npz files; 32-96 items is typical), "
                "or fixed encodings with --quantization-overrides enc.json / quantization_overrides(...) "
                "in the script.")

    with stages("quantize"):
        options = {**(pipeline.quantize_options if pipeline else {}), **req.quantize_options}
        ctx.set("quant_config", pipeline.quant_config if pipeline else QuantConfig())
        passes = build_pipeline([("quantize", options), "insert_dtype_conversions"])
        passes += pipeline.post_passes if pipeline else []
        _run(passes, graph, ctx, req, "4-quantize", records)

    with stages("lower"):
        metadata = {"npuc_version": __version__, "target": target.name, "source": str(Path(req.model).name)}
        if req.preprocessing is not None:  # how images were fed, so `npuc run IMAGE` feeds them the same way
            metadata["preprocessing"] = {k: list(v) if isinstance(v, tuple) else v
                                         for k, v in dataclasses.asdict(req.preprocessing).items()
                                         if k not in ("size", "layout")}
        program = lower(graph, metadata=metadata)
        binary = emit(program)

    with stages("timing"):
        report = estimate(layer_work_from_graph(graph), target)

    return CompileResult(fs.native, fp_optimized, graph, program, binary, report, stages.seconds, fs.warnings,
                         records)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_outputs(result: CompileResult, out_dir: Path, export_encodings: Path | None = None) -> dict[str, Path]:
    """Write model.npub, model_info.txt and layers.csv (and encodings) into `out_dir`."""
    from npuc.backends.npu.timing import to_csv
    from npuc.calibration import export_encodings as _export
    from npuc.model_info import model_info_text

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NpucError(f"output '{out_dir}' exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "binary": out_dir / "model.npub",
        "model_info": out_dir / "model_info.txt",
        "layers": out_dir / "layers.csv",
    }
    _write_atomic(files["binary"], result.binary)
    _write_atomic(files["model_info"], model_info_text(result.program).encode("utf-8"))
    _write_atomic(files["layers"], to_csv(result.timing).encode("utf-8"))
    if export_encodings is not None:
        _export(result.quantized, export_encodings)
        files["encodings"] = Path(export_encodings)
    return files


def check_script_path(path: Path | None) -> None:
    if path is not None and not Path(path).is_file():
        raise ScriptError(f"model script '{path}' does not exist")
