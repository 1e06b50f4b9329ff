"""The firmware ledger and rollouts on a real database (SQLite and PostgreSQL): vendor-signed
releases only, versions that only grow, a bad hash refused; a rollout to a percentage of the
matching accessories (stable, widening keeps the chosen), at most max_in_flight out at once, a
pause of its own at the failure threshold, resume, abort; each tenant sees only its own."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from anycar.fleet import commands as cmds
from anycar.fleet import inventory, ota, registry
from anycar.fleet.keys import public_b64
from anycar.fleet.sender import due, expire
from anycar.wire import signature
from fleet_support import fleet_engine, vin

KINDS = ["sqlite", "postgres"]
VENDOR, PRODUCT = 0xFFF1, 0x8003
VENDOR_KEY = Ed25519PrivateKey.generate()


def release(
    version: str, image: bytes, key: Ed25519PrivateKey = VENDOR_KEY, **changes: Any
) -> dict[str, Any]:
    doc = {
        "vendor_id": VENDOR,
        "product_id": PRODUCT,
        "version": version,
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
        **changes,
    }
    return signature.sign(doc, key)


def fleet_of(engine: Any, tenant: str, n: int, firmware: str = "1.0.0", prefix: str = "") -> list[str]:
    """``n`` hub vehicles of ``tenant``, each with one cooler in the inventory."""
    out = []
    for i in range(n):
        creds = registry.add_vehicle(
            engine, vin(i), "kaiyun_pickman", tenant=tenant, wire_id=f"{prefix or tenant}-{i:02d}"
        )
        with engine.begin() as conn:
            ref = conn.execute(
                registry.db.vehicles.select().where(registry.db.vehicles.c.wire_id == creds.vehicle)
            ).one()
            inventory.apply(
                conn,
                ref.id,
                {
                    "ts": time.time(),
                    "accessories": [
                        {
                            "id": "Cooler1",
                            "vendor_id": VENDOR,
                            "vendor": "anycar virtual",
                            "product_id": PRODUCT,
                            "model": "CC-1",
                            "serial": f"S{i}",
                            "firmware": firmware,
                            "mount": "cup_holder_front",
                            "status": "RUNNING",
                        }
                    ],
                },
            )
        out.append(creds.vehicle)
    return out


def answer(engine: Any, command_id: str, status: str) -> None:
    """What the ingest does with a hub's command-result."""
    with engine.begin() as conn:
        row = conn.execute(select(cmds.C.vehicle_id).where(cmds.C.command_id == command_id)).one()
        rollout = cmds.apply_result(
            conn,
            row.vehicle_id,
            {"command": command_id, "status": status, "reason": status, "results": []},
            time.time(),
        )
        if rollout is not None:
            ota.settle(conn, rollout)


