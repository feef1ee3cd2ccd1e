"""Error reporting: file:line:col, the source line, a caret under the token, 'did you mean'."""
from __future__ import annotations

import pytest

from npuc.errors import ScriptError
from npuc.script.binder import bind
from npuc.script.diagnostics import ScriptDiagnosticError
from npuc.script.parser import parse


def errors_of(text: str, registry=None, layers=None, strict=False):
    with pytest.raises(ScriptDiagnosticError) as info:
        script = parse(text, "s.alls")
        bind(script, registry, layers, strict=strict)
    assert isinstance(info.value, ScriptError)
    return info.value.errors


def only_error(text: str, registry, layers=None, strict=False):
    errs = errors_of(text, registry, layers, strict)
    assert len(errs) == 1, [e.format() for e in errs]
    return errs[0]


def assert_diag(diag, line: int, column: int, token: str, *fragments: str) -> None:
    """Check position, the three-line rendering (caret under `token`), and message fragments."""
    caret = "^" + "~" * (len(token) - 1)
    text = diag.format()
    head, source, caret_line = text.split("\n")
    assert head.startswith(f"s.alls:{line}:{column}: {diag.severity}: ")
    assert (diag.span.line, diag.span.column) == (line, column)
    assert caret_line == " " * (column - 1) + caret, text
    assert source == diag.source_line
    assert source[column - 1 : column - 1 + len(token)] == token
    for fragment in fragments:
        assert fragment in diag.message, diag.message


def test_unknown_command_warns_with_suggestion(registry):
    bound = bind(parse("calibration()\nquantizaton_param(conv1, precision_mode=a8_w8)\n", "s.alls"), registry)
    (warning,) = bound.warnings
    assert_diag(warning, 2, 1, "quantizaton_param", "unknown command 'quantizaton_param'", "did you mean 'quantization_param'?")


def test_unknown_command_is_an_error_when_strict(registry):
    err = only_error("frobnicate(1)\n", registry, strict=True)
    assert_diag(err, 1, 1, "frobnicate", "unknown command 'frobnicate'")


def test_unknown_option_with_suggestion(registry):
    err = only_error("model_optimization_config(calibration, bach_size=8)\n", registry)
    assert_diag(err, 1, 40, "bach_size", "unknown option 'bach_size'", "did you mean 'batch_size'?")


def test_bad_enum_value_with_suggestion(registry):
    err = only_error("quantization_param({conv*}, precision_mode=a16_w61)\n", registry)
    assert_diag(err, 1, 44, "a16_w61", "invalid value 'a16_w61'", "a8_w8", "did you mean 'a16_w16'?")


def test_unknown_feature_with_suggestion(registry):
    err = only_error("pre_quantization_optimization(equalisation, policy=enabled)\n", registry)
    assert_diag(err, 1, 31, "equalisation", "unknown feature 'equalisation'", "did you mean 'equalization'?")


def test_type_error_string_for_int(registry):
    err = only_error('model_optimization_config(calibration, batch_size="eight")\n', registry)
    assert_diag(err, 1, 51, '"eight"', "batch_size", "expected int >= 1", 'got the string "eight"')


def test_out_of_range(registry):
    err = only_error("model_optimization_config(calibration, batch_size=0)\n", registry)
    assert_diag(err, 1, 51, "0", "out of range", ">= 1")


def test_unterminated_list(registry):
    err = only_error("calibration()\nquantization_param([conv1, conv2, precision_mode=a16_w16)\n", registry)
    assert_diag(err, 2, 20, "[", "unterminated list", "'['")


def test_unterminated_list_at_end_of_file(registry):
    err = only_error("quantization_param([conv1,\n   conv2", registry)
    assert_diag(err, 1, 20, "[", "unterminated list", "never closed")


def test_unterminated_string(registry):
    err = only_error('calibration()\n   quantization_overrides("encodings.json)\n', registry)
    assert_diag(err, 2, 27, '"encodings.json)', "unterminated string")


def test_unexpected_token_lists_what_was_expected(registry):
    err = only_error("f(1 2)\n", registry)
    assert_diag(err, 1, 5, "2", "unexpected '2'", "expected ')' or ','")


