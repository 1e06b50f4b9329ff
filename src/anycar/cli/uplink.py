"""`anycar uplink status|campaigns|replay-spool`: look into a hub's uplink from outside.

They read the spool's SQLite file (WAL lets them read while the hub writes): ``status`` says
whether the link is up, how deep the spool is, how old its oldest entry, and what was dropped
and why; ``campaigns`` lists what runs and what the fleet sent; ``replay-spool`` prints the
waiting messages decoded, or with ``--to`` publishes them to a broker and removes each on its
PUBACK (to empty a spool by hand, with the hub stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from anycar.cli.output import console, print_json
from anycar.errors import ConfigError

STALE_S = 5.0


def register(sub: Any) -> None:
    group = sub.add_parser("uplink", help="the hub's uplink to the fleet: status, campaigns, the spool")
    cmds = group.add_subparsers(dest="uplink_command", metavar="ACTION", required=True)
    for name, text, func in (
        ("status", "connected or not, spool depth, oldest entry, drops", uplink_status),
        ("campaigns", "the campaigns that run, where they came from", uplink_campaigns),
        (
            "replay-spool",
            "print the spooled messages decoded, or publish them (--to) and remove each on PUBACK",
            replay_spool,
        ),
    ):
        p = cmds.add_parser(name, help=text)
        p.add_argument(
            "--spool", metavar="FILE", help="the uplink's spool (default: beside the hub database)"
        )
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        if name == "replay-spool":
            p.add_argument(
                "--to", metavar="URL", help="publish to this broker (mqtt://HOST:PORT) instead of printing"
            )
            p.add_argument("--vehicle-id", help="with --to: the vehicle id (default: the one the hub used)")
            p.add_argument("--limit", type=int, default=100, help="at most this many messages (default 100)")


def _open(args: argparse.Namespace) -> Any:
    from anycar.uplink import default_spool_path
    from anycar.uplink.spool import Spool

    path = Path(args.spool) if args.spool else default_spool_path()
    if not path.is_file():
        raise ConfigError(f"no uplink spool at {path}; give --spool FILE (the hub's uplink.spool.path)")
    return Spool(path)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def uplink_status(args: argparse.Namespace) -> int:
    spool = _open(args)
    try:
        meta = spool.meta()
        status: dict[str, Any] = json.loads(meta.get("status", "{}"))
        stats = spool.stats()
    finally:
        spool.close()
    age = time.time() - float(status.get("updated", 0) or 0)
    running = bool(status) and not status.get("stopped") and age < STALE_S
    out = {
        "running": running,
        "connected": bool(status.get("connected")) and running,
        "vehicle": status.get("vehicle"),
        "broker": status.get("broker"),
        "spool": stats,
        "last_error": status.get("last_error", ""),
        "campaigns": status.get("campaigns", []),
        "events": status.get("events", {}),
        "commands": status.get("commands", {}),
        "status_age_s": round(age, 1) if status else None,
    }
    if args.json:
        print_json(out)
        return 0
    link = "connected" if out["connected"] else ("disconnected" if running else "hub not running")
    console.print(f"[bold]{out['vehicle'] or '?'}[/] -> {out['broker'] or '?'}: {link}", highlight=False)
    console.print(
        f"spool: {stats['depth']} message(s), {stats['bytes']:,} of {stats['quota_bytes']:,} bytes, "
        f"oldest {_when(stats['oldest'])}; published {stats['published']:,}, dropped {stats['dropped']:,}",
        highlight=False,
    )
    if stats["drops"]:
        console.print("drops: " + ", ".join(f"{k} {v}" for k, v in stats["drops"].items()), highlight=False)
    if out["last_error"]:
        console.print(f"last error: {out['last_error']}", highlight=False)
    return 0


def uplink_campaigns(args: argparse.Namespace) -> int:
    spool = _open(args)
    try:
        listed: list[dict[str, Any]] = json.loads(spool.meta().get("campaigns", "[]"))
    finally:
        spool.close()
    if args.json:
        print_json({"campaigns": listed})
        return 0
    table = Table(title="uplink campaigns", title_justify="left")
    for col in ("id", "version", "source", "priority", "collect", "signals"):
        table.add_column(col)
    for c in listed:
        table.add_row(
            c["id"],
            str(c["version"]),
            c["source"],
            str(c["priority"]),
            json.dumps(c["collect"]),
            ", ".join(c["signals"]),
        )
    console.print(table)
    return 0


def replay_spool(args: argparse.Namespace) -> int:
    from anycar.wire import decode

    spool = _open(args)
    try:
        entries = spool.after(0, max(1, args.limit))
        if args.to:
            status = json.loads(spool.meta().get("status", "{}"))
            vehicle = args.vehicle_id or status.get("vehicle")
            if not vehicle:
                raise ConfigError("--to needs --vehicle-id (the spool does not say which vehicle it is)")
            sent = asyncio.run(_publish(spool, entries, args.to, vehicle))
            result = {"published": sent, "left": spool.depth}
            print_json(result) if args.json else console.print(
                f"published {sent}, {spool.depth} left", highlight=False
            )
            return 0
        rows = []
        for e in entries:
            try:
                body: Any = decode(e.payload)
            except ValueError as exc:
                body = {"undecodable": str(exc)}
            rows.append(
                {
                    "id": e.id,
                    "channel": e.channel,
                    "prio": e.prio,
                    "seq": e.seq,
                    "created": _when(e.created),
                    "message": body,
                }
            )
    finally:
        spool.close()
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            console.print(json.dumps(row, default=str), highlight=False, soft_wrap=True)
    return 0


async def _publish(spool: Any, entries: list[Any], url: str, vehicle: str) -> int:
    from anycar.uplink import UplinkConfig
    from anycar.uplink.mqtt import make_client, publish_properties
    from anycar.wire import content_type, topic

    cfg = UplinkConfig.from_url(url, vehicle)
    cfg.client_id = f"anycar-replay-{vehicle}"
    sent = 0
    client = make_client(cfg, None, session=False)  # a replay is not the vehicle: no will, no session
    async with client:
        for e in entries:
            props = publish_properties(content_type(cfg.format, e.payload[:1] == b"\x78"), None)
            code = await asyncio.wait_for(
                client.publish_acked(topic(vehicle, e.channel), e.payload, max(1, e.qos), properties=props),
                10,
            )
            if code < 0x80:
                spool.ack(e)
                sent += 1
    return sent
