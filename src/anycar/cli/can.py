"""`anycar can replay LOG --brand PROFILE` and `anycar can dbc FILE`: CAN logs and DBC files."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from anycar.cli.output import console, print_json


def register(sub: Any) -> None:
    group = sub.add_parser("can", help="CAN logs and DBC files")
    cmds = group.add_subparsers(dest="can_command", metavar="ACTION", required=True)

    rp = cmds.add_parser("replay", help="replay a CAN log through a brand profile, printing VSS changes")
    rp.add_argument("log", help="candump .log, .asc, .blf or .trc file")
    rp.add_argument("--brand", required=True, help="brand profile id, e.g. xiaomi_su7")
    rp.add_argument(
        "--realtime", action="store_true", help="keep the recorded pace (default: as fast as possible)"
    )
    rp.add_argument(
        "--speed", type=float, default=1.0, help="pace factor with --realtime (2 = twice as fast)"
    )
    rp.add_argument("--quiet", action="store_true", help="print only the summary")
    rp.add_argument("--json", action="store_true", help="print JSON lines of changes and a summary")
    rp.set_defaults(func=replay_log)

    dbc = cmds.add_parser("dbc", help="load DBC files leniently and list what was repaired")
    dbc.add_argument("files", nargs="+")
    dbc.add_argument("--json", action="store_true", help="print JSON")
    dbc.set_defaults(func=check_dbc)


def replay_log(args: argparse.Namespace) -> int:
    import json
    import sys

    from anycar.brands import adapter_for, load_profile
    from anycar.broker import SignalBroker
    from anycar.can.sources import replay

    profile = load_profile(args.brand)
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)

    first: list[float] = []

    def show(ts: float, updates: list[tuple[str, Any]]) -> None:
        if args.quiet:
            return
        if not first:
            first.append(ts)
        ts -= first[0]
        for path, value in updates:
            if args.json:
                sys.stdout.write(json.dumps({"t": round(ts, 6), "path": path, "value": value}) + "\n")
            else:
                console.print(f"{ts:9.3f}  {path} = {escape(repr(value))}", highlight=False, emoji=False)

    summary = replay(adapter, args.log, realtime=args.realtime, speed=args.speed, on_updates=show)
    summary["profile"] = profile.id
    if args.json:
        print_json(summary)
    else:
        bad = {k: v for k, v in summary["bad_input"].items() if v}
        console.print(
            f"{summary['frames']} frames, {summary['published']} VSS updates in {summary['seconds']} s; "
            f"bad input: {bad or 'none'}",
            highlight=False,
        )
    return 0


def check_dbc(args: argparse.Namespace) -> int:
    from anycar.can.dbc import load_dbc

    out = []
    for f in args.files:
        loaded = load_dbc(f)
        out.append(
            {"file": f, "messages": len(loaded.db.messages), "warnings": [str(w) for w in loaded.warnings]}
        )
    if args.json:
        print_json(out)
        return 0
    for item in out:
        for w in item["warnings"]:
            console.print(f"[yellow]warning[/] {escape(w)}", highlight=False, soft_wrap=True, emoji=False)
        console.print(
            f"{item['file']}: {item['messages']} messages, {len(item['warnings'])} warnings", highlight=False
        )
    return 0
