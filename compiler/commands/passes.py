"""`npuc passes`: every registered pass, its options and the plugin it came from."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "passes",
        help="list every pass with its options and where it came from",
        description="List the registered passes (built-in and from plugins) with their options, "
        "types, defaults and sources, and the default cleanup pipeline.",
    )
    p.add_argument("names", nargs="*", metavar="PASS", help="only these passes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def run(args: argparse.Namespace) -> int:
    from npuc.passes.manager import DEFAULT_CLEANUP
    from npuc.passes.registry import PASSES

    names = args.names or PASSES.names()
    entries = []
    for name in names:
        cls = PASSES.get(name)
        entries.append({
            "name": name,
            "source": PASSES.source(name),
            "summary": cls.summary(),
            "requires": list(cls.requires),
            "ensures": list(cls.ensures),
            "options": [{"name": o.name, "type": o.type_name, "default": _jsonable(o.default), "doc": o.doc}
                        for o in cls.options()],
        })
    if args.json:
        print(json.dumps({"passes": entries, "default_cleanup": list(DEFAULT_CLEANUP)}, indent=1))
        return 0
    for e in entries:
        print(f"{e['name']}  [{e['source']}]")
        if e["summary"]:
            print(f"    {e['summary']}")
        for key in ("requires", "ensures"):
            if e[key]:
                print(f"    {key}: {', '.join(e[key])}")
        if not e["options"]:
            print("    options: none")
        for o in e["options"]:
            default = o["default"]
            shown = "[" + ", ".join(map(str, default)) + "]" if isinstance(default, list) else repr(default)
            doc = f"  -- {o['doc']}" if o["doc"] else ""
            print(f"    {o['name']}: {o['type']} = {shown}{doc}")
    if not args.names:
        print(f"\ndefault cleanup pipeline: {', '.join(DEFAULT_CLEANUP)}")
    return 0
