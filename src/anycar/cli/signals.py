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


def suggest_paths(catalog: Catalog, text: str, limit: int = 5) -> list[str]:
    """Paths a person probably meant: those ending in the same node names, else close spellings."""
    import difflib

    want = text.strip(".").lower()
    paths = [s.path for s in catalog]
    tail = [p for p in paths if p.lower().endswith("." + want) or p.lower() == want]
    if tail:
        return sorted(tail, key=len)[:limit]
    last = want.rsplit(".", 1)[-1]
    by_leaf = [p for p in paths if p.rsplit(".", 1)[-1].lower() == last]
    if by_leaf:
        return sorted(by_leaf, key=len)[:limit]
    leaves = {p.rsplit(".", 1)[-1].lower() for p in paths}
    close = set(difflib.get_close_matches(last, list(leaves), n=3, cutoff=0.75))
    return sorted((p for p in paths if p.rsplit(".", 1)[-1].lower() in close), key=len)[:limit]


def show_signal(args: argparse.Namespace) -> int:
    from anycar.cli.output import fail
    from anycar.errors import UnknownPath

    catalog = _catalog(args.overlay)
    try:
        sig = catalog.get(args.path)
    except UnknownPath:
        hits = suggest_paths(catalog, args.path)
        hint = "; did you mean " + " or ".join(hits) + "?" if hits else "; see `anycar signals list`"
        return fail(f"no signal {args.path!r}{hint}")
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
