"""`anycar fleet ...`: the fleet cloud's database, registry, broker files and servers.

``db upgrade`` runs the migrations; ``tenant add``, ``user add`` (prints the API token once),
``vehicle add|revoke|list`` (``add`` prints the vehicle's MQTT password once and, with
``--broker-dir``, rewrites Mosquitto's password file and ACL); ``dead-letters``; ``serve`` runs
ingest + API + OsmAnd and prints ``anycar fleet ready {json}``; ``ingest`` runs workers alone.
The database is ``--db URL`` or ``$ANYCAR_FLEET_DB`` (SQLite file by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from anycar.cli.output import console, errors, print_json
from anycar.errors import ConfigError


def register(sub: Any) -> None:
    group = sub.add_parser("fleet", help="the fleet cloud: database, registry, broker ACL, ingest, API")
    cmds = group.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    def db_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db", metavar="URL", help="sqlite:///FILE or postgresql://HOST/DB (default $ANYCAR_FLEET_DB)"
        )

    dbp = cmds.add_parser("db", help="the fleet database")
    dbc = dbp.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbc.add_parser("upgrade", help="run the migrations (also done on every start)")
    db_arg(up)
    up.set_defaults(func=db_upgrade)

    tp = cmds.add_parser("tenant", help="tenants")
    tc = tp.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    ta = tc.add_parser("add", help="add a tenant")
    ta.add_argument("name")
    db_arg(ta)
    ta.set_defaults(func=tenant_add)
    _register_scale(dbc, tc, db_arg)

    up_ = cmds.add_parser("user", help="users and their API tokens")
    uc = up_.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    ua = uc.add_parser("add", help="add a user; prints the API token once")
    ua.add_argument("name")
    ua.add_argument("--tenant", required=True)
    ua.add_argument("--role", required=True, choices=["owner", "dispatcher", "driver", "viewer"])
    ua.add_argument("--json", action="store_true")
    db_arg(ua)
    ua.set_defaults(func=user_add)

    vp = cmds.add_parser("vehicle", help="vehicles: register (minting MQTT credentials), revoke, list")
    vc = vp.add_subparsers(dest="vehicle_command", metavar="ACTION", required=True)
    va = vc.add_parser("add", help="register a vehicle; prints its credentials once")
    va.add_argument("vin")
    va.add_argument("--brand", required=True, help="brand profile (e.g. kaiyun_pickman)")
    va.add_argument("--tenant", default="default")
    va.add_argument("--vehicle-id", help="its wire id (the hub's --vehicle-id; default: the VIN)")
    va.add_argument("--tracker", action="store_true", help="a plain GPS tracker/phone (OsmAnd), no hub")
    vr = vc.add_parser("revoke", help="cut a vehicle off (broker login, ACL, OsmAnd)")
    vr.add_argument("vehicle_id")
    vl = vc.add_parser("list", help="the registered vehicles")
    vl.add_argument("--tenant", default="default")
    for p, func in ((va, vehicle_add), (vr, vehicle_revoke), (vl, vehicle_list)):
        db_arg(p)
        p.add_argument("--json", action="store_true")
        if p is not vl:
            p.add_argument(
                "--broker-dir", metavar="DIR", help="rewrite DIR/passwords and DIR/acl for Mosquitto"
            )
        p.set_defaults(func=func)

    dl = cmds.add_parser("dead-letters", help="messages the ingest refused, with the reason")
    dl.add_argument("--limit", type=int, default=20)
    dl.add_argument("--json", action="store_true")
    db_arg(dl)
    dl.set_defaults(func=dead_letters)

    from anycar.cli import fleet_report  # trips, stops and alerts summed per day or week

    fleet_report.register(cmds, db_arg)

    for name, text in (
        ("serve", "run ingest + REST API + OsmAnd listener"),
        ("ingest", "run ingest workers only"),
    ):
        p = cmds.add_parser(name, help=text)
        db_arg(p)
        p.add_argument("--mqtt", default="mqtt://127.0.0.1:1883", metavar="URL", help="the broker")
        p.add_argument("--mqtt-username", help="default: anycar-ingest if --broker-dir is given")
        p.add_argument("--broker-dir", metavar="DIR", help="read the ingest password from DIR/ingest.secret")
        p.add_argument("--workers", type=int, default=1)
        p.add_argument(
            "--worker-id", default="", help="stable id of this process's workers (broker sessions)"
        )
        p.add_argument("--group", default="anycar-ingest", help="the shared-subscription group")
        p.add_argument("--vehicle", action="append", help="only these vehicles' topics (default: all)")
        p.add_argument(
            "--trips", metavar="FILE", help="trips.yaml: how trips and stops are cut (default: packaged)"
        )
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8090, help="REST API (0: any free port)")
            p.add_argument("--osmand-port", type=int, default=5055, help="OsmAnd listener (0: any free port)")
            # swap stations: the OCPP 2.1 CSMS (anycar.swap), off unless a port is given
            p.add_argument("--ocpp-port", type=int, help="OCPP 2.1 CSMS for swap stations (0: any free port)")
            p.add_argument("--ocpp-cert", metavar="PEM", help="the CSMS's TLS certificate (profiles 2 and 3)")
            p.add_argument("--ocpp-key", metavar="PEM", help="its private key")
            p.add_argument(
                "--ocpp-client-ca", metavar="PEM", help="CA of the stations' client certificates (profile 3)"
            )
            p.add_argument(
                "--dashboard-url",
                metavar="TEMPLATE",
                help="the console's link to a vehicle's cabin dashboard, e.g. http://{vehicle}.hubs.lan:8080/",
            )
        p.set_defaults(func=serve, serve_api=name == "serve")
        if name == "serve":  # fleet-commands: the key that signs commands
            p.add_argument(
                "--signing-key",
                metavar="PEM",
                help="default $ANYCAR_FLEET_KEY or ~/.local/share/anycar/fleet-signing.pem",
            )

    # fleet-commands: key, command, inventory, vendor-key, firmware, rollout
    from anycar.cli.fleet_commands import register as register_commands

    register_commands(cmds, db_arg)

    from anycar.cli import logistics  # logistics: orders import/list, plan

    logistics.register(cmds, db_arg)


def _engine(args: argparse.Namespace) -> Any:
    from sqlalchemy.exc import OperationalError

    from anycar.fleet.db import make_engine
    from anycar.fleet.migrate import upgrade

    engine = make_engine(args.db)
    try:
        upgrade(engine)
    except OperationalError as exc:  # no such folder, read-only file, server down: one line
        where = engine.url.render_as_string(hide_password=True)
        why = " ".join(str(exc.orig).split())
        raise ConfigError(f"database {where}: {why} (--db or $ANYCAR_FLEET_DB)") from None
    return engine


def _registry_call(call: Any) -> Any:
    from anycar.fleet.registry import RegistryError

    try:
        return call()
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def db_upgrade(args: argparse.Namespace) -> int:
    from anycar.fleet.migrate import current

    engine = _engine(args)
    console.print(f"fleet database at revision {current(engine)}")
    return 0


def tenant_add(args: argparse.Namespace) -> int:
    from anycar.fleet.registry import tenant_id

    _registry_call(lambda: tenant_id(_engine(args), args.name, create=True))
    console.print(f"tenant {args.name}")
    return 0


def user_add(args: argparse.Namespace) -> int:
    from anycar.fleet.registry import add_user

    token = _registry_call(lambda: add_user(_engine(args), args.tenant, args.name, args.role))
    if args.json:
        print_json({"user": args.name, "tenant": args.tenant, "role": args.role, "token": token})
    else:
        console.print(f"user {args.name} ({args.role}) of {args.tenant}; API token (shown once):\n{token}")
    return 0


def _broker_files(engine: Any, folder: str | None) -> str | None:
    from anycar.fleet.mosquitto import write_files

    if not folder:
        return None
    files = write_files(engine, Path(folder))
    return str(files.passwords.parent)


def vehicle_add(args: argparse.Namespace) -> int:
    from anycar.fleet.registry import add_vehicle

    engine = _engine(args)
    creds = _registry_call(
        lambda: add_vehicle(
            engine, args.vin, args.brand, tenant=args.tenant, wire_id=args.vehicle_id, tracker=args.tracker
        )
    )
    written = _broker_files(engine, args.broker_dir)
    out = {
        "vehicle": creds.vehicle,
        "username": creds.username,
        "password": creds.password,
        "broker_dir": written,
    }
    if args.json:
        print_json(out)
    elif creds.password is None:
        console.print(
            f"tracker {creds.vehicle}: point Traccar Client (OsmAnd) at the fleet with this device id"
        )
    else:
        console.print(
            f"vehicle {creds.vehicle}: MQTT user {creds.username}, password (shown once) {creds.password}"
            + (f"\nbroker files rewritten in {written} (send Mosquitto SIGHUP)" if written else "")
        )
    return 0


def vehicle_revoke(args: argparse.Namespace) -> int:
    from anycar.fleet.registry import revoke_vehicle

    engine = _engine(args)
    _registry_call(lambda: revoke_vehicle(engine, args.vehicle_id))
    written = _broker_files(engine, args.broker_dir)
    if args.json:
        print_json({"vehicle": args.vehicle_id, "revoked": True, "broker_dir": written})
    else:
        console.print(
            f"vehicle {args.vehicle_id} revoked" + (f"; broker files in {written}" if written else "")
        )
    return 0


def vehicle_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from anycar.fleet import queries
    from anycar.fleet.registry import tenant_id

    engine = _engine(args)
    rows = queries.vehicles(engine, _registry_call(lambda: tenant_id(engine, args.tenant)))
    if args.json:
        print_json(rows)
        return 0
    table = Table(
        "id", "vin", "brand", "kind", "online", "revoked", "last position", title=f"vehicles of {args.tenant}"
    )
    for r in rows:
        p = r["position"]
        table.add_row(
            r["id"],
            r["vin"],
            r["brand"],
            r["kind"],
            str(r["online"]),
            str(r["revoked"]),
            f"{p['lat']:.5f}, {p['lon']:.5f}" if p else "-",
        )
    console.print(table)
    return 0


def dead_letters(args: argparse.Namespace) -> int:
    from rich.table import Table

    from anycar.fleet import queries

    rows = queries.dead_letters(_engine(args), None, limit=max(1, min(args.limit, 1000)))
    if args.json:
        print_json(rows)
        return 0
    table = Table("id", "topic", "reason", "detail", title="dead letters, newest first")
    for r in rows:
        table.add_row(str(r["id"]), r["topic"], r["reason"], r["detail"])
    console.print(table)
    return 0


def serve(args: argparse.Namespace) -> int:
    from anycar.fleet.mosquitto import INGEST_USER, ingest_password
    from anycar.fleet.server import FleetConfig, FleetServer

    username, password = args.mqtt_username, None
    if args.broker_dir:
        username = username or INGEST_USER
        password = ingest_password(Path(args.broker_dir))
    if args.workers < (0 if args.serve_api else 1):  # serve --workers 0: an API process alone
        raise ConfigError(
            "--workers: at least 1" + (" (0 for an API process alone)" if args.serve_api else "")
        )
    cfg = FleetConfig(
        db_url=args.db,
        mqtt=args.mqtt,
        mqtt_username=username,
        mqtt_password=password,
        workers=args.workers,
        worker_id=args.worker_id,
        group=args.group,
        vehicles=args.vehicle or ["+"],
        host=getattr(args, "host", "127.0.0.1"),
        api_port=args.port if args.serve_api else None,
        osmand_port=args.osmand_port if args.serve_api else None,
        signing_key=Path(args.signing_key) if getattr(args, "signing_key", None) else None,
        ocpp_port=getattr(args, "ocpp_port", None),
        ocpp_cert=getattr(args, "ocpp_cert", None),
        ocpp_key=getattr(args, "ocpp_key", None),
        ocpp_client_ca=getattr(args, "ocpp_client_ca", None),
        dashboard_url=getattr(args, "dashboard_url", None),
        trips_file=args.trips,
    )
    try:
        server = FleetServer(cfg)
    except (ValueError, OSError) as exc:  # TripConfigError is a ValueError
        raise ConfigError(str(exc)) from None
    if cfg.workers:  # ingest-speed: the collector tuned for batches held through their commit
        from anycar.fleet.ingest import tune_gc

        tune_gc()
    return asyncio.run(_run(server))


async def _run(server: Any) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except (ConnectionError, OSError, ConfigError) as exc:  # a port in use is a ConfigError
        await server.stop()
        raise ConfigError(str(exc)) from None
    try:
        sys.stdout.write("anycar fleet ready " + json.dumps(server.ready()) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await server.stop()
        errors.print("anycar fleet stopped", highlight=False)
    return 0


# ---- storage at scale (fleet-scale): retention per tenant, one maintenance round ----------------
def _register_scale(dbc: Any, tc: Any, db_arg: Any) -> None:
    tr = tc.add_parser(
        "retention",
        help="how many days a tenant's positions, signal values, events and dead letters are kept",
    )
    tr.add_argument("name")
    tr.add_argument("--days", type=float, help="keep this many days (omit with --forever)")
    tr.add_argument("--forever", action="store_true", help="keep everything (the default)")
    db_arg(tr)
    tr.set_defaults(func=tenant_retention)
    mp = dbc.add_parser("maintain", help="one round now: day partitions ahead, retention, dedup pruning")
    mp.add_argument("--json", action="store_true")
    db_arg(mp)
    mp.set_defaults(func=db_maintain)


def tenant_retention(args: argparse.Namespace) -> int:
    from anycar.fleet.registry import tenant_id
    from anycar.fleet.retention import RetentionError, set_days

    if (args.days is None) == (not args.forever):
        raise ConfigError("tenant retention: give --days N or --forever")
    engine = _engine(args)
    tid = _registry_call(lambda: tenant_id(engine, args.name))
    try:
        set_days(engine, tid, None if args.forever else args.days)
    except RetentionError as exc:
        raise ConfigError(str(exc)) from None
    console.print(f"tenant {args.name}: " + ("kept forever" if args.forever else f"kept {args.days:g} days"))
    return 0


def db_maintain(args: argparse.Namespace) -> int:
    from anycar.fleet.maintenance import Maintenance

    result = Maintenance(_engine(args)).run_once()
    if args.json:
        print_json(result)
    else:
        console.print(
            f"partitions made: {len(result['partitions_made'])}, dropped: {len(result['dropped'])}, "
            f"rows deleted: {result['deleted']}, dedup rows pruned: {result['received']['deleted']}"
        )
    return 0


__all__ = ["register"]
