"""`anycar swap ...`: battery-swap stations (fleet side).

``register`` a station (prints its basic-auth password once), ``token`` for a vehicle, ``pack``
into the inventory, ``passport`` of a pack, ``station`` runs a station simulator (a separate
process speaking only OCPP 2.1 to the CSMS of ``anycar fleet serve --ocpp-port``), ``simulate``
the queue and capacity of N stations over a day (table and chart).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from anycar.cli.output import console, errors, print_json
from anycar.errors import ConfigError


def register(sub: Any) -> None:
    group = sub.add_parser(
        "swap", help="battery-swap stations: registry, passport, station simulator, queue simulation"
    )
    cmds = group.add_subparsers(dest="swap_command", metavar="COMMAND", required=True)

    def db_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="database URL (default: $ANYCAR_FLEET_DB or the SQLite file)")

    reg = cmds.add_parser(
        "register", help="register a station and its slots; prints its password once (profile 2)"
    )
    reg.add_argument("station", help="its OCPP identity")
    reg.add_argument("--tenant", default="default", help="the operator")
    reg.add_argument("--layout", default="pickman-8", help="a shipped layout name or a YAML file")
    reg.add_argument(
        "--profile", type=int, choices=(2, 3), default=2, help="2: TLS + basic auth, 3: client certificate"
    )
    reg.add_argument("--tariff", metavar="YAML", help="a file with 24 prices per kWh (UTC hours)")
    reg.add_argument("--stock", action="store_true", help="put the layout's packs into the slots' inventory")
    db_arg(reg)
    reg.set_defaults(func=cmd_register)

    tok = cmds.add_parser("token", help="issue a swap idToken to a registered vehicle; prints it")
    tok.add_argument("vehicle", help="the vehicle's wire id")
    db_arg(tok)
    tok.set_defaults(func=cmd_token)

    pack = cmds.add_parser("pack", help="a pack enters the inventory (in a vehicle)")
    pack.add_argument("serial")
    pack.add_argument("--vehicle", required=True, help="the wire id of the vehicle it is in")
    pack.add_argument("--chemistry", default="LFP")
    pack.add_argument("--capacity", type=float, default=10.0, help="kWh")
    pack.add_argument("--soh", type=float, default=100.0)
    pack.add_argument("--soc", type=float, default=50.0)
    db_arg(pack)
    pack.set_defaults(func=cmd_pack)

    pp = cmds.add_parser("passport", help="a pack's battery passport: identity, where it is, its history")
    pp.add_argument("serial")
    pp.add_argument("--json", action="store_true")
    db_arg(pp)
    pp.set_defaults(func=cmd_passport)

    st = cmds.add_parser(
        "station", help="run a station simulator against a CSMS (OCPP 2.1 over WebSocket only)"
    )
    st.add_argument("--id", required=True, help="the station's OCPP identity")
    st.add_argument("--url", required=True, help="the CSMS, e.g. wss://fleet:9000/ocpp")
    st.add_argument("--layout", default="pickman-8")
    st.add_argument(
        "--password-file", metavar="FILE", help="basic-auth password (else $ANYCAR_STATION_PASSWORD)"
    )
    st.add_argument("--ca", metavar="PEM", help="CA of the CSMS's certificate (wss://)")
    st.add_argument("--cert", metavar="PEM", help="client certificate (profile 3)")
    st.add_argument("--key", metavar="PEM")
    st.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second (charging, robot)")
    st.add_argument("--meter-interval", type=float, default=60.0, help="seconds between MeterValues per slot")
    st.add_argument(
        "--arrivals",
        metavar="YAML",
        help="vehicles arriving: [{after_s, token, pack: {serial, soc, soh, capacity_kwh}}]",
    )
    st.set_defaults(func=cmd_station)

    sim = cmds.add_parser(
        "simulate", help="queue and capacity of N stations over a day (simpy), against NIO Gen4"
    )
    sim.add_argument("--stations", type=int, default=2)
    sim.add_argument("--layout", default="pickman-8")
    sim.add_argument("--vehicles", type=int, default=20)
    sim.add_argument("--swaps-per-vehicle", type=float, default=1.5, help="swaps per vehicle per day")
    sim.add_argument("--demand", default="delivery-day", help="a shipped demand profile or a YAML file")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--chart", metavar="FILE", help="draw the queue over the day (.png or .svg)")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_simulate)


def _engine(args: argparse.Namespace) -> Any:
    from anycar.fleet.db import make_engine
    from anycar.swap.migrate import upgrade

    engine = make_engine(args.db)
    upgrade(engine)
    return engine


def _registry(call: Any) -> Any:
    from anycar.fleet.registry import RegistryError
    from anycar.swap.policy import LayoutError

    try:
        return call()
    except (RegistryError, LayoutError) as exc:
        raise ConfigError(str(exc)) from None


def _tariff(path: str | None) -> list[float] | None:
    if path is None:
        return None
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}".splitlines()[0]) from None
    prices = doc.get("prices") if isinstance(doc, dict) else doc
    if not isinstance(prices, list) or not all(
        isinstance(p, int | float) and not isinstance(p, bool) for p in prices
    ):
        raise ConfigError(f"{path}: prices: a list of 24 numbers is required")
    return [float(p) for p in prices]


def cmd_register(args: argparse.Namespace) -> int:
    from anycar.swap import registry

    engine = _engine(args)
    password = _registry(
        lambda: registry.add_station(
            engine,
            args.station,
            tenant=args.tenant,
            layout=args.layout,
            profile=args.profile,
            tariff=_tariff(args.tariff),
        )
    )
    if args.stock:
        serials = _registry(lambda: registry.stock_station(engine, args.station, args.layout))
        errors.print(f"{len(serials)} packs stocked in {args.station}", highlight=False)
    if password:
        print(password)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from anycar.swap import registry

    print(_registry(lambda: registry.add_token(_engine(args), args.vehicle)))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from anycar.swap import registry

    engine = _engine(args)
    _registry(
        lambda: registry.add_pack(
            engine,
            args.serial,
            chemistry=args.chemistry,
            capacity_kwh=args.capacity,
            soh=args.soh,
            soc=args.soc,
            vehicle=args.vehicle,
        )
    )
    return 0


def cmd_passport(args: argparse.Namespace) -> int:
    from anycar.swap.inventory import passport

    doc = passport(_engine(args), args.serial)
    if doc is None:
        raise ConfigError(f"pack {args.serial!r}: not in the inventory")
    if args.json:
        print_json(doc)
        return 0
    console.print(
        f"[bold]{doc['serial']}[/] {doc['chemistry']} {doc['capacity_kwh']:g} kWh  SoH {doc['soh']:g} %  "
        f"SoC {doc['soc']:g} %  {doc['cycles']:.2f} cycles  [bold]{doc['state']}[/]"
    )
    table = Table("time (UTC)", "event", "station", "slot", "vehicle", "SoC", "SoH")
    from datetime import UTC, datetime

    for h in doc["history"]:
        table.add_row(
            datetime.fromtimestamp(h["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S"), h["event"], str(h.get("station_id", "")),
            str(h.get("evse_id", "")), str(h.get("vehicle_id", "")), f"{h.get('soc', '')}", f"{h.get('soh', '')}",
        )  # fmt: skip
    console.print(table)
    return 0


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--password-file {args.password_file}: {exc.strerror}") from None
    return os.environ.get("ANYCAR_STATION_PASSWORD")


def _arrivals(path: str | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}".splitlines()[0]) from None
    if not isinstance(doc, list):
        raise ConfigError(f"{path}: a list of arrivals is required")
    for i, item in enumerate(doc):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("token"), str)
            or not isinstance(item.get("pack"), dict)
        ):
            raise ConfigError(f"{path}: arrival {i + 1}: token (string) and pack (mapping) are required")
        if not isinstance(item["pack"].get("serial"), str):
            raise ConfigError(f"{path}: arrival {i + 1}: pack.serial is required")
    return doc


def cmd_station(args: argparse.Namespace) -> int:
    from anycar.swap.policy import LayoutError
    from anycar.swap.station import StationSim, client_tls

    try:
        tls = client_tls(args.ca, args.cert, args.key) if args.ca else None
        sim = StationSim(
            args.id,
            args.url,
            args.layout,
            password=_password(args),
            ssl_context=tls,
            speed=args.speed,
            meter_s=args.meter_interval,
        )
    except (LayoutError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    return asyncio.run(_run_station(sim, _arrivals(args.arrivals)))


async def _run_station(sim: Any, arrivals: list[dict[str, Any]]) -> int:
    from websockets.exceptions import InvalidStatus

    from anycar.swap.station import Pack, Vehicle

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sim.stop()))

    async def drive() -> None:
        await sim.booted.wait()
        sys.stdout.write(f"anycar swap station {sim.ident} ready\n")
        sys.stdout.flush()
        for item in arrivals:
            await asyncio.sleep(float(item.get("after_s", 0)))
            p = item["pack"]
            pack = Pack(
                p["serial"],
                float(p.get("soc", 20)),
                float(p.get("soh", 95)),
                float(p.get("capacity_kwh", sim.layout.capacity_kwh)),
            )
            got = await sim.arrive(
                Vehicle(item["token"], pack), timeout=max(120.0, sim.layout.mechanical_s / sim.speed * 3)
            )
            sys.stdout.write(f"swap {item['token'][:8]}: {pack.serial} -> {got.serial if got else 'none'}\n")
            sys.stdout.flush()

    driver = asyncio.ensure_future(drive())
    try:
        await sim.run()
    except InvalidStatus as exc:
        raise ConfigError(
            f"{sim.url}/{sim.ident}: the CSMS refused the station (HTTP {exc.response.status_code})"
        ) from None
    finally:
        driver.cancel()
    errors.print(f"anycar swap station {sim.ident} stopped", highlight=False)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from anycar.swap.policy import LayoutError
    from anycar.swap.simulate import nio_comparison, queue_chart, simulate

    if args.stations < 1 or args.vehicles < 0 or args.swaps_per_vehicle < 0:
        raise ConfigError("--stations at least 1; --vehicles and --swaps-per-vehicle not negative")
    try:
        results = simulate(
            stations=args.stations, layout=args.layout, vehicles=args.vehicles,
            swaps_per_vehicle=args.swaps_per_vehicle, demand=args.demand, seed=args.seed,
        )  # fmt: skip
        nio = nio_comparison(demand=args.demand, seed=args.seed)
    except LayoutError as exc:
        raise ConfigError(str(exc)) from None
    rows = [
        {
            "station": r.name, "swaps_per_day": r.swaps, "wait_mean_s": round(r.wait_stats()["mean"], 1),
            "wait_p95_s": round(r.wait_stats()["p95"], 1), "wait_max_s": round(r.wait_stats()["max"], 1),
            "max_queue": r.max_queue(), "no_ready_pack": r.pack_waits, "packs": r.packs, "packs_needed": r.packs_needed,
        }
        for r in results
    ]  # fmt: skip
    if args.chart:
        queue_chart(results, Path(args.chart))
    if args.json:
        print_json({"stations": rows, "nio_gen4": nio, "chart": args.chart})
        return 0
    table = Table(
        title=f"{args.stations} x {args.layout}, {args.vehicles} vehicles x {args.swaps_per_vehicle:g} swaps/day",
        title_justify="left",
    )
    for key in rows[0]:
        table.add_column(key.replace("_", " "), justify="left" if key == "station" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    ref = Table(
        title="station ceiling (one vehicle always waiting) vs NIO Gen4 as published", title_justify="left"
    )
    for col in ("", "batteries", "swap s", "swaps/day"):
        ref.add_column(col, justify="right")
    ref.add_row(
        "simulated " + nio["layout"],
        str(nio["batteries"]),
        f"{nio['swap_s']:g}",
        str(nio["simulated_swaps_per_day"]),
    )
    ref.add_row(
        "robot only (86400 / swap s)", "", f"{nio['swap_s']:g}", str(nio["mechanical_ceiling_per_day"])
    )
    pub = nio["published"]
    ref.add_row("NIO Gen4 (published)", str(pub["batteries"]), str(pub["swap_s"]), str(pub["swaps_per_day"]))
    console.print(ref)
    if args.chart:
        console.print(f"queue chart: {args.chart}")
    return 0


__all__ = ["register"]
