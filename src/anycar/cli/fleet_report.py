"""`anycar fleet report`: a tenant's fleet or vehicle report of a day or a week, as JSON, CSV or
printable HTML, straight from the fleet database (what the API's /api/reports routes answer)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError


def register(cmds: Any, db_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = cmds.add_parser("report", help="a fleet or vehicle report of a day or week (json, csv, html)")
    p.add_argument("--tenant", required=True)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", metavar="YYYY-MM-DD", help="a UTC day")
    when.add_argument("--week", metavar="YYYY-Www", help="an ISO week (Monday to Sunday, UTC)")
    p.add_argument("--vehicle", metavar="ID", help="one vehicle (default: the whole fleet)")
    p.add_argument("--format", choices=["json", "csv", "html"], default="json")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    db_arg(p)
    p.set_defaults(func=report)

    r = cmds.add_parser("rederive", help="derive trips and stops again (after trips.yaml changed)")
    r.add_argument("--tenant", required=True)
    r.add_argument("--vehicle", metavar="ID", action="append", help="only these (default: every vehicle)")
    r.add_argument("--trips", metavar="FILE", help="the trips.yaml to use (default: the packaged one)")
    db_arg(r)
    r.set_defaults(func=rederive)


def report(args: argparse.Namespace) -> int:
    import json

    from anycar.fleet import domain_queries, reports
    from anycar.fleet.db import make_engine
    from anycar.fleet.migrate import upgrade
    from anycar.fleet.registry import RegistryError, tenant_id

    engine = make_engine(args.db)
    upgrade(engine)
    try:
        tid = tenant_id(engine, args.tenant)
        period = reports.period(day=args.day, week=args.week)
    except (RegistryError, reports.ReportError) as exc:
        raise ConfigError(str(exc)) from None
    if args.vehicle:
        vid = domain_queries.vehicle_id(engine, tid, args.vehicle)
        if vid is None:
            raise ConfigError(f"--vehicle {args.vehicle!r}: no such vehicle in tenant {args.tenant!r}")
        doc = reports.vehicle_report(engine, tid, vid, period)
    else:
        doc = reports.fleet_report(engine, tid, period)
    if args.format == "csv":
        text = reports.to_csv(doc)
    elif args.format == "html":
        text = reports.to_html(doc, args.tenant)
    else:
        text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def rederive(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from anycar.fleet import db
    from anycar.fleet.db import make_engine
    from anycar.fleet.domain import DomainPipeline
    from anycar.fleet.migrate import upgrade
    from anycar.fleet.registry import RegistryError, tenant_id
    from anycar.fleet.store import Store
    from anycar.fleet.trips import TripConfigError, load_trip_config

    engine = make_engine(args.db)
    upgrade(engine)
    try:
        tid = tenant_id(engine, args.tenant)
        cfg = load_trip_config(Path(args.trips) if args.trips else None)
    except (RegistryError, TripConfigError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    v = db.vehicles.c
    query = select(v.id, v.wire_id).where(v.tenant_id == tid)
    with engine.connect() as conn:
        rows = {r.wire_id: r.id for r in conn.execute(query)}
    wanted = args.vehicle or sorted(rows)
    unknown = [w for w in wanted if w not in rows]
    if unknown:
        raise ConfigError(f"--vehicle {unknown[0]!r}: no such vehicle in tenant {args.tenant!r}")
    done = DomainPipeline(Store(engine), cfg=cfg).rederive([rows[w] for w in wanted])
    sys.stdout.write(f"trips and stops derived again for {done} vehicle(s) of {args.tenant}\n")
    return 0
