"""Commands, the accessory inventory and OTA end to end: a real fleet (PostgreSQL, ingest, API,
the command sender), the real Mosquitto, a real hub (PICKMAN profile, cabin, automations,
uplink) and a real SDK accessory (the virtual cup cooler) fitted in it.

A dispatcher sends actuate, scene and fleet_event commands and sees their outcome; a fleet event
triggers an automation whose notify reaches the fleet's events; a driver or viewer cannot
command, another tenant sees nothing; the hub reports what is fitted; an owner uploads a
vendor-signed release and rolls it out: the accessory gets the image, applies it and runs the
new version; a downgrade, a bad hash and an untrusted signature are refused by the hub, a bad
hash and a downgrade by the accessory itself; a refusing accessory pauses its rollout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from anycar.accessories import signing
from anycar.accessories.demo import fit_virtual_fleet
from anycar.accessories.sdk import Accessory, Refused
from anycar.accessories.updating import UpdateRefused, install
from anycar.fleet import ota, registry
from anycar.fleet.db import make_engine
from anycar.fleet.keys import load_or_create, public_b64
from anycar.fleet.migrate import upgrade
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.uplink.config import CommandSettings
from anycar.wire import Channel, encode, signature
from anycar.wire import messages as msg
from fleet_support import one_worker_server, postgres_url, vin
from uplink_support import send_down, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(120)

AUTOMATIONS = """
scenes:
  - id: cool_cargo
    name: Cool the cargo
    targets:
      Vehicle.Accessories.Cooler1.IsOn: true
      Vehicle.Accessories.Cooler1.TargetTemperature: 4.0
automations:
  - id: on_delivery_assigned
    alias: Cool down when a chilled delivery is assigned
    triggers:
      - fleet_event: delivery_assigned
    actions:
      - actuate: Vehicle.Accessories.Cooler1.IsOn
        value: true
      - notify: chilled delivery assigned; cooler on
"""


@dataclass
class System:
    api: httpx.AsyncClient
    tokens: dict[str, str]
    vehicle: str
    idle_vehicle: str
    engine: Any
    fleet_key: Ed25519PrivateKey
    vendor_key: Ed25519PrivateKey
    hub: Hub
    cooler: Accessory
    images: list[tuple[str, bytes]]
    url: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def get(self, path: str, who: str = "dispatcher", **params: Any) -> Any:
        r = await self.api.get(path, headers=self.auth(who), params=params)
        assert r.status_code == 200, r.text
        return r.json()

    async def post(self, path: str, body: Any, who: str = "dispatcher") -> httpx.Response:
        return await self.api.post(path, headers=self.auth(who), json=body)

    async def until(
        self, fetch: Callable[[], Any], check: Callable[[Any], bool], what: str, timeout: float = 30
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await fetch()
            if check(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {value}")
            await asyncio.sleep(0.1)

    async def outcome(self, command_id: str, timeout: float = 30) -> dict[str, Any]:
        return await self.until(
            lambda: self.get(f"/api/commands/{command_id}"),
            lambda c: c["status"] not in ("pending", "sent"),
            f"the outcome of {command_id}",
            timeout,
        )


async def _anycar(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `anycar` command, run off the event loop (the fleet server runs on it)."""
    return await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "anycar"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.asynccontextmanager
