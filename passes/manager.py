"""The pass manager: runs an explicit, ordered list of passes with checks and instruments.

Around every pass it checks `requires` and `check()`, runs the pass, checks
`ensures`, runs the IR verifier and calls the instruments. Any failure is an
NpucError naming the pass, its position and the passes that ran before it.

Pipelines are plain lists of pass instances. `build_pipeline` makes one from
names (or (name, options) pairs) and `parse_pipeline` from CLI text such as
``"fold_constants,prune_outputs(outputs=[a, b]),eliminate_dead_code"``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from npuc.errors import GraphVerificationError, NpucError, PassError
from npuc.passes.base import Pass, PassContext, PassRecord, PassResult, coerce_option
from npuc.passes.instruments import Instrument

if TYPE_CHECKING:
    from npuc.ir.graph import Graph

log = logging.getLogger(__name__)

#: The default graph-cleanup pipeline (prune_tail / prune_outputs only when asked for).
DEFAULT_CLEANUP: tuple[str, ...] = (
    "fold_constants",
    "remove_identity",
    "fold_batchnorm",
    "recognize_activations",
    "fuse_scale",
    "fuse_bias",
    "fuse_activations",
    "fold_constants",
    "eliminate_dead_code",
)


@dataclass
class PipelineResult:
    """What a pipeline run did: one record per pass, in order."""

    records: list[PassRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(r.result.changed for r in self.records)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.records)

    def stats(self) -> dict[str, dict]:
        """{'03-fold_batchnorm': {'folded': 35}, ...}"""
        return {f"{r.index:02d}-{r.name}": dict(r.result.stats) for r in self.records}


class PassManager:
    """Runs passes in the given order on a graph, in place.

    >>> pm = PassManager(build_pipeline(DEFAULT_CLEANUP), instruments=[DumpIR("dumps")])
    >>> result = pm.run(graph)            # or pm.run(graph, ctx) to share state with the caller
    """

    def __init__(self, passes: Sequence[Pass], instruments: Sequence[Instrument] = (), verify: bool = True) -> None:
        for p in passes:
            if not isinstance(p, Pass):
                raise TypeError(f"pipeline entries must be Pass instances, got {p!r}")
        self.passes = list(passes)
        self.instruments = list(instruments)
        self.verify = verify

    def __repr__(self) -> str:
        return f"PassManager([{', '.join(p.describe() for p in self.passes)}])"

    def run(self, graph: "Graph", ctx: PassContext | None = None) -> PipelineResult:
        ctx = ctx if ctx is not None else PassContext()
        result = PipelineResult()
        if self.verify:
            self._verify(graph, "of the input graph (before any pass)")
        for inst in self.instruments:
            inst.before_pipeline(graph, ctx)
        failed = True
        try:
            for index, pass_ in enumerate(self.passes, start=1):
                record = self._run_one(index, pass_, graph, ctx)
                ctx.history.append(record)
                result.records.append(record)
            failed = False
        finally:
            for inst in self.instruments:
                inst.after_pipeline(graph, ctx, failed)
        return result

    # ---------------------------------------------------------------- internals
    def _where(self, index: int, pass_: Pass, ctx: PassContext) -> str:
        before = ctx.passes_run
        ran = f"passes run before it: {', '.join(before)}" if before else "it was the first pass"
        return f"pass '{pass_.name}' (#{index} of {len(self.passes)}; {ran})"

    def _run_one(self, index: int, pass_: Pass, graph: "Graph", ctx: PassContext) -> PassRecord:
        missing = [k for k in pass_.requires if not ctx.has(k)]
        problems = [f"needs '{k}', which no earlier pass provided" for k in missing]
        problems += list(pass_.check(graph, ctx))
        if problems:
            raise PassError(f"{self._where(index, pass_, ctx)} cannot run: " + "; ".join(problems))
        for inst in self.instruments:
            inst.before_pass(index, pass_, graph, ctx)
        log.debug("running pass %d: %s", index, pass_.describe())
        t0 = time.perf_counter()
        try:
            res = pass_.run(graph, ctx)
            if not isinstance(res, PassResult):
                raise TypeError(f"run() returned {type(res).__name__}, expected PassResult")
            unmet = [k for k in pass_.ensures if not ctx.has(k)]
            if unmet:
                raise PassError(f"it promised to provide {', '.join(repr(k) for k in unmet)} but did not")
        except Exception as exc:
            self._fail(index, pass_, graph, ctx, exc)
            cause = str(exc) if isinstance(exc, NpucError) else f"{type(exc).__name__}: {exc}"
            log.debug("pass %s raised", pass_.name, exc_info=True)
            raise PassError(f"{self._where(index, pass_, ctx)} failed: {cause}") from exc
        seconds = time.perf_counter() - t0
        if self.verify:
            problems = _find_problems(graph)
            if problems:
                err = GraphVerificationError(problems, f"after {self._where(index, pass_, ctx)}")
                self._fail(index, pass_, graph, ctx, err)
                raise err
        for inst in self.instruments:
            inst.after_pass(index, pass_, graph, ctx, res, seconds)
        log.info("pass %s: changed=%s %s (%.1f ms)", pass_.describe(), res.changed, res.stats, seconds * 1e3)
        return PassRecord(index, pass_.name, pass_, res, seconds)

    def _fail(self, index: int, pass_: Pass, graph: "Graph", ctx: PassContext, exc: BaseException) -> None:
        for inst in self.instruments:
            try:
                inst.pass_failed(index, pass_, graph, ctx, exc)
            except Exception:  # noqa: BLE001 - never hide the pass's own error behind an instrument's
                log.warning("instrument %r failed while reporting a pass failure", inst, exc_info=True)

    def _verify(self, graph: "Graph", where: str) -> None:
        problems = _find_problems(graph)
        if problems:
            raise GraphVerificationError(problems, where)


def _find_problems(graph: "Graph") -> list[str]:
    from npuc.ir.verify import find_problems

    return find_problems(graph)


# ------------------------------------------------------------ building pipelines
PassSpec = str | Pass | tuple[str, Mapping[str, Any]]


def make_pass(name: str, options: Mapping[str, Any] | None = None) -> Pass:
    """An instance of the registered pass `name`; option values may be strings (converted to the field type)."""
    from npuc.passes.registry import PASSES

    cls = PASSES.get(name)
    infos = {o.name: o for o in cls.options()}
    kwargs = {}
    for key, value in (options or {}).items():
        if key not in infos:
            known = ", ".join(infos) or "none"
            raise PassError(f"pass '{name}' has no option '{key}' (options: {known})")
        try:
            kwargs[key] = coerce_option(infos[key].type, value, f"{name}.{key}")
        except ValueError as exc:
            raise PassError(str(exc)) from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise PassError(f"pass '{name}': {exc}") from None


def build_pipeline(specs: Sequence[PassSpec]) -> list[Pass]:
    """Pass instances from names, (name, options) pairs or instances, in the given order."""
    out: list[Pass] = []
    for spec in specs:
        if isinstance(spec, Pass):
            out.append(spec)
        elif isinstance(spec, str):
            out.append(make_pass(spec))
        else:
            name, options = spec
            out.append(make_pass(name, options))
    return out


def default_pipeline(prune_tail: bool = False, prune_outputs: Sequence[str] = ()) -> list[Pass]:
    """The default cleanup; output pruning first and tail pruning before the final DCE when asked for."""
    specs: list[PassSpec] = []
    if prune_outputs:
        specs.append(("prune_outputs", {"outputs": tuple(prune_outputs)}))
    specs += list(DEFAULT_CLEANUP[:-1])
    if prune_tail:
        specs.append("prune_tail")
    specs.append(DEFAULT_CLEANUP[-1])
    return build_pipeline(specs)


def parse_pipeline(text: str) -> list[Pass]:
    """Passes from text: ``name, name(opt=value, opt=[a, b]), ...``."""
    specs: list[PassSpec] = []
    for item in _split_top(text, ","):
        item = item.strip()
        if not item:
            continue
        if "(" in item:
            if not item.endswith(")"):
                raise PassError(f"cannot read pass '{item}': expected name(option=value, ...)")
            name, _, args = item[:-1].partition("(")
            options: dict[str, str] = {}
            for arg in _split_top(args, ","):
                if not arg.strip():
                    continue
                key, eq, value = arg.partition("=")
                if not eq:
                    raise PassError(f"pass '{name.strip()}': option '{arg.strip()}' must be written key=value")
                options[key.strip()] = value.strip().strip("'\"")
            specs.append((name.strip(), options))
        else:
            specs.append(item)
    if not specs:
        raise PassError("the pass list is empty")
    return build_pipeline(specs)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside (), [] and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def truncate_after(passes: Sequence[Pass], after: str) -> list[Pass]:
    """The pipeline up to and including the first run of `after` ('name#2' for the second run, 'input' for none)."""
    if after in ("input", "none", "0"):
        return []
    name, _, nth = after.partition("#")
    try:
        want = int(nth) if nth else 1
    except ValueError:
        raise PassError(f"--after {after!r}: write NAME or NAME#N (N-th run of that pass)") from None
    seen = 0
    for i, p in enumerate(passes):
        if p.name == name:
            seen += 1
            if seen == want:
                return list(passes[: i + 1])
    names = [p.name for p in passes]
    from npuc.passes.registry import PASSES

    if name not in PASSES:
        PASSES.get(name)  # raises with did-you-mean
    runs = names.count(name)
    raise PassError(
        f"pass '{name}' runs {runs} time(s) in this pipeline, so --after {after!r} is not in it "
        f"(pipeline: {', '.join(names)})"
    )
