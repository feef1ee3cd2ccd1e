import io
from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest

from npuc.errors import GraphVerificationError, PassError, PluginError
from npuc.ir.graph import Graph
from npuc.passes.base import Pass, PassContext, PassResult, coerce_option, option
from npuc.passes.instruments import DumpIR, PrintAfter, TimePasses
from npuc.passes.manager import (
    DEFAULT_CLEANUP, PassManager, build_pipeline, default_pipeline, make_pass, parse_pipeline, truncate_after,
)
from npuc.passes.registry import PASSES, PassRegistry

from pass_testing import F32


def _graph():
    g = Graph("m")
    x = g.add_input("x", F32, (2, 3))
    t = g.outputs_of(g.add_op("Identity", [x], name="id"))[0]
    g.outputs = [g.outputs_of(g.add_op("Relu", [t], name="relu"))[0]]
    return g


@dataclass(frozen=True)
class Boom(Pass):
    """Always fails."""
    name: ClassVar[str] = "boom"
    npuc_error: bool = False

    def run(self, graph, ctx):
        graph.remove_op(graph.op("relu"))  # leave a half-done graph for the FAILED dump
        if self.npuc_error:
            raise PassError("the calibration set is empty")
        raise ValueError("bad thing")


@dataclass(frozen=True)
class Breaker(Pass):
    """Breaks an IR invariant."""
    name: ClassVar[str] = "breaker"

    def run(self, graph, ctx):
        graph.outputs = []
        return PassResult(True)


@dataclass(frozen=True)
class NeedsCalibration(Pass):
    """Needs calibration."""
    name: ClassVar[str] = "needs_calibration"
    requires: ClassVar[tuple[str, ...]] = ("calibration",)

    def run(self, graph, ctx):
        return PassResult(False, {"ranges": len(ctx.get("calibration"))})


@dataclass(frozen=True)
class Calibrate(Pass):
    """Provides calibration."""
    name: ClassVar[str] = "calibrate_stub"
    ensures: ClassVar[tuple[str, ...]] = ("calibration",)
    forget: bool = False

    def run(self, graph, ctx):
        if not self.forget:
            ctx.set("calibration", {"x": (0.0, 1.0)})
        return PassResult(False)


def test_run_records_and_history():
    g = _graph()
    ctx = PassContext()
    res = PassManager(build_pipeline(["remove_identity", "eliminate_dead_code"])).run(g, ctx)
    assert [r.name for r in res.records] == ["remove_identity", "eliminate_dead_code"]
    assert res.changed and res.records[0].result.stats == {"removed": 1}
    assert ctx.passes_run == ["remove_identity", "eliminate_dead_code"]
    assert list(res.stats()) == ["01-remove_identity", "02-eliminate_dead_code"]


def test_exception_names_pass_and_predecessors(tmp_path):
    g = _graph()
    pm = PassManager(build_pipeline(["fold_constants", "remove_identity"]) + [Boom()], [DumpIR(tmp_path)])
    with pytest.raises(PassError) as ei:
        pm.run(g)
    msg = str(ei.value)
    assert "pass 'boom' (#3 of 3; passes run before it: fold_constants, remove_identity) failed" in msg
    assert "ValueError: bad thing" in msg
    assert isinstance(ei.value.__cause__, ValueError)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00-input.npuir", "01-fold_constants.npuir", "02-remove_identity.npuir", "03-boom.FAILED.npuir"]
    assert "Relu" not in (tmp_path / "03-boom.FAILED.npuir").read_text()


def test_npuc_error_message_is_kept():
    with pytest.raises(PassError, match=r"pass 'boom' \(#1 of 1; it was the first pass\) failed: "
                                        r"the calibration set is empty$"):
        PassManager([Boom(npuc_error=True)]).run(_graph())


def test_verifier_runs_after_each_pass(tmp_path):
    with pytest.raises(GraphVerificationError, match=r"after pass 'breaker' \(#2 of 2; passes run before it: "
                                                     r"remove_identity\)[\s\S]*no outputs") as ei:
        PassManager(build_pipeline(["remove_identity"]) + [Breaker()], [DumpIR(tmp_path)]).run(_graph())
    assert ei.value.problems == ["the graph has no outputs"]
    assert (tmp_path / "02-breaker.FAILED.npuir").exists()


def test_broken_input_graph_is_reported_before_any_pass():
    g = _graph()
    g.outputs = []
    with pytest.raises(GraphVerificationError, match="before any pass"):
        PassManager(build_pipeline(["remove_identity"])).run(g)


