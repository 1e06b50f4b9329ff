"""`anycar demo`: the whole hub on embedded defaults, driven by the simulator.

The simulator drives the chosen car (frames through its DBC onto virtual CAN buses, read back by
the brand adapter), the virtual accessories are fitted at its mount points, every API and the
cabin dashboard listen on localhost, and a live status line shows what is going on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import tempfile
from pathlib import Path
from typing import Any

from anycar.cli.output import console
from anycar.cli.profile_args import add_profile_arguments, profile_from_args

DEFAULT_BRAND = "xiaomi_su7"
DEMO_HISTORY = 2400  # values per signal: two minutes of a 10 Hz signal, twice over


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run the whole hub on embedded defaults, driven by the simulator")
    demo.add_argument("--brand", help=f"reference profile to drive (default {DEFAULT_BRAND})")
    add_profile_arguments(demo)
    demo.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per real second")
    demo.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: until Ctrl-C)")
    demo.add_argument("--seed", type=int, default=0, help="simulator seed")
    demo.add_argument(
        "--headless", action="store_true", help="no live status line, just the URLs and a summary"
    )
    demo.add_argument("--port-offset", type=int, default=0, help="add this to every default port")
    demo.add_argument(
        "--no-automations", action="store_true", help="do not load the shipped example automations"
    )
    demo.add_argument(
        "--no-virtual-accessories",
        action="store_true",
        help="leave every mount free for accessories of your own (the virtual ones fill some cars)",
    )
    demo.add_argument(
        "--scenario",
        metavar="NAME|FILE|none",
        help="faults over the simulated drive (default: the shipped one for the brand, e.g. weak-12v "
        "on tesla_model3, whose 12 V rail sags so the cooler example acts; `none` for a plain drive)",
    )
    demo.add_argument(
        "--uplink",
        nargs="?",
        const="embedded",
        metavar="URL",
        help="also report to the fleet over MQTT: to URL, or (alone) to an embedded broker",
    )
    fleet = demo.add_argument_group("the whole system (--fleet)")
    fleet.add_argument(
        "--fleet",
        action="store_true",
        help="the whole system: fleet cloud, MQTT broker and a mixed fleet of hubs on real streets",
    )
    fleet.add_argument("--vehicles", type=int, help="how many of the shipped fleet's vehicles (default all)")
    fleet.add_argument(
        "--hub-processes", type=int, default=1, help="processes the hubs are spread over (default 1)"
    )
    fleet.add_argument("--fleet-port", type=int, default=8090, help="the console's port (busy: a free one)")
    fleet.add_argument("--json", action="store_true", help="print the final summary as JSON")
    demo.set_defaults(func=run_demo)


def _examples() -> Path:
    from anycar.automations.component import examples_dir

    return examples_dir()


def run_fleet(args: argparse.Namespace) -> int:
    """``anycar demo --fleet`` (``make demo``): see anycar.fleetdemo.run."""
    from anycar.cli.output import print_json
    from anycar.fleetdemo.run import main_options, run_fleet_demo

    summary = None
    with contextlib.suppress(KeyboardInterrupt):
        summary = asyncio.run(run_fleet_demo(main_options(args)))
    if summary is None:
        return 0
    if args.json:
        print_json(summary)
        return 0
    cpu = summary["cpu"]
    console.print(
        f"{summary['reporting']} of {len(summary['vehicles'])} vehicles reported to the fleet; "
        f"hubs {cpu['hubs_cpu_percent']} % CPU ({cpu['per_vehicle_cpu_percent']} % a vehicle), "
        f"fleet cloud {cpu['fleet_cloud_cpu_percent']} % over {cpu['wall_s']} s"
    )
    for vin, v in summary["vehicles"].items():
        console.print(f"  {vin} {v['brand']:<15} {v['positions']} positions, {v['distinct']} places")
    if "delivery" in summary:  # the day's orders as the board shows them
        board = summary["orders"]["board"]
        console.print(
            f"orders: {', '.join(f'{n} {status}' for status, n in sorted(board.items()))}; "
            f"{summary['delivery']['delivered']} proofs of delivery verified"
        )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from anycar.grpc_setup import prefer_poller_reads

    # first, before anything imports grpc: the demo's hubs read their gRPC sockets as
    # ``anycar hub``'s do (anycar.grpc_setup)
    prefer_poller_reads(os.environ)
    if args.fleet:
        return run_fleet(args)
    from anycar.hub import HubConfig
    from anycar.hub.assemble import HubParts, build_hub

    config = HubConfig()
    # the dashboard's chart loads the last two minutes from VISS history: keep that much
    config.limits = dataclasses.replace(config.limits, history_per_signal=DEMO_HISTORY)
    config.ports = {name: port + args.port_offset if port else port for name, port in config.ports.items()}
    over = {name: port for name, port in config.ports.items() if port is not None and not 0 <= port <= 65535}
    if over:
        from anycar.cli.output import fail

        return fail(
            f"--port-offset {args.port_offset} puts "
            + ", ".join(f"{name} on {port}" for name, port in over.items())
            + "; ports go from 1 to 65535"
        )
    for name, port in config.ports.items():
        if port and not _port_free(config.host, port):
            console.print(f"[yellow]port {port} ({name}) is taken: using a free one instead[/]")
            config.ports[name] = 0
    with tempfile.TemporaryDirectory(prefix="anycar-demo-") as tmp:
        # your own DBC and mapping drive the default car's body (mounts, simulator) unless --brand
        if args.dbc and not args.brand:
            args.brand = DEFAULT_BRAND
        profile = profile_from_args(args)
        parts = HubParts(
            brand=args.brand or (None if profile is not None else DEFAULT_BRAND),
            profile=profile,
            db_path=Path(tmp) / "hub.sqlite3",
            accessory_port=config.ports.get("accessories") or 0,
            virtual_fleet=not args.no_virtual_accessories,
            simulate=True,
            seed=args.seed,
            speedup=args.speedup,
            automations=[] if args.no_automations else [_examples()],
            scenario=_scenario(args, profile),
        )
        mqtt = _demo_uplink(args, parts, Path(tmp))
        hub = build_hub(config, parts)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_run(hub, args))
        finally:
            if mqtt is not None:
                mqtt.stop()
    return 0


def _scenario(args: argparse.Namespace, profile: Any) -> str | None:
    """``--scenario``; by default the shipped scenario that lists the brand (anycar.sim.scenario)."""
    if args.scenario:
        return None if args.scenario == "none" else str(args.scenario)
    from anycar.sim.scenario import demo_scenario

    brand = args.brand or (profile.id if profile is not None else DEFAULT_BRAND)
    return demo_scenario(brand)


def _demo_uplink(args: argparse.Namespace, parts: Any, folder: Path) -> Any:
    """With ``--uplink``: the hub reports over MQTT, to an embedded broker unless a URL is given."""
    if not args.uplink:
        return None
    from anycar.embedded_broker import EmbeddedBroker
    from anycar.uplink import UplinkConfig

    vehicle, password = f"demo-{args.brand}", secrets.token_urlsafe(24)
    # the embedded broker takes this hub's login alone (minted here), not anyone's
    mqtt = EmbeddedBroker(logins={vehicle: password}).start() if args.uplink == "embedded" else None
    parts.uplink = UplinkConfig.from_url(mqtt.url if mqtt else args.uplink, vehicle)
    parts.uplink.spool_path = folder / "uplink.sqlite3"
    if mqtt is not None:
        parts.uplink.username, parts.uplink.password = vehicle, password
    return mqtt


def _port_free(host: str, port: int) -> bool:
    """The demo runs on embedded defaults; a busy default port should not stop it."""
    from anycar.cli.ports import port_free

    return port_free(host, port)


async def _run(hub: Any, args: argparse.Namespace) -> None:
    from anycar.hub.cabin import CabinComponent
    from anycar.sim.status import DemoStatus, FittedAccessory, live_status

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration > 0:
        loop.call_later(args.duration, stop.set)
    with console.status("starting the hub, the simulator and the virtual accessories..."):
        await hub.start()
    endpoints = hub.endpoints()
    cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
    console.print(f"[bold]anycar demo[/]: {cabin.profile.title}, driven by the simulator")
    for name, url in endpoints.items():
        console.print(f"  {name:<12} {url}")
    console.print(f"[bold green]open the dashboard:[/] {endpoints.get('dashboard')}")

    def fitted() -> list[FittedAccessory]:
        view = cabin.accessories()["accessories"]
        return [
            FittedAccessory(a["name"], a["mount"] or "", a["power"]["now_w"], a["state"] != "unavailable")
            for a in view
        ]

    status = DemoStatus(
        hub.broker, endpoints.get("dashboard", ""), vehicle=cabin.profile.title, accessories=fitted
    )
    try:
        if args.headless or not console.is_terminal:  # a pipe gets the status once, at the end
            await stop.wait()
        else:
            with live_status(status, console=console):
                await stop.wait()
    finally:
        final = status.render()
        summary = hub.broker.stats()
        names = [a.name for a in fitted()]
        automations = _automations_line(hub)
        await hub.stop()
    console.print(final)
    console.print(
        f"{summary['updates']} signal updates, {summary['rejected']} rejected, {summary['dropped']} dropped; "
        f"{len(names)} accessories fitted: {', '.join(names)}"
    )
    if automations:
        console.print(automations, highlight=False)


def _automations_line(hub: Any) -> str:
    """What the shipped example automations did during the demo, in one line."""
    component = next((c for c in hub.components if c.name == "automations"), None)
    engine = getattr(component, "engine", None)
    if engine is None:
        return ""
    health = engine.health()
    waiting = [s.id for s in engine.status.values() if s.state == "refused"]
    return f"automations: {health['active']} active, {health['runs']} runs" + (
        f"; waiting for their accessory: {', '.join(waiting)}" if waiting else ""
    )
