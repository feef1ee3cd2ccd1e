"""CLI subcommands. Each module exposes `register(subparsers)` and sets `func` on its parser.

The module list is explicit (order = order in `npuc --help`)."""

COMMAND_MODULES = (
    "compile",
    "run",
    "profile",
    "emulate",
    "analyze",
    "export",
    "check",
    "dump",
    "passes",
    "script",
)
