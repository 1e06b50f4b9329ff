"""`anycar accessory ...`: vendor keys, manifest signing and validation, the registry and its log."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from anycar.cli.output import console, fail, print_json


def register(sub: Any) -> None:
    group = sub.add_parser("accessory", help="accessory keys, manifests, registry and events")
    cmds = group.add_subparsers(dest="accessory_command", metavar="ACTION", required=True)

    keygen = cmds.add_parser("keygen", help="make a vendor Ed25519 signing key")
    keygen.add_argument(
        "--out", default="vendor-key.pem", help="private key file (PEM, default vendor-key.pem)"
    )
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.add_argument("--json", action="store_true", help="print JSON")
    keygen.set_defaults(func=cmd_keygen)

    sign = cmds.add_parser("sign", help="sign a manifest with a vendor key")
    sign.add_argument("manifest", help="manifest file (.yaml, .yml or .json)")
    sign.add_argument("--key", required=True, help="vendor private key (PEM) from `anycar accessory keygen`")
    sign.add_argument("--out", help="write here (default: print to stdout)")
    sign.add_argument("--no-check", action="store_true", help="sign even if the manifest does not validate")
    sign.set_defaults(func=cmd_sign)

    validate = cmds.add_parser("validate", help="check a manifest: schema, traits, VSS overlay, signature")
    validate.add_argument("manifest")
    validate.add_argument(
        "--trust-key",
        action="append",
        default=[],
        metavar="VENDOR_ID:PUBLIC_KEY",
        help="check the signature against this vendor key (base64); repeatable",
    )
    validate.add_argument("--db", help="check the signature against the trust registry in this hub database")
    validate.add_argument(
        "--overlay", action="append", default=[], help="apply a VSS overlay (brand profile) first"
    )
    validate.add_argument("--json", action="store_true", help="print JSON")
    validate.set_defaults(func=cmd_validate)

    ls = cmds.add_parser("list", help="commissioned accessories and trusted vendor keys in a hub database")
    ls.add_argument("--db", help="hub database (default $ANYCAR_HUB_DB or ~/.local/share/anycar/hub.sqlite3)")
    ls.add_argument("--virtual", action="store_true", help="list the bundled virtual accessories instead")
    ls.add_argument("--traits", action="store_true", help="list the trait catalog instead")
    ls.add_argument("--mounts", metavar="PROFILE", help="list a brand profile's mount points instead")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)

    trust = cmds.add_parser("trust", help="add or revoke a vendor key in a hub database")
    trust.add_argument("action", choices=["add", "revoke"])
    trust.add_argument(
        "args", nargs="+", metavar="ARG", help="add: VENDOR_ID PUBLIC_KEY [LABEL]; revoke: KEY_ID [REASON]"
    )
    trust.add_argument("--db", help="hub database")
    trust.add_argument(
        "--hub",
        metavar="URL",
        help="trust it on this running hub (e.g. http://127.0.0.1:8080) instead of a database",
    )
    trust.add_argument("--token", help="owner's access token (with the 'admin' scope; default $ANYCAR_TOKEN)")
    trust.set_defaults(func=cmd_trust)

    waiting = cmds.add_parser(
        "waiting", help="accessories waiting on a running hub, and the mount each would take"
    )
    waiting.add_argument(
        "--hub", metavar="URL", help="the hub (default $ANYCAR_HUB or http://127.0.0.1:8080)"
    )
    waiting.add_argument("--token", help="access token (default $ANYCAR_TOKEN)")
    waiting.add_argument("--json", action="store_true", help="print JSON")
    waiting.set_defaults(func=cmd_waiting)

    pair = cmds.add_parser("pair", help="pair a waiting accessory on a running hub with the code it shows")
    pair.add_argument("code", help="the accessory's 8-digit pairing code (1234-5678)")
    pair.add_argument("--accessory", help="which waiting accessory (needed when several wait)")
    pair.add_argument("--mount", help="mount point (default: the one the hub proposes)")
    pair.add_argument("--name", help="instance name (default: from the trait, e.g. Fan1)")
    pair.add_argument(
        "--wait", type=float, default=15.0, help="seconds to wait for the accessory to connect (default 15)"
    )
    pair.add_argument("--hub", metavar="URL", help="the hub (default $ANYCAR_HUB or http://127.0.0.1:8080)")
    pair.add_argument("--token", help="owner's access token (with the 'admin' scope; default $ANYCAR_TOKEN)")
    pair.add_argument("--json", action="store_true", help="print JSON")
    pair.set_defaults(func=cmd_pair)

    serve = cmds.add_parser("serve", help="a stand-alone accessory hub; commission from the keyboard")
    serve.add_argument(
        "--profile", default="xiaomi_su7", help="brand profile id or directory with mounts.yaml"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument(
        "--db", help="hub database (default $ANYCAR_HUB_DB or ~/.local/share/anycar/hub.sqlite3)"
    )
    serve.add_argument(
        "--trust-key",
        action="append",
        default=[],
        metavar="VENDOR_ID:PUBLIC_KEY",
        help="trust this vendor key first",
    )
    serve.add_argument("--tls-cert", help="serve wss:// with this certificate (PEM)")
    serve.add_argument("--tls-key", help="the certificate's private key (PEM)")
    serve.set_defaults(func=cmd_serve)

    demo = cmds.add_parser("demo", help="a hub with every virtual accessory that fits, through a short drive")
    demo.add_argument("--profile", default="xiaomi_su7", help="brand profile id (default xiaomi_su7)")
    demo.add_argument("--duration", type=float, default=6.0, help="seconds for the drive scenario")
    demo.add_argument("--db", help="keep the hub database here (default: a temporary file)")
    demo.set_defaults(func=cmd_demo)

    events = cmds.add_parser("events", help="the policy event log (sheds, restores, refusals, ...)")
    events.add_argument("--db", help="hub database")
    events.add_argument("--kind", help="only this kind (shed, restore, refusal, ...)")
    events.add_argument("--subject", help="only this subject (an instance name)")
    events.add_argument("--limit", type=int, default=50)
    events.add_argument("--json", action="store_true", help="print JSON")
    events.set_defaults(func=cmd_events)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    from anycar.accessories.console import serve
    from anycar.accessories.mounts import load_mounts, load_profile_mounts
    from anycar.accessories.trust import TrustRegistry

    plan = load_mounts(args.profile) if Path(args.profile).is_dir() else load_profile_mounts(args.profile)
    db = _db(args.db)
    if args.trust_key:
        trust = TrustRegistry(db)
        for spec in args.trust_key:
            vendor, _, key = spec.partition(":")
            if trust.get(signing_key_id(key)) is None:
                trust.add(int(vendor, 0), key, "from the command line")
        trust.close()

    def say(line: str) -> None:
        print(line, flush=True)

    tls = None
    if args.tls_cert:
        import ssl

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(plan, db, args.host, args.port, say, tls=tls))
    return 0


def signing_key_id(public_b64: str) -> str:
    from anycar.accessories import signing

    return signing.key_id(signing.parse_public_key(public_b64))


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from anycar.accessories import demo

    summary = asyncio.run(
        demo.run(
            args.profile,
            args.duration,
            lambda line: console.print(line, highlight=False, markup=False),
            Path(args.db) if args.db else None,
        )
    )
    table = Table(
        title=f"{len(summary['fitted'])} accessories fitted in {args.profile}", title_justify="left"
    )
    for col in ("instance", "product", "mount", "priority", "status"):
        table.add_column(col)
    for r in summary["fitted"]:
        table.add_row(r["instance"], r["product"], r["mount_id"], r["priority"], r["status"])
    console.print(table)
    return 0


def _db(path: str | None) -> Path:
    from anycar.policy.db import default_db_path

    return Path(path) if path else default_db_path()


def cmd_keygen(args: argparse.Namespace) -> int:
    from anycar.accessories import signing

    out = Path(args.out)
    if out.exists() and not args.force:
        return fail(f"{out} exists; pass --force to overwrite it")
    key = signing.generate_key()
    out.write_bytes(signing.private_pem(key))
    out.chmod(0o600)
    pub = out.with_suffix(".pub")
    pub.write_text(signing.public_b64(key) + "\n", encoding="utf-8")
    info = {
        "private_key_file": str(out),
        "public_key_file": str(pub),
        "key_id": signing.key_id(key),
        "public_key": signing.public_b64(key),
    }
    if args.json:
        print_json(info)
    else:
        console.print(f"wrote private key to [bold]{out}[/] (keep it secret)")
        console.print(f"key id:     {info['key_id']}")
        console.print(f"public key: {info['public_key']}")
        console.print(f"public key written to {pub}")
        console.print(f"owners trust it with: anycar accessory trust add VENDOR_ID {pub} --hub URL")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from anycar.accessories import signing
    from anycar.accessories.manifest import parse_manifest, read_manifest_data

    path = Path(args.manifest)
    data = read_manifest_data(path.read_text(encoding="utf-8"), str(path))
    if not args.no_check:
        parse_manifest({k: v for k, v in data.items() if k != "signature"}, source=str(path))
    signed = signing.sign_manifest(data, signing.load_private_key(args.key))
    if path.suffix == ".json":
        text = json.dumps(signed, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(signed, sort_keys=False, allow_unicode=True, width=110)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        console.print(f"signed with key {signed['signature']['key_id']} -> {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from anycar.accessories.errors import AttestationError, ManifestError
    from anycar.accessories.manifest import parse_manifest, read_manifest_data
    from anycar.accessories.trust import TrustRegistry
    from anycar.model import Catalog, load_overlay

    path = Path(args.manifest)
    report: dict[str, Any] = {"manifest": str(path), "valid": False, "problems": [], "signature": None}
    catalog = Catalog.load_default()
    for overlay in args.overlay:
        catalog.apply_overlay(load_overlay(overlay, extended_attributes=True))
    try:
        data = read_manifest_data(path.read_text(encoding="utf-8"), str(path))
        manifest = parse_manifest(data, source=str(path), catalog=catalog)
        report["valid"] = True
        report["summary"] = manifest.summary()
    except ManifestError as exc:
        report["problems"] = [{"field": f, "message": m} for f, m in exc.problems] or [
            {"field": "", "message": str(exc)}
        ]
        data = None
    except OSError as exc:
        return fail(f"{path}: cannot read: {exc.strerror}")
    if data is not None:
        sig = data.get("signature")
        if not isinstance(sig, dict):
            report["signature"] = {"status": "unsigned"}
        elif args.trust_key or args.db:
            trust = TrustRegistry(_db(args.db) if args.db else None)
            try:
                for spec in args.trust_key:
                    vendor, _, key = spec.partition(":")
                    trust.add(int(vendor, 0), key)
                entry = trust.attest(data)
                report["signature"] = {
                    "status": "valid",
                    "key_id": entry.key_id,
                    "vendor_id": entry.vendor_id,
                }
            except (AttestationError, ValueError) as exc:
                report["signature"] = {"status": "invalid", "message": str(exc)}
                report["valid"] = False
            finally:
                trust.close()
        else:
            report["signature"] = {
                "status": "not checked (give --trust-key or --db)",
                "key_id": sig.get("key_id"),
            }
    if args.json:
        print_json(report)
    else:
        if report["problems"]:
            table = Table(title=f"{path}: {len(report['problems'])} problem(s)", title_justify="left")
            table.add_column("field", style="bold red")
            table.add_column("problem")
            for p in report["problems"]:
                table.add_row(p["field"], p["message"])
            console.print(table)
        elif report["valid"]:
            s = report["summary"]
            console.print(
                f"[green]valid[/]: {s['vendor_name']} {s['product_name']} ({s['model']} {s['firmware_version']}), traits {', '.join(s['traits'])}"
            )
        sig = report["signature"]
        if sig is not None:
            console.print(
                f"signature: {sig['status']}" + (f" — {sig['message']}" if "message" in sig else "")
            )
    return 0 if report["valid"] else 1


def cmd_list(args: argparse.Namespace) -> int:
    if args.traits:
        return _list_traits(args.json)
    if args.virtual:
        return _list_virtual(args.json)
    if args.mounts:
        return _list_mounts(args.mounts, args.json)
    from anycar.accessories.registry import Registry
    from anycar.accessories.trust import TrustRegistry

    db = _db(args.db)
    if not db.exists():
        return fail(f"no hub database at {db} (give --db, or set ANYCAR_HUB_DB)")
    registry, trust = Registry(db), TrustRegistry(db)
    rows = [r.public() for r in registry.all()]
    keys = [k.to_dict() for k in trust.entries()]
    registry.close()
    trust.close()
    if args.json:
        print_json({"accessories": rows, "trusted_keys": keys})
        return 0
    table = Table(title=f"{len(rows)} commissioned accessories in {db}", title_justify="left")
    for col in ("instance", "product", "traits", "mount", "priority", "privilege", "signals"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["instance"],
            f"{r['vendor']} {r['product']}",
            ", ".join(r["traits"] or []),
            r["mount_id"],
            r["priority"],
            r["privilege"],
            "\n".join(r["paths"].values()),
        )
    console.print(table)
    kt = Table(title=f"{len(keys)} vendor keys", title_justify="left")
    for col in ("key_id", "vendor_id", "label", "revoked"):
        kt.add_column(col)
    for k in keys:
        kt.add_row(k["key_id"], str(k["vendor_id"]), k["label"], k["revoke_reason"] or "")
    console.print(kt)
    return 0


def _list_traits(as_json: bool) -> int:
    from anycar.accessories.traits import trait_catalog

    traits = trait_catalog()
    if as_json:
        print_json(
            {
                t.id: {
                    "family": t.family,
                    "priority": t.priority.label,
                    "requires": [s.describe() for s in t.requires],
                    "optional": [s.describe() for s in t.optional],
                    "standard": t.standard,
                }
                for t in traits.values()
            }
        )
        return 0
    table = Table(title=f"{len(traits)} traits", title_justify="left")
    for col in ("trait", "family", "priority", "requires", "optional"):
        table.add_column(col)
    for t in traits.values():
        table.add_row(
            t.id,
            t.family,
            t.priority.label,
            ", ".join(s.describe() for s in t.requires),
            ", ".join(s.name for s in t.optional),
        )
    console.print(table)
    return 0


def _list_virtual(as_json: bool) -> int:
    from anycar.accessories import virtual
    from anycar.accessories.manifest import parse_manifest

    rows = []
    for name, family in virtual.VIRTUAL.items():
        m = parse_manifest(virtual.manifest_data(name), source=str(virtual.manifest_path(name)))
        rows.append({"name": name, "family": family, **m.summary()})
    if as_json:
        print_json(rows)
        return 0
    table = Table(title=f"{len(rows)} virtual accessories", title_justify="left")
    for col in ("name", "family", "product", "mount types", "peak W", "priority"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["family"],
            r["product_name"],
            ", ".join(r["mount_types"]),
            f"{r['power']['peak_w']:g}",
            r["priority"],
        )
    console.print(table)
    return 0


def _list_mounts(profile: str, as_json: bool) -> int:
    from anycar.accessories.mounts import load_mounts, load_profile_mounts

    plan = load_mounts(profile) if Path(profile).is_dir() else load_profile_mounts(profile)
    if as_json:
        print_json(
            {
                "profile": plan.profile,
                "rails": {
                    r.id: {"voltage_v": r.voltage_v, "budget_w": r.budget_w} for r in plan.rails.values()
                },
                "mounts": [m.to_dict() for m in plan.mounts.values()],
            }
        )
        return 0
    table = Table(title=f"{plan.vehicle}: {len(plan.mounts)} mount points", title_justify="left")
    for col in ("mount", "type", "max W", "rail", "location"):
        table.add_column(col)
    for m in plan.mounts.values():
        loc = m.location
        where = " ".join(
            str(x)
            for x in (loc.get("zone"), f"row {loc['row']}" if "row" in loc else None, loc.get("side"))
            if x
        )
        table.add_row(
            m.id, m.type, f"{m.max_w:g}", m.rail, where + (" (driver's view)" if m.driver_view else "")
        )
    console.print(table)
    console.print(", ".join(f"rail {r.id}: {r.budget_w:g} W" for r in plan.rails.values()))
    return 0


def _public_key_arg(text: str) -> str:
    """A public key given as base64 or as the ``.pub`` file ``keygen`` wrote."""
    path = Path(text)
    if len(text) < 200 and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return text


def cmd_trust(args: argparse.Namespace) -> int:
    from anycar.accessories.trust import TrustRegistry
    from anycar.policy.events import EventLog

    if args.hub:
        return _trust_on_hub(args)
    db = _db(args.db)
    trust, log = TrustRegistry(db), EventLog(db)
    try:
        if args.action == "add":
            if len(args.args) < 2:
                return fail("trust add needs VENDOR_ID PUBLIC_KEY [LABEL]")
            vendor = int(args.args[0], 0)
            entry = trust.add(vendor, _public_key_arg(args.args[1]), " ".join(args.args[2:]))
            log.log("trust_added", f"vendor:{vendor}", f"key {entry.key_id} trusted for vendor {vendor}")
            console.print(f"trusted key {entry.key_id} for vendor {vendor}")
        else:
            entry = trust.revoke(args.args[0], " ".join(args.args[1:]) or "revoked by owner")
            log.log(
                "trust_revoked",
                f"vendor:{entry.vendor_id}",
                f"key {entry.key_id} revoked: {entry.revoke_reason}",
            )
            console.print(f"revoked key {entry.key_id} of vendor {entry.vendor_id}")
    except ValueError as exc:
        return fail(str(exc))
    finally:
        trust.close()
        log.close()
    return 0


def _trust_on_hub(args: argparse.Namespace) -> int:
    from anycar.cli.hubclient import call, hub_url

    if args.action != "add":
        return fail("--hub supports trust add; revoke a key with --db on a stopped hub")
    if len(args.args) < 2:
        return fail("trust add needs VENDOR_ID PUBLIC_KEY [LABEL]")
    hub = hub_url(args.hub)
    body = {
        "vendor_id": args.args[0],
        "public_key": _public_key_arg(args.args[1]),
        "label": " ".join(args.args[2:]),
    }
    key = call("POST", hub, "/api/v1/trust", body, token=args.token)
    again = " (it was already trusted)" if key.get("already_trusted") else ""
    console.print(
        f"hub {hub} trusts key {key['key_id']} for vendor {key['vendor_id']}{again}", highlight=False
    )
    return 0


def cmd_waiting(args: argparse.Namespace) -> int:
    from anycar.cli.hubclient import call, hub_url

    view = call("GET", hub_url(args.hub), "/api/v1/pairing", token=args.token)
    if args.json:
        print_json(view)
        return 0
    if not view["waiting"]:
        console.print(
            "no accessory is waiting to be paired (is it running and its key trusted?)", highlight=False
        )
    for w in view["waiting"]:
        mount = w["mount"]
        where = f"would take {mount['id']} ({mount['name']})" if mount else w["why_no_mount"]
        console.print(
            f"{w['accessory']}: {w['vendor_name']} {w['product_name']}, {w['power']['peak_w']:g} W peak; {where}",
            highlight=False,
            markup=False,
        )
    return 0


def cmd_pair(args: argparse.Namespace) -> int:
    import time

    from anycar.cli.hubclient import call, hub_url

    hub = hub_url(args.hub)
    deadline = time.monotonic() + max(0.0, args.wait)
    while True:
        waiting = [w["accessory"] for w in call("GET", hub, "/api/v1/pairing", token=args.token)["waiting"]]
        if (args.accessory in waiting) if args.accessory else waiting:
            break
        if time.monotonic() >= deadline:
            who = args.accessory or "an accessory"
            return fail(
                f"{who} is not waiting on {hub} after {args.wait:g} s (waiting: {', '.join(waiting) or 'none'}); "
                "is it running, and is its vendor key trusted (`anycar accessory trust add ... --hub`)?"
            )
        time.sleep(0.3)
    body = {
        k: v
        for k, v in (
            ("code", args.code),
            ("accessory", args.accessory),
            ("mount", args.mount),
            ("name", args.name),
        )
        if v
    }
    rec = call("POST", hub, "/api/v1/pairing", body, token=args.token)
    if args.json:
        print_json(rec)
        return 0
    console.print(
        f"paired {rec['accessory']} as {rec['instance']} at {rec['mount']['id']}",
        highlight=False,
        markup=False,
    )
    for name, path in rec["paths"].items():
        console.print(f"  {name:<16} {path}", highlight=False, markup=False)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from anycar.policy.events import EventLog

    db = _db(args.db)
    if not db.exists():
        return fail(f"no hub database at {db}")
    log = EventLog(db)
    events = log.history(kind=args.kind, subject=args.subject, limit=args.limit)
    log.close()
    if args.json:
        print_json([e.to_dict() for e in events])
        return 0
    import datetime as dt

    table = Table(title=f"{len(events)} events", title_justify="left")
    for col in ("time", "kind", "subject", "message"):
        table.add_column(col)
    for e in events:
        table.add_row(dt.datetime.fromtimestamp(e.ts).strftime("%H:%M:%S"), e.kind, e.subject, e.message)
    console.print(table)
    return 0
