"""Binding: commands, options, conversion, selectors resolved against a synthetic model."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Literal, Optional

import pytest

from npuc.errors import PluginError
from npuc.script.binder import bind
from npuc.script.commands import LAYER_SELECTOR, CommandRegistry, ScriptCommand
from npuc.script.diagnostics import ScriptDiagnosticError
from npuc.script.layers import LayerRef, layers_from_graph
from npuc.script.options import Kind, LayerSelection
from npuc.script.parser import parse, parse_file
from npuc.script.registry import builtin_registry, default_registry

from script_testing import CORPUS


def bind_text(text, registry, layers=None, strict=False, file="s.alls"):
    return bind(parse(text, file), registry, layers, strict=strict)


def selected(text, registry, layers):
    bound = bind_text(text, registry, layers)
    return bound.directives[0].selected(), bound.warnings


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_binds_without_errors(path, registry):
    bound = bind(parse_file(path), registry)
    assert len(bound.directives) == len(bound.script.statements)


def test_spec_example_binds(registry):
    bound = bind(parse_file(CORPUS[0]), registry)
    assert not bound.warnings
    norm, calib, pre, post, q1, q2, q3 = bound.directives
    assert norm.targets == ("normalization1",)
    assert norm.args["mean"] == [123.675, 116.28, 103.53]
    assert calib.variant.name == "calibration" and calib.settings() == {"batch_size": 8, "calibset_size": 64}
    assert pre.effect == "pass" and pre.pass_name == "cross_layer_equalization"
    assert post.pass_name == "bias_correction" and post.value("iterative") is False
    assert q1.settings() == {"bias_mode": "double_scale_initialization"}
    assert isinstance(q2.args["layers"], LayerSelection) and q2.args["layers"].text == "{conv*}"
    assert q2.layers == {"layers": None}  # no model given
    assert q3.args["layers"].text == "output_layer*"


@pytest.mark.parametrize(
    "selector, expected",
    [
        ("conv1", ("conv1",)),
        ("net/conv1", ("conv1",)),  # scoped: matches the origin name
        ("yolov5s/conv2", ("conv2",)),  # another tool's network prefix: matched after the last '/'
        ("net/conv5", ("fused_conv_bn",)),  # an origin of a fused op
        ("net/bn5", ("fused_conv_bn",)),
        ("conv36_d0-2", ("conv36_d0-2",)),
        ("{conv*}", ("conv1", "conv2", "conv3", "conv10", "conv36_d0-2", "conv40")),
        ("{conv[0-9]}", ("conv1", "conv2", "conv3")),
        ("{conv1, conv3, fc1}", ("conv1", "conv3", "fc1")),
        ("{fc1, conv1}", ("conv1", "fc1")),  # always topological order
        ("[net/conv1, conv2]", ("conv1", "conv2")),
        ("output_layer*", ("output_layer1",)),
        ("{Concat_155...}", ("Concat_155", "conv40", "fc1", "output_layer1")),
        ("{yolov5s/conv40...}", ("conv40", "fc1", "output_layer1")),
        ("{conv1, fc1...}", ("conv1", "fc1", "output_layer1")),
        ("{*}", tuple(l.name for l in __import__("script_testing").synthetic_layers())),
        ("net/*", ("conv1", "relu1", "conv2", "conv3", "conv10", "fused_conv_bn", "fc1")),
        ('"conv2"', ("conv2",)),
    ],
)
def test_selectors(selector, expected, registry, layers):
    names, warnings = selected(f"quantization_param({selector}, precision_mode=a8_w8)\n", registry, layers)
    assert names == expected
    assert not warnings


def test_every_selector_argument_is_resolved(registry, layers):
    bound = bind_text("pre_quantization_optimization(activation_clipping, layers={conv1, conv2}, mode=percentile, clipping_values=[0.01, 99.99])\n", registry, layers)
    d = bound.directives[0]
    assert d.layers == {"layers": ("conv1", "conv2")}
    assert d.settings() == {"mode": "percentile", "clipping_values": [0.01, 99.99]}


def test_tensor_names_are_checked_against_the_model(registry, layers):
    bound = bind_text("prune_after(fc1_out)\noutputs(fc1, conv1_ot)\n", registry, layers)
    (warning,) = bound.warnings
    assert "no tensor or layer named 'conv1_ot'" in warning.message and "did you mean 'conv1_out'?" in warning.message
    assert bound.directives[1].args["tensors"] == ["fc1", "conv1_ot"]


def test_paths_are_relative_to_the_script(registry, tmp_path):
    script = tmp_path / "sub" / "model.alls"
    script.parent.mkdir()
    script.write_text('quantization_overrides("enc/encodings.json")\nquantization_overrides("/abs/e.json")\n')
    bound = bind(parse_file(script), registry)
    assert bound.directives[0].args["path"] == str(tmp_path / "sub" / "enc" / "encodings.json")
    assert bound.directives[1].args["path"] == "/abs/e.json"


def test_enum_values_match_case_insensitively(registry):
    bound = bind_text("data_type(conv1, INT16)\n", registry)
    assert bound.directives[0].args["dtype"] == "int16"


def test_defaults_and_values(registry):
    d = bind_text("calibration(method=percentile)\n", registry).directives[0]
    assert d.value("method") == "percentile"
    assert d.value("percentile") == 99.99
    assert d.value("per_channel") is False
    assert d.selected() is None
    with pytest.raises(KeyError):
        d.value("nope")


def test_keywords_may_name_positional_parameters(registry, layers):
    d = bind_text("data_type(layers={fc1}, dtype=float16)\n", registry, layers).directives[0]
    assert d.args["dtype"] == "float16" and d.selected() == ("fc1",)


def test_effective_directives_skip_ignored(registry):
    bound = bind_text("allocator_param(x=1)\ncalibration()\nfoo()\n", registry)
    assert [d.name for d in bound.effective()] == ["calibration"]
    assert [d.known for d in bound.directives] == [True, True, False]


def test_layers_from_graph_reads_ops():
    class Op:
        def __init__(self, name, kind, origin):
            self.name, self.kind, self.origin = name, kind, origin

    class T:
        def __init__(self, name):
            self.name = name

    class G:
        def ops(self):
            return [Op("a", "Conv", ("n/a",)), Op("b", "Relu", ())]

        def outputs_of(self, op):
            return [T(op.name + ":0")]

    assert layers_from_graph(G()) == [LayerRef("a", "Conv", ("n/a",), ("a:0",)), LayerRef("b", "Relu", (), ("b:0",))]


def test_layers_from_real_ir_graph():
    graph_mod = pytest.importorskip("npuc.ir.graph")
    dtypes = pytest.importorskip("npuc.ir.dtypes")
    g = graph_mod.Graph("m")
    x = g.add_input("x", dtypes.DType.FLOAT32, (1, 4))
    g.add_op("Relu", [x], name="relu1", origin=("net/relu1",))
    assert layers_from_graph(g) == [LayerRef("relu1", "Relu", ("net/relu1",), ("relu1",))]


# ---- registry and plugins -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FooPass:
    """Sharpen the foo of every layer.

    Longer text that is not part of the short doc.
    """

    strength: float = 1.0
    mode: Literal["fast", "exact"] = "fast"
    iterations: int = 3
    layers: Annotated[Optional[tuple[str, ...]], LAYER_SELECTOR] = None
    window: tuple[int, int] = (3, 3)
    names: list[str] = dataclasses.field(default_factory=list, metadata={"doc": "names to skip"})
    target: Optional[Path] = None
    enabled: bool = True


def test_from_dataclass_builds_options():
    cmd = ScriptCommand.from_dataclass("foo", FooPass, source="plugin foo")
    assert cmd.doc == "Sharpen the foo of every layer."
    assert cmd.effect == "pass" and cmd.pass_name == "foo"
    assert cmd.first_is_layers and cmd.params[0].name == "layers" and cmd.params[0].type.nullable
    kinds = {p.name: p.type.kind for p in cmd.options}
    assert kinds == {
        "strength": Kind.FLOAT,
        "mode": Kind.ENUM,
        "iterations": Kind.INT,
        "window": Kind.LIST,
        "names": Kind.LIST,
        "target": Kind.PATH,
        "enabled": Kind.BOOL,
    }
    assert cmd.param("mode").type.choices == ("fast", "exact")
    assert cmd.param("window").type.length == 2
    assert cmd.param("names").doc == "names to skip" and cmd.param("names").default == []


def test_plugin_pass_is_usable_from_a_script(layers):
    registry = builtin_registry()
    registry.register(ScriptCommand.from_dataclass("foo", FooPass), source="plugin foo")
    bound = bind_text("foo(strength=2)\nfoo({conv*}, mode=exact, window=[5, 5])\n", registry, layers)
    first, second = bound.directives
    assert first.args == {"strength": 2.0} and first.pass_name == "foo"
    assert second.selected() == ("conv1", "conv2", "conv3", "conv10", "conv36_d0-2", "conv40")
    assert second.settings() == {"mode": "exact", "window": [5, 5]}
    with pytest.raises(ScriptDiagnosticError, match="unknown option 'strenght'.*did you mean 'strength'"):
        bind_text("foo(strenght=2)\n", registry)
    with pytest.raises(ScriptDiagnosticError, match="invalid value 'slow'"):
        bind_text("foo(mode=slow)\n", registry)


def test_field_named_layers_is_a_selector_by_convention():
    @dataclasses.dataclass(frozen=True)
    class Bar:
        layers: tuple[str, ...] = ()
        factor: int = 2

    cmd = ScriptCommand.from_dataclass("bar", Bar)
    assert cmd.first_is_layers and [p.name for p in cmd.options] == ["factor"]


def test_required_field_is_required():
    @dataclasses.dataclass(frozen=True)
    class Baz:
        size: int

    registry = CommandRegistry()
    registry.register(ScriptCommand.from_dataclass("baz", Baz))
    with pytest.raises(ScriptDiagnosticError, match="'baz' needs 'size'"):
        bind_text("baz()\n", registry)


def test_duplicate_registration_names_both_sources():
    registry = builtin_registry()
    with pytest.raises(PluginError, match="'calibration' is registered twice: by builtin and by plugin acme"):
        registry.register(ScriptCommand("calibration"), source="plugin acme")


def test_from_dataclass_rejects_non_dataclass():
    with pytest.raises(TypeError):
        ScriptCommand.from_dataclass("x", int)


def test_default_registry_is_shared_and_has_builtins():
    assert default_registry() is default_registry()
    for name in ("normalization", "quantization_param", "calibration", "allocator_param"):
        assert name in default_registry()


def test_registry_lookup_of_dotted_names(registry):
    assert registry.lookup("my_context_0.place").name == "place"
    assert registry.lookup("a.b.unknown") is None
    copy = registry.copy()
    copy.register(ScriptCommand("extra"))
    assert "extra" in copy and "extra" not in registry


def test_bad_command_declarations():
    with pytest.raises(ValueError, match="effect"):
        ScriptCommand("x", effect="sometimes")
    from npuc.script.options import INT, Param

    with pytest.raises(ValueError, match="twice"):
        ScriptCommand("x", params=(Param("a", INT),), options=(Param("a", INT),))


def test_output_layer_names_select_the_layers_producing_the_outputs():
    import numpy as np

    from npuc.ir.dtypes import DType
    from npuc.ir.graph import Graph
    from npuc.script import layers_from_graph

    g = Graph("two_heads")
    x = g.add_input("x", DType.FLOAT32, (1, 4))
    w = g.add_const("w", np.ones((3, 4), np.float32))
    trunk = g.outputs_of(g.add_op("Relu", [x], name="trunk"))[0]
    boxes = g.outputs_of(g.add_op("Gemm", [trunk, w], name="boxes"))[0]
    scores = g.outputs_of(g.add_op("Sigmoid", [boxes], name="scores"))[0]
    g.outputs = [boxes, scores]
    script = parse("quantization_param(output_layer*, precision_mode=a16_w16)\ndata_type(output_layer2, int16)\n")
    bound = bind(script, default_registry(), layers_from_graph(g))
    first, second = bound.directives
    assert first.selected() == ("boxes", "scores") and second.selected() == ("scores",)