def test_requires_and_ensures():
    with pytest.raises(PassError, match=r"'needs_calibration'.*cannot run: needs 'calibration'"):
        PassManager([NeedsCalibration()]).run(_graph())
    res = PassManager([Calibrate(), NeedsCalibration()]).run(_graph())
    assert res.records[1].result.stats == {"ranges": 1}
    with pytest.raises(PassError, match="promised to provide 'calibration'"):
        PassManager([Calibrate(forget=True)]).run(_graph())


def test_timing_and_print_after():
    err, out = io.StringIO(), io.StringIO()
    timer = TimePasses(stream=err)
    PassManager(default_pipeline(), [timer, PrintAfter(["remove_identity"], stream=out)]).run(_graph())
    table = err.getvalue()
    assert "pass timing" in table and "remove_identity" in table and "total" in table
    assert [r[1] for r in timer.rows] == list(DEFAULT_CLEANUP)
    text = out.getvalue()
    assert text.startswith("// ----- IR after remove_identity (pass 2) -----\n")
    assert text.count("IR after") == 1 and "Identity(" not in text


def test_dump_dir_is_cleaned_and_numbered(tmp_path):
    (tmp_path / "05-old.npuir").write_text("stale")
    (tmp_path / "notes.txt").write_text("keep me")
    PassManager(default_pipeline(), [DumpIR(tmp_path)]).run(_graph())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "00-input.npuir" and "05-old.npuir" not in names and "notes.txt" in names
    assert names[1:1 + len(DEFAULT_CLEANUP)] == [f"{i:02d}-{n}.npuir" for i, n in enumerate(DEFAULT_CLEANUP, 1)]


def test_parse_pipeline_with_options():
    passes = parse_pipeline("fold_constants(size_limit=10), prune_outputs(outputs=[a, b]),eliminate_dead_code")
    assert [p.name for p in passes] == ["fold_constants", "prune_outputs", "eliminate_dead_code"]
    assert passes[0].size_limit == 10 and passes[1].outputs == ("a", "b")
    assert passes[0].describe() == "fold_constants(size_limit=10)"
    assert parse_pipeline("recognize_activations(silu=false)")[0].silu is False


@pytest.mark.parametrize("text,msg", [
    ("fold_constant", "unknown pass 'fold_constant'; did you mean 'fold_constants'"),
    ("fold_constants(limit=3)", "has no option 'limit' (options: size_limit)"),
    ("fold_constants(size_limit=big)", "fold_constants.size_limit: 'big' is not an integer"),
    ("", "empty"),
])
def test_parse_pipeline_errors(text, msg):
    with pytest.raises(PassError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        parse_pipeline(text)


def test_truncate_after():
    p = default_pipeline()
    assert [x.name for x in truncate_after(p, "fold_batchnorm")] == list(DEFAULT_CLEANUP[:3])
    assert len(truncate_after(p, "fold_constants#2")) == DEFAULT_CLEANUP.index("fold_constants", 1) + 1
    assert truncate_after(p, "input") == []
    with pytest.raises(PassError, match="runs 0 time"):
        truncate_after(p, "prune_tail")
    with pytest.raises(PassError, match="did you mean 'fold_batchnorm'"):
        truncate_after(p, "fold_batchnrom")


def test_default_pipeline_variants():
    names = [p.name for p in default_pipeline(prune_tail=True, prune_outputs=("y",))]
    assert names[0] == "prune_outputs" and names[-2:] == ["prune_tail", "eliminate_dead_code"]


def test_coerce_option_types():
    assert coerce_option(tuple[str, ...], "a;b") == ("a", "b")
    assert coerce_option(Literal["min_max", "kl"], "kl") == "kl"
    with pytest.raises(ValueError, match="not one of"):
        coerce_option(Literal["min_max", "kl"], "mse")
    assert coerce_option(float | None, "none") is None
    assert coerce_option(bool, "enabled") is True


def test_registry_duplicates_and_sources():
    reg = PassRegistry(autoload_builtins=False)
    reg.register(Boom, "plugin file a.py")
    with pytest.raises(PluginError, match="pass 'boom' is registered twice: by plugin file a.py and by plugin file b.py"):
        reg.register(Boom, "plugin file b.py")
    assert PASSES.source("fold_batchnorm") == "builtin"
    assert set(DEFAULT_CLEANUP) <= set(PASSES.names())
    assert make_pass("prune_outputs", {"outputs": "a,b"}).outputs == ("a", "b")


def test_options_are_described():
    opts = {o.name: o for o in PASSES.get("fold_constants").options()}
    assert opts["size_limit"].type_name == "int" and opts["size_limit"].default == 1 << 16
    assert opts["size_limit"].doc
    assert PASSES.get("prune_outputs").options()[0].type_name == "list of str"


def test_option_rejects_mutable_default():
    with pytest.raises(TypeError):
        option([1, 2])