async def system(tmp_path: Path, commands: CommandSettings | None = None) -> AsyncIterator[System]:
    with postgres_url() as url:
        engine = make_engine(url)
        upgrade(engine)
        registry.tenant_id(engine, "acme", create=True)
        registry.tenant_id(engine, "rival", create=True)
        tokens = {role: registry.add_user(engine, "acme", role, role) for role in registry.ROLE_RIGHTS}
        tokens["rival"] = registry.add_user(engine, "rival", "rival-owner", "owner")
        vehicle = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=unique_vehicle("FC")
        ).vehicle
        idle = registry.add_vehicle(
            engine, vin(2), "kaiyun_pickman", tenant="acme", wire_id=unique_vehicle("FI")
        ).vehicle
        vendor_key = signing.generate_key()
        ota.add_vendor_key(engine, 0xFFF1, public_b64(vendor_key), "anycar virtual devices")
        key_path = tmp_path / "fleet-signing.pem"
        fleet_key = load_or_create(key_path)
        fleet = one_worker_server(url, "fc", [vehicle, idle], key_path)
        await fleet.start()
        (tmp_path / "automations.yaml").write_text(AUTOMATIONS)
        config = HubConfig()
        config.ports = {"grpc": None, "viss": None, "http": None, "accessories": 0}
        uplink = uplink_config(
            tmp_path,
            vehicle,
            fleet_keys=[public_b64(fleet_key)],
            commands=commands
            or CommandSettings(actuates=["Vehicle.Accessories.Cooler1.*"], scenes=["cool_cargo"]),
        )
        hub = build_hub(
            config,
            HubParts(
                brand="kaiyun_pickman",
                db_path=tmp_path / "hub.sqlite3",
                dashboard=False,
                automations=[tmp_path / "automations.yaml"],
                uplink=uplink,
            ),
        )
        await hub.start()
        cabin = next(c for c in hub.components if c.name == "cabin")
        (cooler,) = await fit_virtual_fleet(cabin.manager, vendor_key, names=["cup_cooler"])
        images: list[tuple[str, bytes]] = []

        @cooler.on_update
        async def flash(image: bytes, version: str) -> None:
            images.append((version, image))

        try:
            async with httpx.AsyncClient(base_url=fleet.ready()["api"], timeout=20) as api:
                yield System(
                    api, tokens, vehicle, idle, engine, fleet_key, vendor_key, hub, cooler, images, url
                )
        finally:
            await cooler.stop()
            await hub.stop()
            await fleet.stop()
            engine.dispose()


def signed_release(version: str, image: bytes, key: Ed25519PrivateKey, **changes: Any) -> dict[str, Any]:
    doc = {
        "vendor_id": 0xFFF1,
        "product_id": 32773,
        "version": version,
        "size": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
        "notes": f"cooler firmware {version}",
        **changes,
    }
    return signature.sign(doc, key)