def test_selector_matching_no_layer_is_a_warning_naming_it(registry, layers):
    bound = bind(parse("quantization_param({conv1, conv99}, precision_mode=a8_w8)\n", "s.alls"), registry, layers)
    (warning,) = bound.warnings
    assert warning.severity == "warning"
    assert_diag(warning, 1, 28, "conv99", "selector 'conv99' matches no layer", "did you mean")
    assert bound.directives[0].layers["layers"] == ("conv1",)


def test_selector_matching_no_layer_is_an_error_when_strict(registry, layers):
    err = only_error("data_type(nothing*, int16)\n", registry, layers, strict=True)
    assert_diag(err, 1, 11, "nothing*", "selector 'nothing*' matches no layer")


def test_all_errors_are_reported_at_once(registry):
    text = (
        "model_optimization_config(calibration, batch_size=\"eight\")\n"
        "calibration(method=minmax)\n"
        "quantization_param(conv1, precision_mode=a8_w9)\n"
        "data_type(conv1, int17)\n"
    )
    errs = errors_of(text, registry)
    assert [e.span.line for e in errs] == [1, 3, 4]


def test_all_syntax_errors_are_reported_at_once(registry):
    text = "f(1 2)\ng(ok)\nh(=)\nk('x)\nm([1, 2)\nn(a; b)\n"
    errs = errors_of(text, registry)
    assert [(e.span.line, e.span.column) for e in errs] == [(1, 5), (3, 3), (4, 3), (5, 3), (6, 4)]


def test_error_message_lists_every_error(registry):
    with pytest.raises(ScriptDiagnosticError) as info:
        bind(parse("data_type(conv1, int17)\ncalibration(method=foo)\n", "s.alls"), registry)
    message = str(info.value)
    assert message.startswith("s.alls: 2 errors\n")
    assert "s.alls:1:18: error:" in message and "s.alls:2:20: error:" in message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("input_shape(x)\n", "needs 'shape'"),
        ("data_type(conv1, int16, 5)\n", "too many positional arguments"),
        ("data_type(conv1, dtype=int16, dtype=int8)\n", "given twice"),
        ("calibration(method=kl, conv1)\n", "positional argument after keyword"),
        ("normalization([1, 2], [3])\n", "mean has 2 values but std has 1"),
        ("normalization([1], [0])\n", "std must not contain 0"),
        ("quantization_param(conv1, force_range_out=[6, 0])\n", "low < high"),
        ("quantization_param(conv1, force_range_out=[0, 1, 2])\n", "list of 2 items"),
        ("pre_quantization_optimization(activation_clipping, mode=manual)\n", "needs clipping_values"),
        ("prune_after()\n", "at least one tensor"),
        ("model_optimization_config(batch_size=8)\n", "needs a feature"),
        ("quantization_param(3, precision_mode=a8_w8)\n", "expected a layer selector"),
        ("calibration(per_channel=maybe)\n", "expected bool"),
        ("model_optimization_config(calibration, batch_size=8.0)\n", "write 8"),
        ("a*b = calibration()\n", "cannot assign to the pattern"),
        ("data_type({conv*...}, int16)\n", "a range must start at one layer"),
    ],
)
def test_other_errors(registry, text, fragment):
    err = only_error(text, registry)
    assert fragment in err.message
    assert err.span.line == 1 and err.span.column >= 1


def test_ignored_commands_warn_once_each_and_never_error(registry):
    text = "allocator_param(timeout=25m)\nresources_param(strategy=greedy)\nmy_context_0.place(0, [conv1])\n"
    bound = bind(parse(text, "s.alls"), registry)
    assert [w.format(show_source=False) for w in bound.warnings] == [
        "s.alls:1:1: warning: 'allocator_param' has no effect on this target, skipped",
        "s.alls:2:1: warning: 'resources_param' has no effect on this target, skipped",
        "s.alls:3:1: warning: 'my_context_0.place' has no effect on this target, skipped",
    ]
    assert all(d.effect == "ignored" for d in bound.directives)


def test_ignored_variant_warns(registry):
    bound = bind(parse("pre_quantization_optimization(dead_layers_removal, policy=enabled)\n", "s.alls"), registry)
    (warning,) = bound.warnings
    assert "'pre_quantization_optimization(dead_layers_removal)' has no effect" in warning.message
    assert warning.span.column == 31


def test_caret_under_tab_indented_token(registry):
    err = only_error("\tdata_type(conv1, int17)\n", registry)
    assert err.format().split("\n")[2] == "\t" + " " * 17 + "^~~~~"
