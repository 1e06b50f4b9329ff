"""`anycar can replay LOG --brand PROFILE`, `can live`, `can record` and `can dbc FILE`: CAN logs,
live buses and DBC files.

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

    rec = cmds.add_parser(
        "record", help="record a live CAN bus into a log file (candump .log, .asc, .blf, .trc)"
    )
    rec.add_argument(
        "--interface", default="socketcan", help="python-can interface (socketcan, virtual, ...)"
    )
    rec.add_argument("--channel", default="can0", help="channel, e.g. can0 or vcan0")
    rec.add_argument("--out", required=True, help="log file; its suffix picks the format")
    rec.add_argument(
        "--seconds", type=float, default=0.0, help="stop after this long (default: until Ctrl-C)"
    )
    rec.add_argument("--frames", type=int, default=0, help="stop after this many frames (default: no limit)")
    rec.set_defaults(func=record_bus)

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
    mismatch = _mismatch(args.log, profile.id, summary)
    if mismatch is not None:
        summary["matches_profile"] = False
        summary["best_matches"] = mismatch
    if args.json:
        print_json(summary)
    else:
        from anycar.brands.fit import describe_bad

        console.print(
            f"{summary['frames']} frames, {summary['published']} VSS updates in {summary['seconds']} s; "
            f"bad input: {describe_bad(summary['bad_input'])}",
            highlight=False,
            markup=False,
        )
    if mismatch is None:
        return 0
    from anycar.cli.output import fail

    best = [m for m in mismatch if m["share"] > 0][:3]
    hint = (
        "it matches best: "
        + ", ".join(f"{m['profile']} ({m['share']:.0%} of frames)" for m in best)
        + f"; try --brand {best[0]['profile']}"
        if best
        else "no shipped profile knows its frames"
    )
    return fail(f"{args.log} does not match profile {profile.id}: {hint}", code=1)


def _mismatch(log: str, profile_id: str, summary: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``None`` if the log fits the profile; else every profile's share of known frames, best first."""
    frames = int(summary["frames"])
    bad = summary["bad_input"]
    foreign = int(bad.get("unknown_id", 0)) + int(bad.get("wrong_length", 0))
    if frames == 0 or (foreign * 2 <= frames and summary["published"] > 0):
        return None
    from anycar.brands.fit import log_fits

    return [
        {"profile": f.profile, "share": round(f.share, 4)} for f in log_fits(log) if f.profile != profile_id
    ]


def live_bus(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_live(args))


async def _live(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from anycar.brands import adapter_for
    from anycar.broker import SignalBroker
    from anycar.can.sources import BusSource, bus_sender

    profile = require_profile(args)
    bus = open_checked(args.interface, args.channel)
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
    if not args.json:
        from anycar.brands.fit import describe_bad

        console.print(
            f"{adapter.frames} frames, {adapter.published} VSS updates; "
            f"bad input: {describe_bad(adapter.bad.as_dict())}",
            highlight=False,
            markup=False,
        )
    return 0


LOG_SUFFIXES = (".log", ".asc", ".blf", ".trc")
SOCKETCAN_HINTS = {
    "Errno 97": "this kernel has no SocketCAN (modprobe can can_raw; in a container the host must load it)",
    "Errno 19": "no such interface: create it (sudo ip link add dev vcan0 type vcan && sudo ip link set up vcan0)",
    "No such device": "no such interface: create it (sudo ip link add dev vcan0 type vcan && sudo ip link set up vcan0)",
}


def open_checked(interface: str, channel: str) -> Any:
    """``open_bus`` with what to do about the usual SocketCAN failures (docs/socketcan.md)."""
    from anycar.can.sources import open_bus
    from anycar.errors import ConfigError

    try:
        return open_bus(interface, channel)
    except ConfigError as exc:
        hint = next((h for key, h in SOCKETCAN_HINTS.items() if key in str(exc)), None)
        if hint is None:
            raise
        raise ConfigError(f"{exc}: {hint}; see docs/socketcan.md") from None


def record_bus(args: argparse.Namespace) -> int:
    """Bus -> file with python-can's own logger; Ctrl-C, ``--seconds`` or ``--frames`` ends it."""
    import time
    from pathlib import Path

    import can

    from anycar.cli.output import errors, fail

    out = Path(args.out)
    if out.suffix.lower() not in LOG_SUFFIXES:
        return fail(f"{out}: a CAN log ends in {', '.join(LOG_SUFFIXES)} (the suffix picks the format)")
    if not out.parent.is_dir():
        return fail(f"{out}: folder {out.parent} does not exist")
    bus = open_checked(args.interface, args.channel)
    frames = 0
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    try:
        with can.Logger(str(out)) as logger:
            errors.print(
                f"recording {args.interface}:{args.channel} into {out} (Ctrl-C to stop)", highlight=False
            )
            try:
                while deadline is None or time.monotonic() < deadline:
                    wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                    msg = bus.recv(timeout=wait)
                    if msg is None:
                        continue
                    logger.on_message_received(msg)
                    frames += 1
                    if args.frames and frames >= args.frames:
                        break
            except KeyboardInterrupt:
                pass
    finally:
        bus.shutdown()
    console.print(f"recorded {frames} frames into {out}", highlight=False)
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
