"""`anycar automation ...` and `anycar scene ...`: validate definition files offline (against the
VSS catalog, or a brand profile with its virtual accessories), and talk to a running hub's REST
API for the rest: list, show, enable, disable, trigger, trace, test; scenes list, apply, snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from anycar.cli.output import console, errors, print_json
from anycar.errors import AnycarError, ConfigError

DEFAULT_HUB = "http://127.0.0.1:8080"


def register(sub: Any) -> None:
    auto = sub.add_parser("automation", help="automations: validate files, list, show, trace, test, trigger")
    cmds = auto.add_subparsers(dest="automation_command", metavar="COMMAND", required=True)
    v = cmds.add_parser("validate", help="check definition files (schema and catalog) without a hub")
    v.add_argument("files", nargs="+", help="YAML files or folders")
    v.add_argument(
        "--brand", metavar="PROFILE", help="check against this brand profile and its virtual accessories"
    )
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=validate)
    for name, helptext in (
        ("list", "automations on the hub, their state and last run"),
        ("show", "one automation and its definition"),
        ("enable", "enable an automation (kept across restarts)"),
        ("disable", "disable an automation (kept across restarts)"),
        ("trigger", "run an automation now"),
        ("trace", "the last runs of an automation, as a timeline"),
        ("test", "dry run: what would happen with the given values, without acting"),
    ):
        c = cmds.add_parser(name, help=helptext)
        if name != "list":
            c.add_argument("id")
        if name == "trace":
            c.add_argument("--limit", type=int, default=1, help="how many runs (newest first)")
        if name == "test":
            c.add_argument(
                "--at",
                default="",
                help="values: 'Vehicle.Speed=0,Vehicle.Cabin.Door.Row1.DriverSide.IsOpen=true'",
            )
        _hub_args(c)
        c.set_defaults(func=remote, verb=name)
    scene = sub.add_parser("scene", help="scenes: list, apply, snapshot")
    scmds = scene.add_subparsers(dest="scene_command", metavar="COMMAND", required=True)
    for name, helptext in (
        ("list", "scenes on the hub"),
        ("apply", "apply a scene"),
        ("snapshot", "a scene from current values"),
    ):
        c = scmds.add_parser(name, help=helptext)
        if name != "list":
            c.add_argument("id")
        if name == "snapshot":
            c.add_argument("patterns", nargs="+", help="VSS paths or patterns of the actuators to take")
            c.add_argument("--save", action="store_true", help="keep it on the hub")
        _hub_args(c)
        c.set_defaults(func=remote, verb=f"scene-{name}")


def _hub_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hub",
        default=os.environ.get("ANYCAR_HUB", DEFAULT_HUB),
        help=f"hub HTTP URL (default $ANYCAR_HUB or {DEFAULT_HUB})",
    )
    p.add_argument(
        "--token", default=os.environ.get("ANYCAR_TOKEN"), help="bearer token (default $ANYCAR_TOKEN)"
    )
    p.add_argument("--json", action="store_true")


# -- offline validation ------------------------------------------------------------------------
def validate(args: argparse.Namespace) -> int:
    found = asyncio.run(_validate(args.files, args.brand))
    # Without a brand, accessories' signals cannot be known: those are notes, not errors.
    notes = [p for p in found if args.brand is None and p["kind"] == "no_provider"]
    problems = [p for p in found if p not in notes]
    if args.json:
        print_json({"ok": not problems, "problems": problems, "notes": notes})
    else:
        for p in problems:
            errors.print(
                f"[red]{escape(_where(p))}[/] {escape(p['message'])}", highlight=False, soft_wrap=True
            )
        for p in notes:
            errors.print(
                f"[yellow]note:[/] {escape(_where(p))} {escape(p['message'])} (needs a fitted accessory; "
                "check with --brand)",
                highlight=False,
                soft_wrap=True,
            )
        if not problems:
            console.print(
                f"[green]ok[/]: {', '.join(args.files)}" + (f" against {args.brand}" if args.brand else "")
            )
    return 1 if problems else 0


async def _validate(files: list[str], brand: str | None) -> list[dict[str, Any]]:
    from anycar.automations.component import AutomationsComponent
    from anycar.automations.engine import Engine
    from anycar.broker import SignalBroker

    for f in files:
        if not Path(f).exists():
            raise ConfigError(f"{f}: no such file or folder")
    if brand is None:
        engine = Engine(SignalBroker(), assume_provided=True)
        return [p.to_dict() for p in engine.load_paths(files)]
    from anycar.hub import HubConfig
    from anycar.hub.assemble import HubParts, build_hub

    with tempfile.TemporaryDirectory(prefix="anycar-validate-") as tmp:
        config = HubConfig()
        config.ports = {"grpc": None, "viss": None, "http": None, "accessories": 0}
        parts = HubParts(
            brand=brand,
            db_path=Path(tmp) / "hub.sqlite3",
            virtual_fleet=True,
            dashboard=False,
            automations=[Path(f) for f in files],
        )
        hub = build_hub(config, parts)
        await hub.start()
        try:
            component = next(c for c in hub.components if isinstance(c, AutomationsComponent))
            return [p.to_dict() for p in component.problems]
        finally:
            await hub.stop()


def _where(p: dict[str, Any]) -> str:
    where = f"{p['source']}:{p['line']}" if p.get("line") else p["source"]
    return where + (f": [{p['automation']}]" if p.get("automation") else ":")


# -- a running hub -----------------------------------------------------------------------------
def remote(args: argparse.Namespace) -> int:
    import httpx

    headers = {"authorization": f"Bearer {args.token}"} if args.token else {}
    base = args.hub.rstrip("/") + "/api/v1"
    verb = args.verb
    try:
        with httpx.Client(timeout=15, headers=headers) as http:
            if verb == "list":
                r = http.get(f"{base}/automations")
            elif verb == "show":
                r = http.get(f"{base}/automations/{args.id}")
            elif verb in ("enable", "disable", "trigger"):
                r = http.post(f"{base}/automations/{args.id}/{verb}")
            elif verb == "trace":
                r = http.get(f"{base}/automations/{args.id}/traces", params={"limit": args.limit})
            elif verb == "test":
                r = http.post(f"{base}/automations/{args.id}/test", json={"at": parse_at(args.at)})
            elif verb == "scene-list":
                r = http.get(f"{base}/scenes")
            elif verb == "scene-apply":
                r = http.post(f"{base}/scenes/{args.id}/apply")
            else:
                r = http.post(
                    f"{base}/scenes/snapshot",
                    json={"id": args.id, "patterns": args.patterns, "save": args.save},
                )
    except httpx.HTTPError as exc:
        raise AnycarError(f"cannot reach the hub at {args.hub}: {exc}") from None
    try:
        body = r.json()
    except ValueError:
        raise AnycarError(f"{args.hub} answered {r.status_code} without JSON") from None
    if r.status_code >= 400:
        problems = body.get("problems") or []
        for p in problems:
            errors.print(
                f"[red]{escape(_where(p))}[/] {escape(p['message'])}", highlight=False, soft_wrap=True
            )
        raise AnycarError(body.get("error", {}).get("message", f"HTTP {r.status_code}"))
    if args.json:
        print_json(body)
    elif verb == "list":
        _print_list(body)
    elif verb in ("trace", "test"):
        for trace in body.get("traces", [body]):
            print_timeline(trace)
    else:
        console.print_json(data=body)
    return 0


def parse_at(text: str) -> dict[str, Any]:
    """``Vehicle.Speed=0,Vehicle.Cabin.Door.Row1.DriverSide.IsOpen=true`` as a mapping (YAML scalars)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        path, sep, value = part.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"--at {part!r}: expected PATH=VALUE")
        out[path.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _print_list(body: dict[str, Any]) -> None:
    table = Table(title="automations", title_justify="left")
    for col in ("id", "state", "mode", "triggers", "last run"):
        table.add_column(col)
    for a in body["automations"]:
        last = a.get("last_run") or {}
        when = dt.datetime.fromtimestamp(last["started"]).strftime("%H:%M:%S") if last.get("started") else "-"
        table.add_row(
            a["id"], a["state"], a["mode"], "; ".join(a["triggers"]), f"{when} {last.get('result', '')}"
        )
    console.print(table)
    for s in body.get("not_active", []):
        reasons = "; ".join(p["message"] for p in s["problems"]) or s["state"]
        console.print(f"[yellow]{s['id']}[/] {s['state']}: {reasons}", highlight=False)
    health = body.get("health", {})
    if health.get("database") != "ok":
        console.print(f"[red]database: {health.get('database')} {health.get('error') or ''}[/]")


def print_timeline(trace: dict[str, Any]) -> None:
    """A run as lines: trigger, conditions (result and why), actions (outcome, start, duration)."""
    started = dt.datetime.fromtimestamp(trace["started"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    dry = " (dry run)" if trace.get("dry_run") else ""
    console.print(
        f"[bold]{trace['automation']}[/] run {trace['run_id']}{dry} at {started}: "
        f"[bold]{trace['result']}[/]" + (f" - {trace['reason']}" if trace.get("reason") else ""),
        highlight=False,
    )
    trig = trace.get("trigger", {})
    console.print(
        f"  trigger {trig.get('id') or trig.get('kind', '')}: {trig.get('description', '')}"
        + (f" = {trig.get('value')!r}" if "value" in trig else ""),
        highlight=False,
    )
    for c in trace.get("conditions", []):
        mark = "[green]yes[/]" if c["result"] else "[red]no[/]"
        console.print(f"  {mark} {c['where']}: {c['why']}", highlight=False)
    for a in trace.get("actions", []):
        took = f"{a.get('duration_ms', 0):.1f} ms" if "duration_ms" in a else "..."
        detail = f" ({a['detail']})" if a.get("detail") else ""
        console.print(
            f"  +{a['start_ms']:>9.1f} ms  {a['where']:<16} {a['action']}: {a['outcome']}{detail} [{took}]",
            highlight=False,
        )
