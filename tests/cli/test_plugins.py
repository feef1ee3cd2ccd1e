import importlib.metadata
import sys
import textwrap
from pathlib import Path

import pytest

from npuc import plugins
from npuc.cli import main
from npuc.errors import PluginError
from npuc.passes.registry import PASSES

from cli_models import conv_bn_relu_mul1

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin_example"
PLUGIN_FILE = str(EXAMPLE / "my_plugin.py")


@pytest.fixture(autouse=True)
def isolated():
    """Plugins loaded by a test are forgotten after it."""
    with plugins.isolated_registries():
        yield


@pytest.fixture
def tiny(tmp_path):
    return str(conv_bn_relu_mul1(tmp_path / "tiny.onnx"))


def _write(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return str(p)


def test_example_plugin_pass_runs_from_the_cli(tiny, capsys):
    assert main(["--plugin", PLUGIN_FILE, "dump", tiny, "--passes", "fold_constants,fold_mul_by_one",
                 "--time-passes"]) == 0
    cap = capsys.readouterr()
    assert "Mul(" not in cap.out and "BatchNormalization(" in cap.out
    assert "fold_mul_by_one" in cap.err and "removed=1" in cap.err


def test_example_plugin_is_listed_with_its_source(capsys):
    assert main(["--plugin", PLUGIN_FILE, "passes", "fold_mul_by_one"]) == 0
    out = capsys.readouterr().out
    assert f"fold_mul_by_one  [plugin file {PLUGIN_FILE}]" in out
    assert "tolerance: float = 0.0" in out


def test_plugin_is_not_visible_without_flag(tiny, capsys):
    assert main(["dump", tiny, "--passes", "fold_mul_by_one"]) == 2
    assert "unknown pass 'fold_mul_by_one'" in capsys.readouterr().err


def test_duplicate_of_builtin_names_both_sources(tmp_path, capsys):
    dup = _write(tmp_path, "dup.py", """
        from dataclasses import dataclass
        from typing import ClassVar
        from npuc.passes.base import Pass, PassResult
        from npuc.plugins import Plugin

        @dataclass(frozen=True)
        class MyFold(Pass):
            "my own constant folding"
            name: ClassVar[str] = "fold_constants"
            def run(self, graph, ctx):
                return PassResult()

        PLUGIN = Plugin("dup", passes=lambda: [MyFold])
    """)
    assert main(["--plugin", dup, "passes"]) == 2
    err = capsys.readouterr().err
    assert f"pass 'fold_constants' is registered twice: by builtin and by plugin file {dup}" in err
    assert "Traceback" not in err


def test_duplicate_between_two_plugin_files(tmp_path):
    other = _write(tmp_path, "other.py", (EXAMPLE / "my_plugin.py").read_text())
    with pytest.raises(PluginError, match=rf"pass 'fold_mul_by_one' is registered twice: by plugin file "
                                          rf"{PLUGIN_FILE} and by plugin file {other}"):
        plugins.load_plugins([PLUGIN_FILE, other])


def test_failed_plugin_leaves_no_trace(tmp_path):
    bad = _write(tmp_path, "half.py", """
        from npuc.plugins import Plugin
        import my_plugin_module_that_is_not_there_either  # noqa
    """)
    with pytest.raises(PluginError, match="failed to import: ModuleNotFoundError"):
        plugins.load_plugins([bad])
    mixed = _write(tmp_path, "mixed.py", """
        import sys
        sys.path.insert(0, %r)
        from my_plugin import FoldMulByOne
        from npuc.passes.fold_constants import FoldConstants
        from npuc.plugins import Plugin
        PLUGIN = Plugin("mixed", passes=lambda: [FoldMulByOne, FoldConstants])
    """ % str(EXAMPLE))
    with pytest.raises(PluginError, match="'fold_constants' is registered twice"):
        plugins.load_plugins([mixed])
    assert "fold_mul_by_one" not in PASSES.names()  # all or nothing


def test_plugin_file_errors(tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        plugins.load_plugins([str(tmp_path / "missing.py")])
    empty = _write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(PluginError, match=r"must define PLUGIN = npuc.plugins.Plugin\(...\), found nothing"):
        plugins.load_plugins([empty])


def test_plugin_ops_and_kernels(tmp_path):
    """A plugin may add an op kind and its float kernel; the executor then runs it."""
    path = _write(tmp_path, "square.py", """
        from npuc.ir.op_spec import OpSpec
        from npuc.ir.ops._infer import same_as_input
        from npuc.plugins import Plugin

        def _square(op, ins):
            return [ins[0] * ins[0]]

        PLUGIN = Plugin("square", ops=lambda: [OpSpec("Square", ("x",), same_as_input, doc="x*x")],
                        kernels=lambda: {"Square": _square})
    """)
    plugins.load_plugins([path])
    import numpy as np

    from npuc.backends.reference.executor import run_graph
    from npuc.ir.dtypes import DType
    from npuc.ir.graph import Graph
    from npuc.ir.op_spec import OPS

    assert OPS.source("Square") == f"plugin file {path}"
    g = Graph("sq")
    x = g.add_input("x", DType.FLOAT32, (3,))
    g.outputs = [g.outputs_of(g.add_op("Square", [x]))[0]]
    np.testing.assert_array_equal(run_graph(g, {"x": np.array([1, 2, 3], np.float32)})["Square"], [1, 4, 9])
    dup = _write(tmp_path, "relu_kernel.py", """
        from npuc.plugins import Plugin
        PLUGIN = Plugin("relu2", kernels=lambda: {"Relu": lambda op, ins: [ins[0]]})
    """)
    with pytest.raises(PluginError, match=f"float kernel for op kind 'Relu' is registered twice: by builtin and by "
                                          f"plugin file {dup}"):
        plugins.load_plugins([dup])


def test_entry_point_discovery(monkeypatch, capsys):
    """What `pip install examples/plugin_example` sets up: an entry point in the npuc.plugins group."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    ep = importlib.metadata.EntryPoint("example", "my_plugin:PLUGIN", plugins.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def fake(**kw):
        found = list(real(**kw))
        return found + [ep] if kw.get("group") == plugins.ENTRY_POINT_GROUP else found

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    assert main(["passes", "fold_mul_by_one"]) == 0
    assert "fold_mul_by_one  [entry point 'example = my_plugin:PLUGIN']" in capsys.readouterr().out
    sys.modules.pop("my_plugin", None)


def test_builtin_plugin_is_an_entry_point():
    eps = importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)
    assert any(ep.name == "builtin" and ep.value == "npuc.builtin_plugin:PLUGIN" for ep in eps)
