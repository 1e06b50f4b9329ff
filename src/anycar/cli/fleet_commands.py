"""`anycar fleet key|command|campaign|inventory|vendor-key|firmware|rollout ...`: commands to vehicles, the
accessory inventory and OTA, straight on the fleet database (the running ``anycar fleet serve``
signs and publishes what is pending; ``--wait`` follows a command to its outcome).

    anycar fleet key show                                   # what hubs put in uplink.fleet_keys
    anycar fleet command send PM-0001 --tenant acme --scene night_delivery --wait 10
    anycar fleet command send PM-0001 --tenant acme --actuate Vehicle.Accessories.Cooler1.IsOn=true
    anycar fleet command send PM-0001 --tenant acme --fleet-event delivery_assigned --data '{"order": "o-17"}'
    anycar fleet command list --tenant acme [--vehicle V] [--status S]
    anycar fleet campaign send PM-0001 hard-braking.yaml --tenant acme [--remove] --wait 10
    anycar fleet inventory --tenant acme [--vehicle V] [--model M] [--firmware X.Y.Z]
    anycar fleet vendor-key add 65521 BASE64KEY --label "virtual devices"
    anycar fleet firmware sign IMAGE --key vendor-key.pem --vendor-id 65521 --product-id 32773 --version 1.0.0
    anycar fleet firmware upload release.json IMAGE
    anycar fleet rollout start RELEASE_ID --tenant acme --percent 10 --public-url http://fleet:8090
    anycar fleet rollout show|pause|resume|abort ID --tenant acme;  rollout widen ID PERCENT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from anycar.cli.output import console, print_json
from anycar.errors import ConfigError


def register(cmds: Any, db_arg: Any) -> None:
    """Add the parsers under ``anycar fleet``; ``db_arg`` adds ``--db``."""

    def common(p: argparse.ArgumentParser, tenant: bool = True) -> argparse.ArgumentParser:
        db_arg(p)
        p.add_argument("--json", action="store_true")
        if tenant:
            p.add_argument("--tenant", default="default")
        return p

    kp = cmds.add_parser("key", help="the fleet's command-signing key")
    kc = kp.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    ks = kc.add_parser("show", help="its public key (for hubs' uplink.fleet_keys); made if missing")
    ks.add_argument(
        "--key", metavar="PEM", help="default $ANYCAR_FLEET_KEY or ~/.local/share/anycar/fleet-signing.pem"
    )
    ks.add_argument("--json", action="store_true")
    ks.set_defaults(func=key_show)

    cp = cmds.add_parser("command", help="commands to vehicles: send, list, show")
    cc = cp.add_subparsers(dest="command_command", metavar="ACTION", required=True)
    send = common(cc.add_parser("send", help="queue a command (the running server signs and sends it)"))
    send.add_argument("vehicle")
    action = send.add_mutually_exclusive_group(required=True)
    action.add_argument("--actuate", action="append", metavar="PATH=VALUE", help="may repeat (one batch)")
    action.add_argument("--scene", metavar="ID", help="apply one of the hub's scenes")
    action.add_argument(
        "--fleet-event", metavar="TYPE", help="a fleet event the hub's automations may trigger on"
    )
    send.add_argument("--data", metavar="JSON", help="the fleet event's data (a JSON object)")
    send.add_argument("--ttl", type=float, default=30.0, help="seconds the vehicle may still carry it out")
    send.add_argument("--user", default="cli", help="who is recorded as sending it")
    send.add_argument(
        "--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for the outcome"
    )
    send.set_defaults(func=command_send)
    cl = common(cc.add_parser("list", help="commands, newest first"))
    cl.add_argument("--vehicle")
    cl.add_argument("--status")
    cl.add_argument("--limit", type=int, default=50)
    cl.set_defaults(func=command_list)
    cs = common(cc.add_parser("show", help="one command and its outcome"))
    cs.add_argument("id")
    cs.set_defaults(func=command_show)

    camp = cmds.add_parser("campaign", help="send a data-collection campaign to a vehicle")
    cmc = camp.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    csend = common(cmc.add_parser("send", help="queue a campaign file (YAML or JSON) for a vehicle"))
    csend.add_argument("vehicle")
    csend.add_argument("file")
    csend.add_argument("--remove", action="store_true", help="end the campaign of that id instead")
    csend.add_argument("--ttl", type=float, default=600.0)
    csend.add_argument(
        "--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for the ack"
    )
    csend.set_defaults(func=campaign_send)

    inv = common(cmds.add_parser("inventory", help="the accessories fitted across the fleet"))
    inv.add_argument("--vehicle")
    inv.add_argument("--model")
    inv.add_argument("--firmware")
    inv.set_defaults(func=inventory_list)

    vp = cmds.add_parser("vendor-key", help="vendor keys that may sign firmware releases")
    vc = vp.add_subparsers(dest="vendor_command", metavar="ACTION", required=True)
    va = common(vc.add_parser("add", help="trust a vendor's Ed25519 public key"), tenant=False)
    va.add_argument("vendor_id", type=int)
    va.add_argument("public_key", help="base64 of the 32 raw bytes (anycar accessory keygen --json)")
    va.add_argument("--label", default="")
    va.set_defaults(func=vendor_key_add)
    common(vc.add_parser("list", help="the registered vendor keys"), tenant=False).set_defaults(
        func=vendor_key_list
    )

    fp = cmds.add_parser("firmware", help="the firmware ledger: sign (as a vendor), upload, list")
    fc = fp.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)
    fs = fc.add_parser("sign", help="a vendor-signed release document for an image")
    fs.add_argument("image")
    fs.add_argument("--key", required=True, help="the vendor's private key (PEM, anycar accessory keygen)")
    fs.add_argument("--vendor-id", type=int, required=True)
    fs.add_argument("--product-id", type=int, required=True)
    fs.add_argument("--version", required=True, help="semantic version, e.g. 1.4.0")
    fs.add_argument("--notes", default="")
    fs.add_argument("--out", help="write the release here (default: print it)")
    fs.set_defaults(func=firmware_sign)
    fu = common(
        fc.add_parser("upload", help="add a signed release and its image to the ledger"), tenant=False
    )
    fu.add_argument("release", help="the release document (JSON)")
    fu.add_argument("image")
    fu.set_defaults(func=firmware_upload)
    common(fc.add_parser("list", help="the ledger"), tenant=False).set_defaults(func=firmware_list)

    rp = cmds.add_parser("rollout", help="roll a release out to a share of the fleet; pause, resume, abort")
    rc = rp.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    rs = common(rc.add_parser("start", help="start a rollout"))
    rs.add_argument("release", type=int)
    rs.add_argument("--percent", type=int, default=100)
    rs.add_argument("--max-failures", type=int, default=3, help="pause itself after this many failures")
    rs.add_argument("--max-in-flight", type=int, default=10)
    rs.add_argument("--public-url", required=True, help="the fleet API's address as hubs reach it")
    rs.set_defaults(func=rollout_start)
    common(rc.add_parser("list", help="the tenant's rollouts")).set_defaults(func=rollout_list)
    for what in ("show", "pause", "resume", "abort"):
        p = common(rc.add_parser(what, help=f"{what} a rollout"))
        p.add_argument("id", type=int)
        p.set_defaults(func=rollout_change, what=what)
    rw = common(rc.add_parser("widen", help="raise a rollout's percentage"))
    rw.add_argument("id", type=int)
    rw.add_argument("percent", type=int)
    rw.set_defaults(func=rollout_change, what="widen")


def _engine(args: argparse.Namespace) -> Any:
    from anycar.fleet.db import make_engine
    from anycar.fleet.migrate import upgrade

    engine = make_engine(args.db)
    upgrade(engine)
    return engine


def _tenant(engine: Any, name: str) -> int:
    from anycar.fleet.registry import RegistryError, tenant_id

    try:
        return tenant_id(engine, name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def _call(fn: Any) -> Any:
    from anycar.fleet.commands import CommandError
    from anycar.fleet.ota import OtaError

    try:
        return fn()
    except (CommandError, OtaError) as exc:
        raise ConfigError(str(exc)) from None


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    if args.json:
        print_json(data)
    else:
        console.print(text, highlight=False)
    return 0


def key_show(args: argparse.Namespace) -> int:
    from anycar.fleet.keys import default_key_path, key_id, load_or_create, public_b64

    path = Path(args.key) if args.key else default_key_path()
    try:
        key = load_or_create(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data = {"key_id": key_id(key), "public_key": public_b64(key), "path": str(path)}
    return _out(
        args,
        data,
        f"fleet key {data['key_id']} ({path})\npublic key for uplink.fleet_keys: {data['public_key']}",
    )


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare word is a string


def command_send(args: argparse.Namespace) -> int:
    from anycar.fleet import commands

    if args.actuate:
        action, body = "actuate", {}
        for item in args.actuate:
            path, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--actuate {item!r}: PATH=VALUE")
            body[path.strip()] = _value(value.strip())
    elif args.scene:
        action, body = "scene", {"id": args.scene}
    else:
        action, body = "fleet_event", {"type": args.fleet_event}
        if args.data:
            try:
                body["data"] = json.loads(args.data)
            except ValueError as exc:
                raise ConfigError(f"--data: not JSON: {exc}") from None
    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    made = _call(
        lambda: commands.new_command(engine, tid, args.vehicle, action, body, ttl_s=args.ttl, user=args.user)
    )
    deadline = time.monotonic() + max(0.0, args.wait)
    while made["status"] in commands.OPEN and time.monotonic() < deadline:
        time.sleep(0.1)
        made = commands.get(engine, tid, made["id"]) or made
    reason = f": {made['reason']}" if made["reason"] else ""
    return _out(args, made, f"command {made['id']} ({action}) to {made['vehicle']}: {made['status']}{reason}")


def campaign_send(args: argparse.Namespace) -> int:
    import yaml

    from anycar.fleet import commands

    try:
        document = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{args.file}: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{args.file}: a campaign document (a mapping)")
    if args.remove:
        document = {"id": document.get("id"), "version": document.get("version"), "remove": True}
    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    made = _call(
        lambda: commands.new_campaign(engine, tid, args.vehicle, document, ttl_s=args.ttl, user="cli")
    )
    deadline = time.monotonic() + max(0.0, args.wait)
    while made["status"] in commands.OPEN and time.monotonic() < deadline:
        time.sleep(0.1)
        made = commands.get(engine, tid, made["id"]) or made
    reason = f": {made['reason']}" if made["reason"] else ""
    return _out(args, made, f"campaign {document.get('id')} to {made['vehicle']}: {made['status']}{reason}")


def command_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from anycar.fleet import commands

    engine = _engine(args)
    rows = commands.listing(
        engine,
        _tenant(engine, args.tenant),
        vehicle=args.vehicle,
        status=args.status,
        limit=max(1, min(args.limit, 1000)),
    )
    if args.json:
        print_json(rows)
        return 0
    table = Table("id", "vehicle", "action", "status", "reason", title="commands, newest first")
    for r in rows:
        table.add_row(r["id"], r["vehicle"], r["action"], r["status"], (r["reason"] or "")[:80])
    console.print(table)
    return 0


def command_show(args: argparse.Namespace) -> int:
    from anycar.fleet import commands

    engine = _engine(args)
    found = commands.get(engine, _tenant(engine, args.tenant), args.id)
    if found is None:
        raise ConfigError(f"no command {args.id!r} in tenant {args.tenant}")
    return _out(args, found, json.dumps(found, indent=2))


def inventory_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from anycar.fleet import inventory

    engine = _engine(args)
    rows = inventory.listing(
        engine, _tenant(engine, args.tenant), vehicle=args.vehicle, model=args.model, firmware=args.firmware
    )
    if args.json:
        print_json(rows)
        return 0
    table = Table(
        "vehicle", "accessory", "vendor", "model", "firmware", "mount", "status", title="fitted accessories"
    )
    for r in rows:
        table.add_row(r["vehicle"], r["id"], r["vendor"], r["model"], r["firmware"], r["mount"], r["status"])
    console.print(table)
    return 0


def vendor_key_add(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    engine = _engine(args)
    kid = _call(lambda: ota.add_vendor_key(engine, args.vendor_id, args.public_key, args.label))
    return _out(
        args, {"key_id": kid, "vendor_id": args.vendor_id}, f"vendor {args.vendor_id}: key {kid} trusted"
    )


def vendor_key_list(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    rows = ota.vendor_keys(_engine(args))
    return _out(
        args, rows, "\n".join(f"{r['vendor_id']}\t{r['key_id']}\t{r['label']}" for r in rows) or "none"
    )


def firmware_sign(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from anycar.wire import WireError, signature
    from anycar.wire.firmware import check_release

    try:
        image = Path(args.image).read_bytes()
        key = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{args.key}: not an Ed25519 private key")
    doc: dict[str, Any] = {
        "vendor_id": args.vendor_id,
        "product_id": args.product_id,
        "version": args.version,
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
    }
    if args.notes:
        doc["notes"] = args.notes
    signed = signature.sign(doc, key)
    try:
        check_release(signed, {signature.key_id(key): key.public_key()})
    except WireError as exc:
        raise ConfigError(f"release: {exc}") from None
    text = json.dumps(signed, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        console.print(f"release {args.version} of {args.vendor_id}:{args.product_id} signed into {args.out}")
    else:
        print(text)
    return 0


def firmware_upload(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    try:
        document = json.loads(Path(args.release).read_text(encoding="utf-8"))
        image = Path(args.image).read_bytes()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{exc}") from None
    engine = _engine(args)
    stored = _call(lambda: ota.upload(engine, document, image, user="cli"))
    return _out(
        args,
        stored,
        f"release {stored['id']}: {stored['vendor_id']}:{stored['product_id']} {stored['version']}",
    )


def firmware_list(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    rows = ota.releases(_engine(args))
    lines = [f"{r['id']}\t{r['vendor_id']}:{r['product_id']}\t{r['version']}\t{r['size']} B" for r in rows]
    return _out(args, rows, "\n".join(lines) or "no releases")


def _rollout_text(r: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(r["by_status"].items())) or "no targets"
    why = f" ({r['reason']})" if r["reason"] else ""
    return f"rollout {r['id']} of {r['release']['version']} to {r['percent']}%: {r['state']}{why}; {counts}"


def rollout_start(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    found = _call(
        lambda: ota.start(
            engine,
            tid,
            args.release,
            percent=args.percent,
            base_url=args.public_url,
            max_failures=args.max_failures,
            max_in_flight=args.max_in_flight,
        )
    )
    return _out(args, found, _rollout_text(found))


def rollout_list(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    engine = _engine(args)
    rows = ota.listing(engine, _tenant(engine, args.tenant))
    return _out(args, rows, "\n".join(_rollout_text(r) for r in rows) or "no rollouts")


def rollout_change(args: argparse.Namespace) -> int:
    from anycar.fleet import ota

    engine = _engine(args)
    tid = _tenant(engine, args.tenant)
    if args.what == "show":
        found = ota.progress(engine, tid, args.id)
        if found is None:
            raise ConfigError(f"no rollout {args.id} in tenant {args.tenant}")
    else:
        found = _call(lambda: ota.change(engine, tid, args.id, args.what, getattr(args, "percent", None)))
    return _out(args, found, _rollout_text(found))
