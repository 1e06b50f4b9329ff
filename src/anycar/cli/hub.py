"""`anycar hub [--brand PROFILE] [--can SOURCE] [--config FILE]`: run the in-vehicle hub.

It prints one line ``anycar hub ready {json of endpoints}`` on stdout when every server
listens, and shuts down cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from anycar.cli.output import errors, fail
from anycar.cli.parser import log_level
from anycar.cli.ports import busy
from anycar.cli.profile_args import add_profile_arguments, profile_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("hub", help="run the hub: VISS v2, kuksa.val.v2 gRPC and REST over one signal broker")
    p.add_argument("--config", help="hub config file (YAML or TOML): host, ports, tokens, tls, limits")
    p.add_argument("--brand", metavar="PROFILE", help="brand profile whose CAN mapping feeds the broker")
    add_profile_arguments(p)
    p.add_argument("--can", metavar="SOURCE", help="CAN source for the brand adapter (interface or log file)")
    p.add_argument(
        "--db",
        metavar="FILE",
        help="accessory registry, trust keys and events (SQLite; default $ANYCAR_HUB_DB or ~/.local/share/anycar/hub.sqlite3)",
    )
    p.add_argument(
        "--simulate",
        action="store_true",
        help="drive the car with the simulator (frames on virtual CAN buses)",
    )
    p.add_argument(
        "--speedup", type=float, default=1.0, help="simulated seconds per real second (with --simulate)"
    )
    p.add_argument("--seed", type=int, default=0, help="simulator seed (with --simulate)")
    p.add_argument(
        "--virtual-accessories",
        action="store_true",
        help="fit the virtual accessories that find a free mount",
    )
    p.add_argument(
        "--automations",
        metavar="DIR",
        action="append",
        help="automation and scene definitions (a YAML file or a folder of them; may repeat)",
    )
    p.add_argument("--host", help="bind address (overrides the config)")
    p.add_argument("--grpc-port", type=int, help="kuksa.val.v2 gRPC port (0: any free port)")
    p.add_argument("--viss-port", type=int, help="VISS v2 WebSocket port (0: any free port)")
    p.add_argument("--http-port", type=int, help="REST and VISS-over-HTTP port (0: any free port)")
    p.add_argument("--accessory-port", type=int, help="accessory WebSocket port (0: any free port)")
    p.add_argument(
        "--log-level",
        type=log_level,
        default="WARNING",
        help="DEBUG, INFO, WARNING (default), ERROR or CRITICAL",
    )
    p.add_argument(
        "--uplink",
        metavar="URL",
        help="report to the fleet over MQTT 5: mqtt://HOST:PORT or mqtts://HOST:PORT",
    )
    p.add_argument(
        "--vehicle-id", help="this vehicle's id on the uplink (default: the config's, else the host name)"
    )
    p.add_argument(
        "--gc",
        choices=("idle", "python"),
        default="idle",
        help="when the cyclic collector runs: idle (default: on a 0.1 s timer, off the message path) "
        "or python (CPython's own trigger, in the middle of whatever allocates)",
    )
    p.set_defaults(func=run_hub)


def run_hub(args: argparse.Namespace) -> int:
    from anycar.grpc_setup import prefer_poller_reads

    # first, before anything imports grpc: its server then reads sockets in grpc.aio's poller
    # thread, one thread hand-off per incoming message instead of three (anycar.grpc_setup)
    prefer_poller_reads(os.environ)
    from anycar.errors import ConfigError
    from anycar.hub import HubConfig
    from anycar.hub.assemble import HubParts, build_hub
    from anycar.policy.db import default_db_path

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = HubConfig.load(args.config) if args.config else HubConfig()
    if args.host:
        config.host = args.host
        config.source = f"{config.source} with --host {args.host}"
    for name in ("grpc", "viss", "http"):
        value = getattr(args, f"{name}_port")
        if value is not None:
            config.ports[name] = value
    profile = profile_from_args(args)
    # a cabin (accessories, policy) needs the car's mount points
    has_mounts = profile is not None and profile.file("mounts.yaml").is_file()
    if profile is not None and args.virtual_accessories and not has_mounts:
        raise ConfigError(
            f"--virtual-accessories: {profile.title} has no mount points (mounts.yaml); "
            "add --brand PROFILE to use that car's"
        )
    if args.accessory_port is not None:
        config.ports["accessories"] = args.accessory_port
    taken = busy(config.host, {k: v for k, v in config.ports.items() if k != "accessories" or has_mounts})
    if taken:
        flags = {
            "grpc": "--grpc-port",
            "viss": "--viss-port",
            "http": "--http-port",
            "accessories": "--accessory-port",
        }
        return fail(
            "port "
            + ", ".join(f"{port} ({name})" for name, port in taken.items())
            + f" on {config.host} is in use (is `anycar demo` or another hub running?); "
            + "choose others with "
            + ", ".join(f"{flags.get(name, name)} PORT" for name in taken)
            + " (0 picks a free one) or in the config's ports section"
        )
    if args.uplink:
        from anycar.uplink import UplinkConfig

        config.uplink = UplinkConfig.from_url(args.uplink, args.vehicle_id)
    elif args.vehicle_id and config.uplink is not None:
        config.uplink.rename(args.vehicle_id)
    if config.uplink is not None and config.uplink.spool_path is None and args.db:
        config.uplink.spool_path = Path(args.db).with_name("uplink.sqlite3")
    parts = HubParts(
        brand=args.brand,
        profile=profile,
        can=args.can,
        db_path=Path(args.db) if args.db else default_db_path() if has_mounts else None,
        accessory_port=config.ports.get("accessories") or 0,
        virtual_fleet=args.virtual_accessories,
        simulate=args.simulate,
        seed=args.seed,
        speedup=args.speedup,
        automations=[Path(a) for a in args.automations] if args.automations else config.automations,
    )
    hub = build_hub(config, parts)
    if config.open:
        errors.print(
            "[bold yellow]note:[/] no token key configured (tokens.public_key): every client may read, "
            "actuate and provide everything, so the hub listens on loopback only",
            highlight=False,
        )
    asyncio.run(_serve(hub, idle_gc=args.gc == "idle"))
    return 0


async def _serve(hub: Any, *, idle_gc: bool = True) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    # What exists now (catalog, modules, servers) lives as long as the process: move it out of
    # the collector's way, so a full collection does not pause every API for ~30 ms.
    gc.collect()
    gc.freeze()
    if idle_gc:  # young collections between messages, not inside one (anycar.idle_gc)
        from anycar.idle_gc import IdleCollector

        collector = IdleCollector()
        hub.supervisor.spawn("idle-gc", collector.run)
    try:
        sys.stdout.write("anycar hub ready " + json.dumps(hub.endpoints()) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await hub.stop()
        errors.print("anycar hub stopped", highlight=False)
