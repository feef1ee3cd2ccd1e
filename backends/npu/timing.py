"""Per-layer timing model: cycles from MACs, bytes moved, data type and the target's description.

Per layer: cycles = max(compute cycles, memory cycles) + per-layer overhead.

* MAC layers (conv, transposed conv, gemm, matmul) run on a rows x cols MAC array:
  rows reduce over (input channels per group x kernel taps), cols produce output
  channels. A layer whose reduction or output channels do not fill the array
  wastes the rest (utilization < 1): small-channel and depthwise convs use the
  hardware poorly. 16-bit layers (either operand 16-bit) run at the target's
  16-bit MAC rate, float16/float32 layers at its float16 rate.
* Vector layers (elementwise incl. PRelu, pooling, LUT activations, softmax, concat, pad,
  resize) process output elements at the target's vector rate, in 8-bit, 16-bit or float16
  (`vector_passes`: softmax 3 passes, nearest resize 2, bilinear resize 4 taps per output).
* Layout-only layers (reshape, transpose, depth/space moves) go through the DMA
  engine at `layout_bytes_per_cycle`; conversion layers (Quantize, Dequantize,
  Requantize, Cast) at `conversion_elements_per_cycle`.
* Memory: graph inputs are read from and graph outputs written to DRAM.
  Weights stay resident in the weight part of SRAM while they fit (in layer
  order) and are streamed from DRAM every inference once it is full. A layer
  whose input plus output activations exceed the activation SRAM spills both
  to DRAM. Memory cycles = DRAM bytes / DRAM bytes per cycle + DRAM latency.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from npuc.backends.npu.target import Target
from npuc.ir.dtypes import DType

MAC_KINDS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
CONVERSION_KINDS = frozenset({"Quantize", "Dequantize", "Requantize", "Cast"})
#: vector layers that make several passes over their data
VECTOR_PASSES = {"Softmax": 3, "LogSoftmax": 3, "Resize": 2, "PRelu": 1}
#: a linear (bilinear) Resize reads four taps and makes two multiply-adds per axis for each output
LINEAR_RESIZE_PASSES = 4


def vector_passes(kind: str, attrs: dict[str, Any]) -> int:
    """Passes a vector layer makes over its data (nearest Resize 2, linear Resize 4, Softmax 3, else 1)."""
    if kind == "Resize" and attrs.get("mode") == "linear":
        return LINEAR_RESIZE_PASSES
    return VECTOR_PASSES.get(kind, 1)


@dataclass(frozen=True)
class TensorDesc:
    """What the timing model needs of one tensor."""

    shape: tuple[int, ...]
    dtype: DType
    is_const: bool = False
    is_graph_input: bool = False
    is_graph_output: bool = False

    @property
    def elements(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.elements * max(1, self.dtype.bits // 8)


@dataclass(frozen=True)
class LayerWork:
    """The work of one layer, independent of any target."""

    index: int
    name: str
    origin: tuple[str, ...]
    kind: str
    category: str  # mac | vector | layout | conversion
    dtype_key: str  # int8 | int16 | float16
    dtypes: str  # e.g. "i8*i8->i8"
    out_shape: tuple[int, ...]
    macs: int
    reduction: int  # values reduced per output (MAC layers)
    out_channels: int  # output channels produced in parallel (per group)
    out_elements: int
    in_elements: int  # non-constant input elements
    activation_bytes: int  # non-constant inputs + outputs
    weight_bytes: int
    io_dram_bytes: int  # graph inputs read + graph outputs written
    passes: int = 1  # vector layers: passes over the data (vector_passes)


def _dtype_key(dtypes: Iterable[DType]) -> str:
    ds = list(dtypes)
    if any(d.is_float for d in ds):
        return "float16"
    return "int16" if any(d.bits > 8 for d in ds) else "int8"


def layer_work(index: int, name: str, origin: Sequence[str], kind: str, attrs: dict[str, Any],
               inputs: Sequence[TensorDesc | None], outputs: Sequence[TensorDesc],
               layout_only: bool = False) -> LayerWork:
    """Describe one layer's work from its kind, attributes and tensors (used for IR graphs and binaries)."""
    ins = [t for t in inputs if t is not None]
    acts = [t for t in ins if not t.is_const]
    consts = [t for t in ins if t.is_const]
    out = outputs[0]
    macs, reduction, out_channels = 0, 1, 1
    if kind in MAC_KINDS and len(ins) >= 2:
        w = ins[1].shape
        if kind == "Conv":
            group = int(attrs.get("group", 1))
            reduction = w[1] * w[2] * w[3]
            out_channels = w[0] // group
            macs = out.elements * reduction
        elif kind == "ConvTranspose":
            group = int(attrs.get("group", 1))
            # every input pixel scatters into (Cout/group) x kh x kw outputs
            reduction = (w[0] // group)
            out_channels = w[1]
            macs = ins[0].elements * w[1] * w[2] * w[3]
        elif kind == "Gemm":
            reduction, out_channels = w[1], w[0]
            macs = out.elements * reduction
        else:  # MatMul
            a = ins[0].shape
            reduction = a[-1]
            out_channels = out.shape[-1] if out.shape else 1
            macs = out.elements * reduction
        category = "mac"
        key = _dtype_key([ins[0].dtype, ins[1].dtype])
    elif kind in CONVERSION_KINDS:
        category, key = "conversion", _dtype_key([out.dtype] + [t.dtype for t in acts])
    elif layout_only:
        category, key = "layout", _dtype_key([out.dtype])
    else:
        category, key = "vector", _dtype_key([out.dtype] + [t.dtype for t in acts])
    dtypes = "*".join(str(t.dtype) for t in ins[:2]) + "->" + ",".join(str(t.dtype) for t in outputs)
    io_bytes = sum(t.nbytes for t in acts if t.is_graph_input) + sum(t.nbytes for t in outputs if t.is_graph_output)
    return LayerWork(
        index=index, name=name, origin=tuple(origin), kind=kind, category=category, dtype_key=key,
        dtypes=dtypes, out_shape=tuple(out.shape), macs=int(macs), reduction=int(reduction),
        out_channels=int(out_channels), out_elements=sum(t.elements for t in outputs),
        in_elements=sum(t.elements for t in acts),
        activation_bytes=sum(t.nbytes for t in acts) + sum(t.nbytes for t in outputs),
        weight_bytes=sum(t.nbytes for t in consts), io_dram_bytes=int(io_bytes),
        passes=vector_passes(kind, attrs or {}),
    )


def layer_work_from_graph(graph) -> list[LayerWork]:
    """LayerWork for every op of an IR graph, in execution order."""
    in_ids = {id(t) for t in graph.inputs}
    out_ids = {id(t) for t in graph.outputs}

    def desc(t):
        if t is None:
            return None
        return TensorDesc(t.shape, t.dtype, t.is_const, id(t) in in_ids, id(t) in out_ids)

    works = []
    for i, op in enumerate(graph.ops()):
        works.append(layer_work(
            i, op.name, op.origin or (op.name,), op.kind, op.attrs,
            [desc(t) for t in graph.inputs_of(op)], [desc(t) for t in graph.outputs_of(op)],
            layout_only=graph.spec(op).layout_only,
        ))
    return works


@dataclass(frozen=True)
class LayerTiming:
    work: LayerWork
    compute_cycles: float
    memory_cycles: float
    cycles: int
    dram_bytes: int
    utilization: float

    @property
    def bound(self) -> str:
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"


@dataclass
class TimingReport:
    target: Target
    layers: list[LayerTiming] = field(default_factory=list)

    @property
    def total_cycles(self) -> int:
        return sum(lt.cycles for lt in self.layers)

    @property
    def latency_ms(self) -> float:
        return self.total_cycles / (self.target.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        return 1e3 / self.latency_ms if self.latency_ms > 0 else float("inf")

    @property
    def total_macs(self) -> int:
        return sum(lt.work.macs for lt in self.layers)

    @property
    def total_weight_bytes(self) -> int:
        return sum(lt.work.weight_bytes for lt in self.layers)

    def percent(self, lt: LayerTiming) -> float:
        total = self.total_cycles
        return 100.0 * lt.cycles / total if total else 0.0


def _fill(n: int, width: int) -> float:
    """Fraction of `width`-wide hardware lanes doing useful work for n values."""
    n = max(1, n)
    return n / (math.ceil(n / width) * width)


def estimate(works: Sequence[LayerWork], target: Target) -> TimingReport:
    """Price every layer on `target`."""
    report = TimingReport(target)
    weight_budget = target.weight_sram_bytes
    resident = 0
    for w in works:
        utilization = 1.0
        if w.category == "mac":
            utilization = _fill(w.reduction, target.array_rows) * _fill(w.out_channels, target.array_cols)
            compute = w.macs / (target.macs_per_cycle[w.dtype_key] * utilization)
        elif w.category == "vector":
            elements = max(w.in_elements, w.out_elements)  # pooling reads more than it writes
            compute = w.passes * elements / target.vector_elements_per_cycle[w.dtype_key]
        elif w.category == "layout":
            compute = w.activation_bytes / 2 / target.layout_bytes_per_cycle
        else:  # conversion
            compute = w.out_elements / target.conversion_elements_per_cycle
        dram = w.io_dram_bytes
        if w.weight_bytes:
            if resident + w.weight_bytes <= weight_budget:
                resident += w.weight_bytes
            else:
                dram += w.weight_bytes
        if w.activation_bytes > target.activation_sram_bytes:
            dram += w.activation_bytes
        memory = dram / target.dram_bytes_per_cycle + (target.dram_latency_cycles if dram else 0)
        cycles = int(math.ceil(max(compute, memory))) + target.layer_overhead_cycles
        report.layers.append(LayerTiming(w, compute, memory, cycles, int(dram), utilization))
    return report


CSV_COLUMNS = ("index", "name", "origin", "op", "dtypes", "output_shape", "macs", "weight_bytes",
               "dram_bytes", "cycles", "percent", "utilization", "bound")


def to_csv(report: TimingReport) -> str:
    """The per-layer table as CSV (deterministic)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for lt in report.layers:
        w = lt.work
        writer.writerow([
            w.index, w.name, "|".join(w.origin), w.kind, w.dtypes, "x".join(map(str, w.out_shape)),
            w.macs, w.weight_bytes, lt.dram_bytes, lt.cycles, f"{report.percent(lt):.2f}",
            f"{lt.utilization:.3f}", lt.bound,
        ])
    return buf.getvalue()


def summary_lines(report: TimingReport) -> list[str]:
    return [
        f"target       {report.target.name} ({report.target.description})",
        f"layers       {len(report.layers)}",
        f"MACs         {report.total_macs:,}",
        f"weights      {report.total_weight_bytes:,} bytes",
        f"cycles       {report.total_cycles:,}",
        f"latency      {report.latency_ms:.3f} ms",
        f"throughput   {report.fps:.1f} FPS",
    ]


def render_table(report: TimingReport, limit: int | None = None):
    """A rich Table of the per-layer figures (the `limit` most expensive layers when given)."""
    from rich.table import Table

    table = Table(title=f"per-layer timing on {report.target.name}", show_lines=False)
    for col, justify in (("#", "right"), ("layer", "left"), ("op", "left"), ("dtypes", "left"),
                         ("output", "left"), ("MACs", "right"), ("weights B", "right"), ("DRAM B", "right"),
                         ("cycles", "right"), ("%", "right"), ("util", "right")):
        table.add_column(col, justify=justify)
    rows = report.layers
    if limit is not None:
        rows = sorted(rows, key=lambda lt: -lt.cycles)[:limit]
    for lt in rows:
        w = lt.work
        table.add_row(str(w.index), w.name, w.kind, w.dtypes, "x".join(map(str, w.out_shape)), f"{w.macs:,}",
                      f"{w.weight_bytes:,}", f"{lt.dram_bytes:,}", f"{lt.cycles:,}", f"{report.percent(lt):.1f}",
                      f"{lt.utilization:.2f}")
    return table