@pytest.mark.parametrize("kind", KINDS)
def test_the_ledger_takes_only_signed_growing_releases(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        image = b"\x7fFW" + bytes(range(256)) * 40
        with pytest.raises(ota.OtaError, match="not a trusted fleet key"):
            ota.upload(engine, release("1.1.0", image), image)  # no vendor key yet
        kid = ota.add_vendor_key(engine, VENDOR, public_b64(VENDOR_KEY), "test vendor")
        assert kid == signature.key_id(VENDOR_KEY)
        with pytest.raises(ota.OtaError, match="already registered"):
            ota.add_vendor_key(engine, VENDOR, public_b64(VENDOR_KEY))
        stored = ota.upload(engine, release("1.1.0", image), image, user="alice")
        assert (stored["version"], stored["size"], stored["key_id"]) == ("1.1.0", len(image), kid)
        with pytest.raises(ota.OtaError, match=r"not newer than 1\.1\.0") as older:
            ota.upload(engine, release("1.0.9", image), image)
        assert older.value.status == 409
        with pytest.raises(ota.OtaError, match="not newer"):
            ota.upload(engine, release("1.1.0", image), image)
        with pytest.raises(ota.OtaError, match="bad hash"):
            ota.upload(engine, release("1.2.0", image), image[:-1] + b"\x00")
        with pytest.raises(ota.OtaError, match="does not match"):
            forged = release("1.2.0", image)
            forged["version"] = "9.0.0"  # altered after signing
            ota.upload(engine, forged, image)
        other = Ed25519PrivateKey.generate()
        with pytest.raises(ota.OtaError, match="not a trusted") as untrusted:
            ota.upload(engine, release("1.2.0", image, other), image)
        assert untrusted.value.status == 403
        with pytest.raises(ota.OtaError, match="version"):
            ota.upload(engine, release("one", image), image)
        assert ota.upload(engine, release("1.2.0-rc.1", image), image)["version"] == "1.2.0-rc.1"
        assert ota.upload(engine, release("1.2.0", image), image)["version"] == "1.2.0"
        assert [r["version"] for r in ota.releases(engine, vendor_id=VENDOR)] == [
            "1.1.0",
            "1.2.0-rc.1",
            "1.2.0",
        ]
        assert ota.releases(engine)[0]["sha256"] == hashlib.sha256(image).hexdigest()
        assert ota.image(engine, "no-such-token") is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_rollout_goes_to_a_share_pauses_on_failures_and_resumes(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        registry.tenant_id(engine, "acme", create=True)
        registry.tenant_id(engine, "rival", create=True)
        acme = fleet_of(engine, "acme", 10)
        fleet_of(engine, "rival", 3)
        fleet_of(engine, "acme", 1, firmware="2.0.0", prefix="acme-new")  # already newer: never a target
        acme_id = registry.tenant_id(engine, "acme")
        rival_id = registry.tenant_id(engine, "rival")
        ota.add_vendor_key(engine, VENDOR, public_b64(VENDOR_KEY))
        image = b"image-1.1.0" * 100
        rel = ota.upload(engine, release("1.1.0", image), image)

        rollout = ota.start(
            engine,
            acme_id,
            rel["id"],
            percent=30,
            base_url="http://fleet.test:8090",
            max_failures=2,
            max_in_flight=2,
        )
        assert (rollout["state"], rollout["targets"], rollout["waiting"]) == ("running", 3, 3)
        chosen = {c["vehicle"] for c in cmds.listing(engine, acme_id, rollout=rollout["id"])}
        assert chosen <= set(acme) and len(chosen) == 3
        assert cmds.listing(engine, rival_id, rollout=rollout["id"]) == []  # another tenant's: invisible
        assert ota.progress(engine, rival_id, rollout["id"]) is None

        # the command carries the signed release and the image's URL; the user sees only the version
        with engine.connect() as conn:
            body = (
                conn.execute(select(cmds.C.body).where(cmds.C.rollout_id == rollout["id"])).scalars().first()
            )
        assert body["release"]["sha256"] == rel["sha256"] and body["url"].startswith(
            "http://fleet.test:8090/firmware/"
        )
        assert ota.image(engine, body["url"].rsplit("/", 1)[1].removesuffix(".bin")) == image
        assert cmds.listing(engine, acme_id, rollout=rollout["id"])[0]["body"] == {
            "accessory": "Cooler1",
            "version": "1.1.0",
        }

        # at most max_in_flight go out
        now = time.time()
        first = due(engine, now)
        assert len(first) == 2 and due(engine, now) == []
        # widening keeps the chosen and adds to them
        widened = ota.change(engine, acme_id, rollout["id"], "widen", 60)
        assert widened["targets"] == 6
        assert chosen <= {c["vehicle"] for c in cmds.listing(engine, acme_id, rollout=rollout["id"])}
        with pytest.raises(ota.OtaError, match="only widens"):
            ota.change(engine, acme_id, rollout["id"], "widen", 10)

        # two failures: it pauses itself, and nothing more goes out
        answer(engine, first[0].command_id, "rejected")
        assert ota.progress(engine, acme_id, rollout["id"])["state"] == "running"
        answer(engine, first[1].command_id, "refused")
        paused = ota.progress(engine, acme_id, rollout["id"])
        assert paused["state"] == "paused" and "paused automatically: 2 failed" in paused["reason"]
        assert due(engine, time.time()) == []
        # a late duplicate answer does not overwrite the first
        answer(engine, first[1].command_id, "accepted")
        assert cmds.get(engine, acme_id, first[1].command_id)["status"] == "refused"

        # resumed: two more go; one succeeds, one expires unanswered
        ota.change(engine, acme_id, rollout["id"], "resume")
        again = due(engine, time.time())
        assert len(again) == 2
        answer(engine, again[0].command_id, "accepted")
        expire(engine, time.time() + cmds.MAX_TTL_S + 1)
        assert cmds.get(engine, acme_id, again[1].command_id)["status"] == "expired"
        progress = ota.progress(engine, acme_id, rollout["id"])
        assert (progress["succeeded"], progress["failed"], progress["state"]) == (1, 3, "running")

        # aborted: what had not gone is cancelled; a finished rollout cannot be paused
        done = ota.change(engine, acme_id, rollout["id"], "abort")
        assert done["state"] == "aborted" and done["by_status"].get("cancelled") == 2
        with pytest.raises(ota.OtaError, match="aborted"):
            ota.change(engine, acme_id, rollout["id"], "pause")
        with pytest.raises(ota.OtaError, match="no rollout"):
            ota.change(engine, rival_id, rollout["id"], "resume")
        assert [r["id"] for r in ota.listing(engine, acme_id)] == [rollout["id"]] and ota.listing(
            engine, rival_id
        ) == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_inventory_keeps_the_newest_list_and_filters_safely(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        (vehicle,) = fleet_of(engine, "acme", 1)
        tid = registry.tenant_id(engine, "acme")
        with engine.begin() as conn:
            vid = conn.execute(
                select(registry.db.vehicles.c.id).where(registry.db.vehicles.c.wire_id == vehicle)
            ).scalar()
            (row,) = inventory.listing(engine, tid)
            newer_list = {"ts": row["updated"] + 10, "accessories": []}  # the cooler was removed
            assert inventory.apply(conn, vid, newer_list)
            older = {
                "ts": row["updated"] + 5,
                "accessories": [
                    {
                        **{
                            k: row[k]
                            for k in (
                                "vendor_id",
                                "vendor",
                                "product_id",
                                "model",
                                "serial",
                                "firmware",
                                "mount",
                                "status",
                            )
                        },
                        "id": "Cooler1",
                    }
                ],
            }
            assert not inventory.apply(conn, vid, older)  # a backlog drained late changes nothing
        assert inventory.listing(engine, tid) == []
        fleet_of(engine, "acme", 2, prefix="more")
        assert len(inventory.listing(engine, tid, model="CC-1")) == 2
        assert (
            len(inventory.listing(engine, tid, firmware="1.0.0", vendor_id=VENDOR, product_id=PRODUCT)) == 2
        )
        for hostile in ("' OR 1=1 --", "CC-1' --", '"; DROP TABLE accessories; --'):
            assert inventory.listing(engine, tid, model=hostile) == []
            assert inventory.listing(engine, tid, vehicle=hostile) == []
        assert len(inventory.listing(engine, tid)) == 2  # the table is still there
        other = registry.tenant_id(engine, "other", create=True)
        assert inventory.listing(engine, other) == []


@pytest.mark.parametrize("kind", ["sqlite"])
def test_commands_are_checked_when_made(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id="ACME-1")
        tracker = registry.add_vehicle(engine, vin(2), "kaiyun_pickman", tenant="acme", tracker=True)
        tid = registry.tenant_id(engine, "acme")
        made = cmds.new_command(
            engine, tid, creds.vehicle, "scene", {"id": "night_delivery"}, ttl_s=20, user="bob"
        )
        assert (made["status"], made["action"], made["user"]) == ("pending", "scene", "bob")
        for action, body, expected in (
            ("scene", {"id": "Bad Name"}, "scene.id"),
            ("actuate", {}, "actuate"),
            ("actuate", {"Vehicle.Speed": {"x": 1}}, "actuate"),
            ("fleet_event", {"type": "delivery_assigned", "extra": 1}, "extra"),
            ("route", {}, "route"),
            ("firmware", {}, "a rollout"),
        ):
            with pytest.raises(cmds.CommandError, match=expected):
                cmds.new_command(engine, tid, creds.vehicle, action, body)
        with pytest.raises(cmds.CommandError, match="no hub") as no_hub:
            cmds.new_command(engine, tid, tracker.vehicle, "scene", {"id": "x"})
        assert no_hub.value.status == 409
        with pytest.raises(cmds.CommandError, match="ttl_s"):
            cmds.new_command(engine, tid, creds.vehicle, "scene", {"id": "x"}, ttl_s=0)
        other = registry.tenant_id(engine, "other", create=True)
        with pytest.raises(cmds.CommandError, match="no such vehicle") as hidden:
            cmds.new_command(engine, other, creds.vehicle, "scene", {"id": "x"})
        assert hidden.value.status == 404
        assert cmds.listing(engine, other) == [] and cmds.get(engine, other, made["id"]) is None
        assert [c["id"] for c in cmds.listing(engine, tid, status="pending")] == [made["id"]]
