"""Instruments the PassManager calls around every pass: IR dumps, timing, print-after.

An instrument subclasses `Instrument` and overrides the hooks it needs. Hooks
receive the pass index (1-based; 0 is the input graph) so dumps can be numbered.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

from npuc.errors import NpucError
from npuc.passes.base import Pass, PassContext, PassResult

if TYPE_CHECKING:
    from npuc.ir.graph import Graph

FORMATS = ("text", "dot", "json")
_SUFFIX = {"text": ".npuir", "dot": ".dot", "json": ".json"}


def render(graph: "Graph", fmt: str = "text") -> str:
    """The graph as text in one of FORMATS."""
    from npuc.ir import printer

    if fmt == "text":
        return printer.to_text(graph)
    if fmt == "dot":
        return printer.to_dot(graph)
    if fmt == "json":
        return printer.to_json(graph)
    raise ValueError(f"unknown IR format '{fmt}' (choose from {', '.join(FORMATS)})")


class Instrument:
    """Hooks around a pipeline run. All are no-ops by default."""

    def before_pipeline(self, graph: "Graph", ctx: PassContext) -> None: ...

    def before_pass(self, index: int, pass_: Pass, graph: "Graph", ctx: PassContext) -> None: ...

    def after_pass(self, index: int, pass_: Pass, graph: "Graph", ctx: PassContext,
                   result: PassResult, seconds: float) -> None: ...

    def pass_failed(self, index: int, pass_: Pass, graph: "Graph", ctx: PassContext, error: BaseException) -> None: ...

    def after_pipeline(self, graph: "Graph", ctx: PassContext, failed: bool) -> None: ...


class DumpIR(Instrument):
    """Numbered IR dumps: `00-input.npuir`, `01-fold_constants.npuir`, ... and `NN-<pass>.FAILED.npuir`.

    Old numbered dumps in the folder are deleted first so a folder never mixes two runs.
    """

    _OLD = re.compile(r"^\d\d+-.+\.(npuir|dot|json)$")

    def __init__(self, folder: str | Path, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown IR format '{fmt}'")
        self.folder = Path(folder)
        self.fmt = fmt
        self.written: list[Path] = []

    def _write(self, stem: str, graph: "Graph") -> None:
        path = self.folder / (stem + _SUFFIX[self.fmt])
        try:
            path.write_text(render(graph, self.fmt), encoding="utf-8")
        except OSError as exc:
            raise NpucError(f"cannot write the IR dump {path}: {exc.strerror or exc}") from None
        self.written.append(path)

    def before_pipeline(self, graph, ctx):
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for old in self.folder.iterdir():
                if old.is_file() and self._OLD.match(old.name):
                    old.unlink()
        except OSError as exc:
            raise NpucError(f"cannot use '{self.folder}' as the IR dump folder: {exc.strerror or exc}") from None
        self._write("00-input", graph)

    def after_pass(self, index, pass_, graph, ctx, result, seconds):
        self._write(f"{index:02d}-{pass_.name}", graph)

    def pass_failed(self, index, pass_, graph, ctx, error):
        try:
            self._write(f"{index:02d}-{pass_.name}.FAILED", graph)
        except Exception:  # noqa: BLE001 - a half-rewritten graph may not print; the pass's error matters more
            try:
                (self.folder / f"{index:02d}-{pass_.name}.FAILED{_SUFFIX[self.fmt]}").write_text(
                    f"# the graph could not be printed after '{pass_.name}' failed: {error}\n", encoding="utf-8")
            except OSError:
                pass


class TimePasses(Instrument):
    """Collects wall time per pass; prints a table (rich) after the pipeline when `stream` is given."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.rows: list[tuple[int, str, float, bool, dict]] = []

    def after_pass(self, index, pass_, graph, ctx, result, seconds):
        self.rows.append((index, pass_.describe(), seconds, result.changed, dict(result.stats)))

    def after_pipeline(self, graph, ctx, failed):
        if self.stream is not None and self.rows:
            self.print(self.stream)

    def table(self):
        from rich.table import Table

        total = sum(r[2] for r in self.rows) or 1e-12
        table = Table(title="pass timing", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("pass")
        table.add_column("ms", justify="right")
        table.add_column("%", justify="right")
        table.add_column("changed")
        table.add_column("stats")
        for index, name, seconds, changed, stats in self.rows:
            table.add_row(str(index), name, f"{seconds * 1e3:.2f}", f"{100 * seconds / total:.1f}",
                          "yes" if changed else "no", ", ".join(f"{k}={v}" for k, v in stats.items()))
        table.add_row("", "total", f"{total * 1e3:.2f}", "100.0", "", "")
        return table

    def print(self, stream: TextIO) -> None:
        from rich.console import Console

        Console(file=stream, width=120, highlight=False).print(self.table())


class PrintAfter(Instrument):
    """Print the IR after each run of the named passes (all passes with '*')."""

    def __init__(self, names: Sequence[str], stream: TextIO | None = None, fmt: str = "text") -> None:
        self.names = set(names)
        self.stream = stream
        self.fmt = fmt

    def after_pass(self, index, pass_, graph, ctx, result, seconds):
        if pass_.name in self.names or "*" in self.names:
            out = self.stream or sys.stderr
            out.write(f"// ----- IR after {pass_.describe()} (pass {index}) -----\n")
            out.write(render(graph, self.fmt))
            out.flush()
