"""`anycar fleet orders import|list` and `anycar fleet plan`: the orders board from the shell.

``orders import FILE.csv --tenant T`` streams the file with a progress bar and stores all its
orders in one transaction, or none and prints each bad row (``orders.csv:17: ...``, exit 1).
``plan --tenant T --depot LAT,LON`` plans the open orders with the tenant's vehicles (the same
call as ``POST /api/plans``) and stores the proposal; ``--accept`` makes it the plan in force and
pushes each vehicle's route to its hub (the same call as ``POST /api/plans/{id}/accept``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anycar.cli.output import console, errors, fail, print_json, progress


def register(cmds: Any, db_arg: Any) -> None:
    op = cmds.add_parser("orders", help="the orders board: import a CSV, list")
    oc = op.add_subparsers(dest="orders_command", metavar="ACTION", required=True)
    imp = oc.add_parser("import", help="import orders from a CSV file (all or nothing)")
    imp.add_argument("file", help="the CSV file (columns: see docs/logistics.md)")
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--json", action="store_true")
    lst = oc.add_parser("list", help="the board's orders")
    lst.add_argument("--tenant", required=True)
    lst.add_argument("--status", help="only this status (open, planned, delivered, failed, cancelled)")
    lst.add_argument("--json", action="store_true")
    pl = cmds.add_parser("plan", help="plan the open orders with the tenant's vehicles")
    pl.add_argument("--tenant", required=True)
    pl.add_argument("--depot", required=True, metavar="LAT,LON")
    pl.add_argument("--shift", default="08:00-18:00", metavar="HH:MM-HH:MM")
    pl.add_argument("--time-limit", type=float, default=5.0, help="solver seconds")
    pl.add_argument("--accept", action="store_true", help="make the proposal the plan in force")
    pl.add_argument("--json", action="store_true")
    for p, func in ((imp, orders_import), (lst, orders_list), (pl, plan_command)):
        db_arg(p)
        p.set_defaults(func=func)


def _tenant(engine: Any, name: str) -> int:
    from anycar.errors import ConfigError
    from anycar.fleet.registry import RegistryError, tenant_id

    try:
        return tenant_id(engine, name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def _engine(args: argparse.Namespace) -> Any:
    from anycar.cli.fleet import _engine as fleet_engine

    return fleet_engine(args)


def orders_import(args: argparse.Namespace) -> int:
    from anycar.logistics import board
    from anycar.logistics.csvimport import read_orders
    from anycar.logistics.settings import service_area

    path = Path(args.file)
    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    size = path.stat().st_size
    with path.open("rb") as raw, progress() as bar:
        task = bar.add_task(f"reading {path.name}", total=size or 1)
        result = read_orders(raw, path.name, service_area(), lambda done: bar.update(task, completed=done))
    if not result.ok:
        for line in result.errors:
            errors.print(line, highlight=False, markup=False, soft_wrap=True)
        more = result.error_count - len(result.errors)
        if more > 0:
            errors.print(f"... and {more} more", highlight=False)
        fail(f"{path.name}: {result.error_count} bad row(s) of {result.rows}; nothing imported")
        return 1
    where = {ref: f"{path.name}:{line}" for ref, line in result.lines.items()}
    try:
        with errors.status(f"storing {len(result.orders)} orders in one transaction..."):
            count = board.add_orders(engine, tid, result.orders, where)
    except board.BoardError as exc:
        for line in exc.errors[:100]:
            errors.print(line, highlight=False, markup=False, soft_wrap=True)
        fail(f"{path.name}: {exc.count} order(s) already on the board; nothing imported")
        return 1
    if args.json:
        print_json({"imported": count, "file": str(path)})
    else:
        console.print(f"imported {count} orders from {path.name}")
    return 0


def orders_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from anycar.logistics import board

    engine = _engine(args)
    rows = board.orders(engine, _tenant(engine, args.tenant), [args.status] if args.status else None)
    if args.json:
        print_json(rows)
        return 0
    table = Table(title=f"orders of {args.tenant}", title_justify="left")
    for col in ("id", "kind", "status", "vehicle", "weight_kg", "windows"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["kind"],
            r["status"],
            r["vehicle"] or "",
            f"{r['weight_kg']:g}",
            r["fields"].get("windows", ""),
        )
    console.print(table)
    return 0


def plan_command(args: argparse.Namespace) -> int:
    from anycar.errors import ConfigError
    from anycar.logistics import board, service

    try:
        lat, lon = (float(x) for x in args.depot.split(","))
    except ValueError:
        return fail(f"--depot {args.depot!r}: LAT,LON")
    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    options = {"depot": {"lat": lat, "lon": lon}, "shift": args.shift, "time_limit_s": args.time_limit}
    try:
        with errors.status(f"planning (solver time limit {args.time_limit:g} s)..."):
            result = service.propose(engine, tid, options)
        if args.accept:  # the same call as POST /api/plans/{id}/accept: routes pushed to the hubs
            accepted = service.accept(engine, tid, result["id"])
            result["status"] = "accepted"
            result["pushed"] = accepted["pushed"] if accepted else []
            if accepted and accepted.get("swap_pending"):  # no CSMS here: the server's settles them
                result["swap_pending"] = accepted["swap_pending"]
    except (service.PlanningError, board.BoardError) as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print_json(result)
        return 0
    body = result["plan"]
    console.print(
        f"plan {result['id']} ({result['status']}): {body['vehicles_used']} routes, "
        f"{body['distance_m'] / 1000:.1f} km, solver {body['solver']}"
        + (", best found in the time limit" if body["best_so_far"] else "")
        + (", travel figures are straight-line estimates" if body["estimate"] else "")
    )
    for route in body["routes"]:
        stops = " > ".join(s["order"] for s in route["stops"] if s["order"])
        console.print(
            f"  {route['vehicle']}: {stops}  ({route['distance_m'] / 1000:.1f} km, charge left {route['soc_end']:.0%})"
        )
    for item in body["unservable"]:
        console.print(f"  [yellow]not served[/] {item['order']}: {item['reason']}")
    for push in result.get("pushed", []):
        if push.get("skipped"):
            console.print(f"  route for {push['vehicle']} not pushed: {push['skipped']}", markup=False)
        else:
            console.print(
                f"  route v{push['version']} pushed to {push['vehicle']}: {push['stops']} stops, "
                f"command {push['command']} (anycar fleet command show {push['command']} --tenant {args.tenant})",
                markup=False,
            )
    for line in result.get("swap_pending", []):
        console.print(f"  [yellow]swap[/] {line}", highlight=False)
    return 0