async def test_commands_inventory_and_ota_end_to_end(tmp_path: Path) -> None:
    async with system(tmp_path) as s:
        # the hub reports what is fitted, on birth and when it changes
        fitted = await s.until(
            lambda: s.get("/api/accessories", model="VC-2"), lambda rows: len(rows) == 1, "the inventory"
        )
        assert {
            k: fitted[0][k] for k in ("vehicle", "id", "vendor_id", "product_id", "firmware", "status")
        } == {
            "vehicle": s.vehicle,
            "id": "Cooler1",
            "vendor_id": 0xFFF1,
            "product_id": 32773,
            "firmware": "0.9.0",
            "status": "RUNNING",
        }
        assert fitted[0]["mount"] and fitted[0]["vendor"] == "anycar virtual devices"
        assert await s.get(f"/api/vehicles/{s.vehicle}/accessories") == fitted
        assert await s.get("/api/accessories", firmware="9.9.9") == []

        # actuate: pending, sent, accepted, with each path's outcome
        r = await s.post(
            f"/api/vehicles/{s.vehicle}/commands", {"actuate": {"Vehicle.Accessories.Cooler1.IsOn": True}}
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] in ("pending", "sent") and r.json()["user"] == "dispatcher"
        done = await s.outcome(r.json()["id"])
        assert done["status"] == "accepted", done
        assert done["results"] == [{"path": "Vehicle.Accessories.Cooler1.IsOn", "status": "accepted"}]
        assert ("IsOn", True) in s.cooler.commands

        # a scene of the hub's automations, one outcome per signal; one not allowed; one unknown
        r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"scene": {"id": "cool_cargo"}, "ttl_s": 20})
        scene = await s.outcome(r.json()["id"])
        assert scene["status"] == "accepted", scene
        assert {x["path"]: x["status"] for x in scene["results"]} == {
            "Vehicle.Accessories.Cooler1.IsOn": "accepted",
            "Vehicle.Accessories.Cooler1.TargetTemperature": "accepted",
        }
        r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"scene": {"id": "party"}})
        refused = await s.outcome(r.json()["id"])
        assert refused["status"] == "refused" and "not in uplink.commands.scenes" in refused["reason"]

        # a fleet event triggers the automation; its notify comes back as a fleet event
        r = await s.post(
            f"/api/vehicles/{s.vehicle}/commands",
            {"fleet_event": {"type": "delivery_assigned", "data": {"order": "o-17"}}},
        )
        delivered = await s.outcome(r.json()["id"])
        assert delivered["status"] == "accepted"
        assert delivered["results"] == [{"automations": ["on_delivery_assigned"], "status": "accepted"}]
        notes = await s.until(
            lambda: s.get("/api/events", vehicle=s.vehicle),
            lambda evs: any(e["type"] == "automation_notify" for e in evs),
            "the automation's notify",
        )
        note = next(e for e in notes if e["type"] == "automation_notify")
        assert note["subject"] == "on_delivery_assigned" and "chilled delivery" in note["message"]
        r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"fleet_event": {"type": "nobody_listens"}})
        assert "no automation triggers" in (await s.outcome(r.json()["id"]))["reason"]

        # a vehicle that never answers: its command expires
        r = await s.post(
            f"/api/vehicles/{s.idle_vehicle}/commands", {"scene": {"id": "cool_cargo"}, "ttl_s": 1}
        )
        assert (await s.outcome(r.json()["id"], timeout=15))["status"] == "expired"

        # rights and tenants
        for who in ("driver", "viewer"):
            r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"scene": {"id": "cool_cargo"}}, who)
            assert r.status_code == 403 and "no 'command' right" in r.json()["error"]["message"]
        r = await s.api.post(f"/api/vehicles/{s.vehicle}/commands", json={"scene": {"id": "x"}})
        assert r.status_code == 401
        r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"scene": {"id": "cool_cargo"}}, "rival")
        assert r.status_code == 404
        assert await s.get("/api/commands", "rival") == [] and await s.get("/api/accessories", "rival") == []
        assert (await s.api.get(f"/api/commands/{done['id']}", headers=s.auth("rival"))).status_code == 404
        r = await s.post(
            f"/api/vehicles/{s.vehicle}/commands", {"scene": {"id": "cool_cargo"}, "actuate": {}}
        )
        assert r.status_code == 400 and "exactly one action" in r.json()["error"]["message"]
        r = await s.post(f"/api/vehicles/{s.vehicle}/commands", {"actuate": {"Vehicle.Speed": {"no": 1}}})
        assert r.status_code == 400 and "actuate" in r.json()["error"]["message"]
        mine = await s.get("/api/commands", vehicle=s.vehicle)
        assert {c["status"] for c in mine} == {"accepted", "refused"} and len(mine) == 5

        # a campaign from the fleet: signed, sent, acknowledged by the hub (accepted, or refused with why)
        campaign = {
            "id": "cooler-watch",
            "version": 1,
            "priority": 3,
            "signals": [{"path": "Vehicle.Accessories.Cooler1.Temperature"}],
            "collect": {"periodic": {"period_ms": 1000}},
        }
        r = await s.post(f"/api/vehicles/{s.vehicle}/campaigns", {"campaign": campaign})
        assert r.status_code == 202, r.text
        assert (await s.outcome(r.json()["id"]))["status"] == "accepted"
        r = await s.post(
            f"/api/vehicles/{s.vehicle}/campaigns",
            {
                "campaign": {
                    **campaign,
                    "version": 2,
                    "collect": {"condition": {"expression": "Vehicle.NoSuchThing > 3"}},
                }
            },
        )
        refused = await s.outcome(r.json()["id"])
        assert refused["status"] == "refused" and "Vehicle.NoSuchThing" in refused["reason"], (
            refused["status"],
            refused["reason"],
        )
        r = await s.post(f"/api/vehicles/{s.vehicle}/campaigns", {"campaign": {"id": "x"}})
        assert r.status_code == 400 and "campaign" in r.json()["error"]["message"]
        r = await s.post(f"/api/vehicles/{s.vehicle}/campaigns", {"campaign": campaign}, "viewer")
        assert r.status_code == 403

        # OTA: an owner uploads a vendor-signed release; a dispatcher may not
        image = bytes(range(256)) * 700  # 175 KiB: three chunks
        release = signed_release("1.0.0", image, s.vendor_key)
        upload = {"release": release, "image_base64": base64.b64encode(image).decode()}
        assert (await s.post("/api/firmware", upload, "dispatcher")).status_code == 403
        r = await s.post("/api/firmware", upload, "owner")
        assert r.status_code == 201, r.text
        stored = r.json()
        assert (await s.post("/api/firmware", upload, "owner")).status_code == 409  # versions only grow
        r = await s.post(
            "/api/rollouts", {"release": stored["id"], "percent": 100, "max_failures": 1}, "owner"
        )
        assert r.status_code == 201, r.text
        rollout = r.json()
        assert rollout["targets"] == 1
        finished = await s.until(
            lambda: s.get(f"/api/rollouts/{rollout['id']}"), lambda p: p["state"] != "running", "the rollout"
        )
        assert (finished["state"], finished["succeeded"], finished["failed"]) == ("done", 1, 0), str(
            await s.get("/api/commands", rollout=rollout["id"])
        )
        assert s.images == [("1.0.0", image)] and s.cooler.firmware == "1.0.0"
        await s.until(
            lambda: s.get("/api/accessories", vehicle=s.vehicle),
            lambda rows: rows and rows[0]["firmware"] == "1.0.0",
            "the inventory after the update",
        )
        (cmd,) = await s.get("/api/commands", rollout=rollout["id"])
        assert cmd["results"] == [{"accessory": "Cooler1", "status": "accepted", "version": "1.0.0"}]
        assert cmd["body"] == {"accessory": "Cooler1", "version": "1.0.0"}

        # the hub refuses a downgrade, a bad hash and a release its vendor did not sign
        with s.engine.connect() as conn:
            token = conn.execute(select(ota.R.url_token)).scalar()
        url = f"{str(s.api.base_url).rstrip('/')}/firmware/{token}.bin"
        other = Ed25519PrivateKey.generate()
        cases = {
            "fw-down": (signed_release("0.9.5", image, s.vendor_key), "downgrade refused"),
            "fw-hash": (
                signed_release("1.2.0", image, s.vendor_key, sha256=hashlib.sha256(b"other").hexdigest()),
                "bad hash",
            ),
            "fw-forged": (signed_release("1.3.0", image, other), "not a trusted"),
        }
        now = time.time()
        for cid, (rel, _) in cases.items():
            doc = msg.command_of(
                s.vehicle,
                cid,
                "firmware",
                {"accessory": "Cooler1", "release": rel, "url": url},
                ts=now,
                expires=now + 30,
            )
            await send_down(1883, s.vehicle, Channel.COMMANDS, encode(signature.sign(doc, s.fleet_key)))
        answers = await s.until(
            lambda: s.get("/api/events", vehicle=s.vehicle, limit=200),
            lambda evs: {e["subject"] for e in evs if e["type"] == "command-result"} >= set(cases),
            "the hub's refusals",
        )
        for cid, (_, why) in cases.items():
            (ans,) = [e for e in answers if e["type"] == "command-result" and e["subject"] == cid]
            assert ans["data"]["status"] == "refused" and why in ans["message"], ans
        assert s.cooler.firmware == "1.0.0" and len(s.images) == 1

        # the accessory refuses by itself what a hub would skip: a downgrade, a bad hash
        cabin = next(c for c in s.hub.components if c.name == "cabin")
        down = await install(
            cabin.manager, "Cooler1", vendor_id=0xFFF1, product_id=32773, version="0.1.0", image=b"x"
        )
        assert not down.ok and "downgrade refused" in down.reason
        session = cabin.manager.fitted["Cooler1"].session
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        session.updates["bad"] = answer
        await session.send(
            {"type": "update", "id": "bad", "version": "5.0.0", "size": 3, "sha256": "0" * 64, "chunks": 1}
        )
        await session.send(
            {"type": "update_chunk", "id": "bad", "index": 0, "data": base64.b64encode(b"abc").decode()}
        )
        result = await asyncio.wait_for(answer, 10)
        assert not result["ok"] and "bad hash" in result["reason"] and s.cooler.firmware == "1.0.0"
        answer = asyncio.get_running_loop().create_future()
        session.updates["gap"] = answer
        await session.send(
            {"type": "update", "id": "gap", "version": "5.0.0", "size": 6, "sha256": "0" * 64, "chunks": 2}
        )
        await session.send(
            {"type": "update_chunk", "id": "gap", "index": 1, "data": base64.b64encode(b"abc").decode()}
        )
        result = await asyncio.wait_for(answer, 10)
        assert not result["ok"] and "out of order" in result["reason"]
        with pytest.raises(UpdateRefused, match="already being updated"):  # "gap" is still open
            await install(
                cabin.manager, "Cooler1", vendor_id=0xFFF1, product_id=32773, version="6.0.0", image=b"x"
            )
        session.updates.clear()
        with pytest.raises(UpdateRefused, match="vendor 65521 product 32773"):
            await install(
                cabin.manager, "Cooler1", vendor_id=0xFFF1, product_id=1, version="6.0.0", image=b"x"
            )

        # the command line on the same database, while the server runs
        cli = await _anycar(
            "fleet",
            "command",
            "send",
            s.vehicle,
            "--tenant",
            "acme",
            "--db",
            s.url,
            "--actuate",
            "Vehicle.Accessories.Cooler1.IsOn=false",
            "--wait",
            "30",
            "--json",
        )
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["status"] == "accepted"
        (tmp_path / "cooler-watch.yaml").write_text("id: cooler-watch\nversion: 3\nsignals: []\n")
        removed = await _anycar(
            "fleet",
            "campaign",
            "send",
            s.vehicle,
            str(tmp_path / "cooler-watch.yaml"),
            "--remove",
            "--tenant",
            "acme",
            "--db",
            s.url,
            "--wait",
            "30",
            "--json",
        )
        assert removed.returncode == 0, removed.stderr
        assert json.loads(removed.stdout)["status"] == "removed"
        listed = await _anycar(
            "fleet", "inventory", "--tenant", "acme", "--db", s.url, "--firmware", "1.0.0", "--json"
        )
        assert [a["id"] for a in json.loads(listed.stdout)] == ["Cooler1"], listed.stderr

        # an accessory that refuses: the rollout pauses itself at its threshold
        @s.cooler.on_update
        async def refuse(image: bytes, version: str) -> None:
            raise Refused("battery too low to flash")

        image2 = b"v1.1" * 5000
        r = await s.post(
            "/api/firmware",
            {
                "release": signed_release("1.1.0", image2, s.vendor_key),
                "image_base64": base64.b64encode(image2).decode(),
            },
            "owner",
        )
        r = await s.post(
            "/api/rollouts", {"release": r.json()["id"], "percent": 50, "max_failures": 1}, "owner"
        )
        paused = await s.until(
            lambda: s.get(f"/api/rollouts/{r.json()['id']}"), lambda p: p["state"] != "running", "the pause"
        )
        assert paused["state"] == "paused" and "paused automatically: 1 failed" in paused["reason"], paused
        (failed,) = await s.get("/api/commands", rollout=paused["id"])
        assert failed["status"] == "rejected" and "battery too low" in failed["reason"]
        assert (await s.post(f"/api/rollouts/{paused['id']}/abort", {}, "rival")).status_code == 404
        r = await s.post(f"/api/rollouts/{paused['id']}/abort", {}, "owner")
        assert r.json()["state"] == "aborted"


