"""Checks shared by the analysis report tests: files, JSON, entropy file format, HTML references."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

ENTROPY_LINE = re.compile(r"^(?P<layer>\S+):(?P<what>out\d+|weight), (?P<kl>\d+\.\d+)$")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") and value and not value.startswith("#"):
                self.refs.append(value)


def check_report_folder(out: Path) -> dict:
    """Every report file exists, the JSON is strict, the entropy file is sorted, the HTML's references exist."""
    for name in ("report.html", "report.json", "quantization_entropy.txt"):
        assert (out / name).is_file(), name
    data = json.loads((out / "report.json").read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert data["layers"] and data["samples"] >= 1
    ranks = [l["rank"] for l in data["layers"]]
    assert ranks == list(range(1, len(ranks) + 1))
    lines = (out / "quantization_entropy.txt").read_text().splitlines()
    assert lines
    values = []
    for line in lines:
        m = ENTROPY_LINE.match(line)
        assert m, f"bad entropy line {line!r}"
        values.append(float(m["kl"]))
    assert values == sorted(values, reverse=True)
    assert any(":weight, " in l for l in lines) and any(":out0, " in l for l in lines)
    parser = _Refs()
    parser.feed((out / "report.html").read_text())
    images = [r for r in parser.refs if r.endswith(".png")]
    assert images, "report.html shows no plots"
    for ref in parser.refs:
        assert not re.match(r"^[a-z]+://", ref), f"report.html needs the network: {ref}"
        assert (out / ref).is_file(), f"report.html references missing file {ref}"
    for chart in data["charts"].values():
        assert chart in images
    return data
