"""Entry point of the `anycar` command: builds the parser from the command modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from anycar import __version__
from anycar.cli.output import fail
from anycar.cli.parser import ToolParser
from anycar.errors import AnycarError

# Each module has ``register(subparsers)`` and sets ``func`` on the parsers it adds.
COMMAND_MODULES = [
    "anycar.cli.signals",
    "anycar.cli.bench",
    "anycar.cli.demo",
    "anycar.cli.accessory",
    "anycar.cli.sim",
    "anycar.cli.brand",
    "anycar.cli.can",
    "anycar.cli.hub",
    "anycar.cli.token",
    "anycar.cli.automation",
    "anycar.cli.completion",
    "anycar.cli.uplink",
    "anycar.cli.fleet",
    "anycar.cli.swap",
]


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(prog="anycar", description="anycar: one open ecosystem for every car")
    parser.add_argument("--version", action="version", version=f"anycar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except AnycarError as exc:
        return fail(str(exc))
    except OSError as exc:  # a file or folder the user named: missing, read-only, a port taken
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
