"""`anycar signals list PATTERN` and `anycar signals show PATH`: browse the VSS catalog."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from anycar.cli.output import console, print_json
from anycar.model import Catalog, load_overlay


def register(sub: Any) -> None:
    group = sub.add_parser("signals", help="browse the VSS signal catalog")
    cmds = group.add_subparsers(dest="signals_command", metavar="ACTION", required=True)

    ls = cmds.add_parser("list", help="list signals matching a pattern (wildcards * and **)")
    ls.add_argument(
        "pattern",
        nargs="?",
        default="Vehicle",
        help="path or pattern, e.g. 'Vehicle.Cabin.Door.*.*.IsOpen'",
    )
    ls.add_argument("--overlay", action="append", default=[], help="apply a VSS overlay file first")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_signals)

    show = cmds.add_parser("show", help="show one signal's metadata")
    show.add_argument("path")
    show.add_argument("--overlay", action="append", default=[], help="apply a VSS overlay file first")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=show_signal)


def _catalog(overlays: list[str]) -> Catalog:
    catalog = Catalog.load_default()
    for path in overlays:
        catalog.apply_overlay(load_overlay(path, extended_attributes=True))
    return catalog


def list_signals(args: argparse.Namespace) -> int:
    found = _catalog(args.overlay).resolve(args.pattern)
    if args.json:
        print_json([{"path": s.path, **s.metadata()} for s in found])
        return 0
    table = Table(title=f"{len(found)} signals matching {args.pattern}", title_justify="left")
    for col in ("path", "type", "datatype", "unit"):
        table.add_column(col)
    for s in found:
        table.add_row(s.path, str(s.type), s.datatype, s.unit or "")
    console.print(table)
    return 0


def show_signal(args: argparse.Namespace) -> int:
    sig = _catalog(args.overlay).get(args.path)
    meta = {"path": sig.path, "id": sig.id, **sig.metadata()}
    if args.json:
        print_json(meta)
        return 0
    table = Table(show_header=False, title=sig.path, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in meta.items():
        table.add_row(key, str(value))
    console.print(table)
    return 0
