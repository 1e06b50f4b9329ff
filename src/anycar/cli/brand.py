"""`anycar brand list | check PROFILE | coverage`: the brand profiles and how they map onto VSS."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table

from anycar.cli.output import console, print_json


def register(sub: Any) -> None:
    group = sub.add_parser("brand", help="brand profiles: each car's CAN bus mapped onto VSS")
    cmds = group.add_subparsers(dest="brand_command", metavar="ACTION", required=True)

    ls = cmds.add_parser("list", help="list the brand profiles")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_brands)

    check = cmds.add_parser("check", help="lint a profile's mapping against its DBC files and VSS")
    check.add_argument("profile", help="profile id, e.g. tesla_model3")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument(
        "--dbc-warnings", action="store_true", help="also list what the lenient DBC loader fixed"
    )
    check.add_argument(
        "--notes", action="store_true", help="also list notes (e.g. vss2dbc rules for simulators)"
    )
    check.set_defaults(func=check_brand)

    cov = cmds.add_parser("coverage", help="which VSS signals each profile provides")
    cov.add_argument("pattern", nargs="?", default=None, help="only paths starting with this prefix")
    cov.add_argument("--json", action="store_true", help="print JSON")
    cov.set_defaults(func=coverage)


def list_brands(args: argparse.Namespace) -> int:
    from anycar.brands import list_profiles

    rows: list[dict[str, Any]] = []
    for p in list_profiles():
        m = p.mapping()
        rows.append(
            {
                "id": p.id,
                "brand": p.brand,
                "model": p.model,
                "reference": p.reference,
                "buses": [b.name for b in p.buses],
                "dbc": [d for b in p.buses for d in b.dbc],
                "signals": len(m.paths("dbc2vss")),
                "encodable": len(m.paths("vss2dbc")),
            }
        )
    if args.json:
        print_json(rows)
        return 0
    table = Table(title=f"{len(rows)} brand profiles", title_justify="left")
    for col in ("id", "brand", "model", "DBC", "buses", "signals", "encodable"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["brand"],
            r["model"],
            "reference (anycar)" if r["reference"] else "maker's (opendbc)",
            ", ".join(r["buses"]),
            str(r["signals"]),
            str(r["encodable"]),
        )
    console.print(table)
    return 0


def check_brand(args: argparse.Namespace) -> int:
    from anycar.brands import load_profile
    from anycar.can.adapter import apply_mapping_overlay
    from anycar.can.lint import lint_mapping
    from anycar.model import Catalog

    profile = load_profile(args.profile)
    mapping = profile.mapping()
    catalog = Catalog.load_default()
    network = profile.network()
    findings = lint_mapping(network, mapping, catalog)
    _added, refused = apply_mapping_overlay(catalog, mapping)
    for problem in refused.values():  # each names its file and line
        findings.append(_finding("error", mapping.sources[0], f"overlay refused by the catalog: {problem}"))
    errors = [f for f in findings if f.level == "error"]
    dbc_warnings = profile.dbc_warnings()
    if args.json:
        print_json(
            {
                "profile": profile.id,
                "ok": not errors,
                "signals": len(mapping.paths("dbc2vss")),
                "findings": [{"level": f.level, "where": f.where, "message": f.message} for f in findings],
                "dbc_warnings": dbc_warnings,
            }
        )
        return 1 if errors else 0
    for f in findings:
        if f.level == "note" and not args.notes:
            continue
        color = {"error": "red", "warning": "yellow"}.get(f.level, "dim")
        console.print(
            f"[{color}]{f.level}[/] {_short(f.where)}: {_short(f.message)}", highlight=False, soft_wrap=True
        )
    if args.dbc_warnings:
        for w in dbc_warnings:
            console.print(f"[dim]dbc[/] {escape(_short(w))}", highlight=False, soft_wrap=True, emoji=False)
    warnings = [f for f in findings if f.level == "warning"]
    notes = len(findings) - len(errors) - len(warnings)
    console.print(
        f"{profile.id}: {len(mapping.paths('dbc2vss'))} VSS signals mapped, "
        f"{len(mapping.paths('vss2dbc'))} encodable; {len(errors)} errors, {len(warnings)} warnings, "
        f"{notes} notes, {len(dbc_warnings)} DBC repairs",
        highlight=False,
    )
    return 1 if errors else 0


def _short(text: str) -> str:
    """File names relative to the working directory, for reading."""
    import os

    return text.replace(os.getcwd() + os.sep, "")


def _finding(level: str, where: str, message: str) -> Any:
    from anycar.can.lint import Finding

    return Finding(level, where, message)


def coverage(args: argparse.Namespace) -> int:
    from anycar.brands import list_profiles

    profiles = list_profiles()
    provided = {p.id: set(p.mapping().paths("dbc2vss")) for p in profiles}
    paths = sorted(set().union(*provided.values()))
    if args.pattern:
        paths = [p for p in paths if p.startswith(args.pattern)]
    if args.json:
        print_json(
            {
                "profiles": [p.id for p in profiles],
                "signals": {x: [p.id for p in profiles if x in provided[p.id]] for x in paths},
            }
        )
        return 0
    short = {p.id: p.id.split("_")[0] for p in profiles}
    table = Table(title=f"{len(paths)} VSS signals across {len(profiles)} profiles", title_justify="left")
    table.add_column("VSS signal (Vehicle.)", no_wrap=True)
    for p in profiles:
        table.add_column(short[p.id] + ("*" if p.reference else ""), justify="center", no_wrap=True)
    for x in paths:
        table.add_row(x.removeprefix("Vehicle."), *("●" if x in provided[p.id] else "" for p in profiles))
    table.add_row("[bold]signals[/]", *(f"[bold]{len(provided[p.id])}[/]" for p in profiles))
    if not console.is_terminal:
        console.print(table)  # plain tab-separated rows for a pipe
    else:
        from rich.console import Console

        wide = Console(width=max(console.width, 50 + 9 * len(profiles)))
        wide.print(table)
    console.print("* reference profile: DBC written by anycar, not the maker's", highlight=False)
    return 0
