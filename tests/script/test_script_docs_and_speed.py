"""The language reference stays in sync with the registry; parse + bind stays fast."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from npuc.script.reference import BEGIN, END, markdown_reference
from npuc.script.registry import builtin_registry

from script_testing import UPDATE_GOLDEN

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "script-language.md"


def test_reference_documents_every_builtin_command_and_option():
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    generated = markdown_reference(builtin_registry())
    if UPDATE_GOLDEN:
        DOC.write_text(head + BEGIN + "\n" + generated + END + tail, encoding="utf-8")
        text = DOC.read_text(encoding="utf-8")
    assert BEGIN + "\n" + generated + END in text, "docs/script-language.md is stale: run with NPUC_UPDATE_GOLDEN=1"
    for command in builtin_registry():
        assert f"`{command.name}`" in text
        for param in command.all_params():
            assert f"`{param.name}`" in text
        for variant in command.variants:
            assert f"({variant.name}, ...)" in text or f"`{variant.name}`" in text
            for param in variant.options:
                assert f"`{param.name}`" in text


def test_parse_benchmark_runs_and_reports(capsys):
    """The benchmark script works (the < 1 s target is checked by running it, not by a timed test)."""
    spec = importlib.util.spec_from_file_location("script_parse_bench", ROOT / "benchmarks" / "script_parse.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--lines", "200", "--layers", "50", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "parse" in out and "bind" in out and "target < 1000 ms" in out
