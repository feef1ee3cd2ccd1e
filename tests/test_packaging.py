"""Packaging: every source package is listed in pyproject (the folder mapping needs an explicit list)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"compiler": "npuc", "ir": "npuc.ir", "passes": "npuc.passes", "backends": "npuc.backends",
           "grammar": "npuc.grammar"}


def test_every_package_folder_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, package in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "these listed packages have no folder"


def test_grammar_and_targets_ship_as_package_data():
    from importlib import resources

    assert (resources.files("npuc.grammar") / "alls.lark").is_file()
    assert (resources.files("npuc.backends") / "targets" / "npu-s.toml").is_file()
