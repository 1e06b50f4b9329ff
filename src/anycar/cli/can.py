"""`anycar can replay LOG --brand PROFILE` and `anycar can dbc FILE`: CAN logs and DBC files.

``replay`` and ``live`` take the car as ``--brand``, ``--profile DIR`` or ``--dbc FILE...
--mapping FILE`` (``cli.profile_args``).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from anycar.cli.output import console, errors, print_json
from anycar.cli.profile_args import add_profile_arguments, is_custom, require_profile


def register(sub: Any) -> None:
    group = sub.add_parser("can", help="CAN logs and DBC files")
    cmds = group.add_subparsers(dest="can_command", metavar="ACTION", required=True)

    rp = cmds.add_parser("replay", help="replay a CAN log through a brand profile, printing VSS changes")
    rp.add_argument("log", help="candump .log, .asc, .blf or .trc file")
    rp.add_argument("--brand", help="brand profile id, e.g. xiaomi_su7 (or --profile / --dbc)")
    add_profile_arguments(rp)
    rp.add_argument(
        "--realtime", action="store_true", help="keep the recorded pace (default: as fast as possible)"
    )
    rp.add_argument(
        "--speed", type=float, default=1.0, help="pace factor with --realtime (2 = twice as fast)"
    )
    rp.add_argument("--quiet", action="store_true", help="print only the summary")
    rp.add_argument("--json", action="store_true", help="print JSON lines of changes and a summary")
    rp.set_defaults(func=replay_log)

    live = cmds.add_parser("live", help="read a live CAN bus through a brand profile, printing VSS changes")
    live.add_argument("--brand", help="brand profile id (or --profile / --dbc)")
    add_profile_arguments(live)
    live.add_argument(
        "--interface", default="socketcan", help="python-can interface (socketcan, virtual, ...)"
    )
    live.add_argument("--channel", default="can0", help="channel, e.g. can0 or vcan0")
    live.add_argument(
        "--seconds", type=float, default=0.0, help="stop after this long (default: until Ctrl-C)"
    )
    live.add_argument("--json", action="store_true", help="print JSON lines")
    live.set_defaults(func=live_bus)

    dbc = cmds.add_parser("dbc", help="load DBC files leniently and list what was repaired")
    dbc.add_argument("files", nargs="+")
    dbc.add_argument("--json", action="store_true", help="print JSON")
    dbc.set_defaults(func=check_dbc)


def replay_log(args: argparse.Namespace) -> int:
    import json
    import sys

    from anycar.brands import adapter_for
    from anycar.broker import SignalBroker
    from anycar.can.sources import replay

    profile = require_profile(args)
    broker = SignalBroker()
    adapter = adapter_for(profile, broker)
    if is_custom(args):
        _warn(profile.dbc_warnings() + adapter.problems)

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


def live_bus(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_live(args))


async def _live(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from anycar.brands import adapter_for
    from anycar.broker import SignalBroker
    from anycar.can.sources import BusSource, bus_sender, open_bus

    profile = require_profile(args)
    bus = open_bus(args.interface, args.channel)
    broker = SignalBroker()
    adapter = adapter_for(profile, broker, send=bus_sender(bus))
    if is_custom(args):
        _warn(profile.dbc_warnings() + adapter.problems)
    sub = broker.subscribe(adapter.paths, queue_size=100_000)
    source = BusSource(adapter, bus)
    await source.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.seconds if args.seconds > 0 else None
    try:
        while deadline is None or loop.time() < deadline:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                batch = await asyncio.wait_for(sub.get(), timeout)
            except TimeoutError:
                break
            for dp in batch:
                if args.json:
                    sys.stdout.write(
                        json.dumps({"t": dp.timestamp, "path": dp.path, "value": dp.value}) + "\n"
                    )
                    sys.stdout.flush()
                else:
                    console.print(f"{dp.path} = {escape(repr(dp.value))}", highlight=False, emoji=False)
    finally:
        await source.stop()
        sub.close()
        bus.shutdown()
    bad = {k: v for k, v in adapter.bad.as_dict().items() if v}
    if not args.json:
        console.print(f"{adapter.frames} frames, {adapter.published} VSS updates; bad input: {bad or 'none'}")
    return 0


def _warn(lines: list[str]) -> None:
    """What was repaired in the user's DBCs and which mapping rules cannot be used, on stderr."""
    for line in lines:
        errors.print(f"[yellow]warning[/] {escape(line)}", highlight=False, soft_wrap=True, emoji=False)


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