async def test_a_command_over_the_hubs_rate_is_shown_rate_limited_not_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub answers a command it drops for its rate with the command's id, so the fleet shows
    ``rate_limited`` with the reason at once, instead of ``expired`` when its time runs out."""
    limited = CommandSettings(actuates=["Vehicle.Accessories.Cooler1.*"], rate_per_s=0.02, burst=1)
    async with system(tmp_path, commands=limited) as s:
        ids = []
        for on in (True, False, True):
            r = await s.post(
                f"/api/vehicles/{s.vehicle}/commands",
                {"actuate": {"Vehicle.Accessories.Cooler1.IsOn": on}, "ttl_s": 600},
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        outcomes = [await s.outcome(cid, timeout=30) for cid in ids]  # well before the 600 s expiry
        assert outcomes[0]["status"] == "accepted", outcomes[0]
        for done in outcomes[1:]:
            assert done["status"] == "rate_limited", done
            assert done["reason"] == "more than 0.02 commands/s" and done["answered"] is not None
        assert ("IsOn", False) not in s.cooler.commands  # the dropped ones were not carried out
        listed = await s.get("/api/commands", status="rate_limited")
        assert sorted(c["id"] for c in listed) == sorted(ids[1:])
        # the operator's command line shows it as such
        from anycar.cli.main import main

        capsys.readouterr()
        assert main(["fleet", "command", "list", "--tenant", "acme", "--json", "--db", s.url]) == 0
        shown = {c["id"]: c["status"] for c in json.loads(capsys.readouterr().out)}
        assert [shown[c] for c in ids] == ["accepted", "rate_limited", "rate_limited"]
