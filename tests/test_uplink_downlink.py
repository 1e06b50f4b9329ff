"""What the fleet sends down, on the real Mosquitto: signed campaigns (versioned, acknowledged,
kept across a restart) and signed commands (checked against the fleet's grant, answered with
the broker's outcome); malformed, unsigned, forged, stale, expired, duplicate and flooding
input is refused with a reason and disturbs nothing else."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.broker.actuation import ActuationRequest
from anycar.hub import Hub
from anycar.policy import PolicyEngine
from anycar.uplink import UplinkComponent
from anycar.uplink.config import CommandSettings
from anycar.wire import Channel, encode, samples, signature
from anycar.wire import messages as msg
from uplink_support import FAST, Listener, bare_hub, campaign_file, send_down, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)
LIGHT = "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.IsLightOn"
HORN = "Vehicle.Body.Horn.IsActive"
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
FLEET = Ed25519PrivateKey.generate()


def pub_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


class PolicyHolder:
    """The real policy engine as the cabin would hold it, without the accessory server."""

    name = "cabin"

    def __init__(self, db: Path) -> None:
        self.db = db
        self.policy: PolicyEngine | None = None

    async def start(self, hub: Hub) -> None:
        self.policy = PolicyEngine(hub.broker, db_path=self.db)
        await self.policy.start()

    async def stop(self) -> None:
        assert self.policy is not None
        await self.policy.stop()
        self.policy.close()


def signed_campaign(vehicle: str, doc: dict[str, Any], key: Ed25519PrivateKey = FLEET) -> bytes:
    return encode(signature.sign(msg.campaign(vehicle, doc, ts=time.time()), key))


def command(
    vehicle: str, cid: str, actuate: dict[str, Any], *, ttl: float = 30, key: Ed25519PrivateKey = FLEET
) -> bytes:
    now = time.time()
    return encode(signature.sign(msg.command(vehicle, cid, actuate, ts=now, expires=now + ttl), key), "json")


async def make_hub(
    tmp: Path, vehicle: str, **changes: Any
) -> tuple[Hub, UplinkComponent, list[ActuationRequest]]:
    changes.setdefault("campaigns", [campaign_file(tmp, FAST)])
    cfg = uplink_config(tmp, vehicle, fleet_keys=[pub_b64(FLEET)], **changes)
    hub = bare_hub()
    hub.add_component(PolicyHolder(tmp / "hub.sqlite3"))
    seen: list[ActuationRequest] = []
    hub.broker.register_provider("car", [SPEED, SOC])
    hub.broker.register_provider("cabin-lights", [LIGHT, HORN], on_actuate=seen.append)
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    await hub.start()
    deadline = time.monotonic() + 10
    while not (uplink.link and uplink.link.connected and uplink.link.connects and uplink.seq >= 0):
        assert time.monotonic() < deadline, "uplink did not connect"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # subscribed and born
    return hub, uplink, seen


def results(fleet: Listener) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = {}
    for m in fleet.of("command-result"):
        out.setdefault(m["command"], []).append(m)
    return out


async def test_campaigns_from_the_fleet_are_checked_acknowledged_and_kept(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    doc = {
        "id": "soc-watch",
        "version": 2,
        "priority": 3,
        "signals": [{"path": SOC}],
        "collect": {"periodic": {"period_ms": 50}},
        "batch": {"max_values": 5, "max_delay_ms": 100},
    }
    async with Listener(vehicle) as fleet:
        hub, uplink, _ = await make_hub(tmp_path, vehicle)
        try:
            provider = hub.broker.providers()[0]
            provider.publish(SOC, 55.0)
            await send_down(1883, vehicle, Channel.CAMPAIGNS, b"\xff garbage")
            await send_down(
                1883,
                vehicle,
                Channel.CAMPAIGNS,
                encode(msg.campaign(vehicle, doc, ts=time.time()), validate=False),
            )  # unsigned
            await send_down(
                1883, vehicle, Channel.CAMPAIGNS, signed_campaign(vehicle, doc, Ed25519PrivateKey.generate())
            )
            bad = {**doc, "collect": {"condition": {"expression": "Vehicle.NoSuchThing > 3"}}}
            await send_down(1883, vehicle, Channel.CAMPAIGNS, signed_campaign(vehicle, bad))
            await send_down(1883, vehicle, Channel.CAMPAIGNS, signed_campaign(vehicle, doc))
            await send_down(1883, vehicle, Channel.CAMPAIGNS, signed_campaign(vehicle, {**doc, "version": 1}))
            await fleet.wait_for(lambda: len(fleet.of("campaign-ack")) >= 6)
            acks = fleet.of("campaign-ack")
            assert [a["status"] for a in acks] == [
                "refused",
                "refused",
                "refused",
                "refused",
                "accepted",
                "stale",
            ]
            assert "first byte" in acks[0]["reason"] and "not signed" in acks[1]["reason"]
            assert (
                "not a trusted fleet key" in acks[2]["reason"] and "Vehicle.NoSuchThing" in acks[3]["reason"]
            )
            await fleet.wait_for(lambda: any(m["campaign"] == "soc-watch" for m in fleet.of("telemetry")))
            # the other campaign went on beside them
            await fleet.wait_for(lambda: any(m["campaign"] == "fast" for m in fleet.of("telemetry")))
        finally:
            await hub.stop()
        # kept across a restart, signature checked again
        hub, uplink, _ = await make_hub(tmp_path, vehicle)
        try:
            assert uplink.campaigns["soc-watch"].version == 2 and "soc-watch" in uplink.runners
            await send_down(
                1883,
                vehicle,
                Channel.CAMPAIGNS,
                signed_campaign(vehicle, {"id": "soc-watch", "version": 3, "remove": True}),
            )
            await fleet.wait_for(lambda: fleet.of("campaign-ack")[-1]["status"] == "removed")
            await fleet.wait_for(lambda: "soc-watch" not in uplink.runners)
        finally:
            await hub.stop()


async def test_a_condition_campaign_sends_the_window_around_its_rising_edge(tmp_path: Path) -> None:
    """Waits on what the runner has seen, not on fixed sleeps, so a loaded machine only makes it
    slower: the ring (``before_s``) and the window (``after_s``) are seconds wide where the test's
    own steps take milliseconds, and each step checks that it stayed inside them."""
    vehicle = unique_vehicle()
    before_s, after_s = 5.0, 3.0
    doc = {
        "id": "hard-and-low",
        "version": 1,
        "priority": 2,
        "signals": [{"path": SPEED}, {"path": SOC}],
        "collect": {
            "condition": {
                "expression": f"{SPEED} > 50 and {SOC} < 20",
                "trigger": "rising_edge",
                "min_interval_ms": 0,
                "before_s": before_s,
                "after_s": after_s,
            }
        },
        "batch": {"max_values": 1000, "max_delay_ms": 100},
    }
    async with Listener(vehicle) as fleet:
        hub, uplink, _ = await make_hub(tmp_path, vehicle, campaigns=[])
        try:
            provider = hub.broker.providers()[0]
            await send_down(1883, vehicle, Channel.CAMPAIGNS, signed_campaign(vehicle, doc))
            await fleet.wait_for(lambda: "hard-and-low" in uplink.runners)
            runner = uplink.runners["hard-and-low"]

            async def seen(speed: float) -> None:  # the runner has taken this value in
                await fleet.wait_for(lambda: runner.latest.get(SPEED) == speed, timeout=30)

            first = time.monotonic()
            for speed in (10, 20, 30, 40):  # before the trigger: in the ring
                provider.publish_many([(SPEED, float(speed)), (SOC, 15.0)])
                await seen(float(speed))
            trigger_from, edge = time.time(), time.monotonic()  # the edge is no earlier than this
            provider.publish(SPEED, 60.0)  # condition becomes true
            await seen(60.0)
            trigger_by = time.time()
            stalled = time.monotonic() - first
            assert stalled < before_s, f"the machine stalled {stalled:.1f} s: the ring let go of some"
            assert runner.triggers == 1
            for speed in (61, 62):  # after: inside the window
                provider.publish(SPEED, float(speed))
                await seen(float(speed))
            stalled = time.monotonic() - edge
            assert stalled < after_s, f"the machine stalled {stalled:.1f} s: the window may have shut"
            # the window is sent whole when it closes, after_s after the edge
            await fleet.wait_for(
                lambda: any(m["campaign"] == "hard-and-low" for m in fleet.of("telemetry")), timeout=30
            )
            assert time.monotonic() - edge >= after_s - 0.01
            provider.publish(SPEED, 70.0)  # still true: no new rising edge, and the window is shut
            await seen(70.0)
            assert runner.triggers == 1 and runner.pending == []
            batches = [m for m in fleet.of("telemetry") if m["campaign"] == "hard-and-low"]
            assert len(batches) == 1 and trigger_from - 0.01 <= batches[0]["trigger"] <= trigger_by + 0.01
            speeds = [v for p, _, v in samples(batches[0]) if p == SPEED]
            assert speeds == [10.0, 20.0, 30.0, 40.0, 60.0, 61.0, 62.0]
        finally:
            await hub.stop()


async def test_commands_are_checked_and_answered_with_the_outcome(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    async with Listener(vehicle) as fleet:
        hub, uplink, seen = await make_hub(
            tmp_path,
            vehicle,
            commands=CommandSettings(actuates=["Vehicle.Cabin.Light.**", HORN], rate_per_s=50, burst=50),
        )
        try:
            down = lambda payload: send_down(1883, vehicle, Channel.COMMANDS, payload)  # noqa: E731
            await down(command(vehicle, "c-1", {LIGHT: True}))
            await down(command(vehicle, "c-1", {LIGHT: False}))  # replayed id
            await down(command(vehicle, "c-2", {LIGHT: True}, ttl=-5))  # expired
            await down(command(vehicle, "c-3", {HORN: True}))  # granted, but safety-critical
            await down(
                command(vehicle, "c-4", {"Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Intensity": 50})
            )  # no provider
            await down(command("SOMEONE-ELSE", "c-5", {LIGHT: True}))
            await down(command(vehicle, "c-6", {LIGHT: True}, key=Ed25519PrivateKey.generate()))
            await down(b'{"v":1,"kind":"command"}')
            await down(
                command(vehicle, "c-7", {"Vehicle.Cabin.Seat.Row1.DriverSide.Heating": 5})
            )  # not in the grant
            await fleet.wait_for(lambda: len(fleet.of("command-result")) >= 9)
            got = results(fleet)
            assert (
                got["c-1"][0]["status"] == "accepted" and got["c-1"][0]["results"][0]["status"] == "accepted"
            )
            assert got["c-1"][1]["status"] == "duplicate"
            assert got["c-2"][0]["status"] == "expired"
            assert got["c-3"][0]["status"] == "refused" and "safety-critical" in got["c-3"][0]["reason"]
            assert (
                got["c-4"][0]["status"] == "rejected"
                and got["c-4"][0]["results"][0]["status"] == "no_provider"
            )
            assert got["c-5"][0]["status"] == "refused"
            assert [r["status"] for r in got[None]] == ["invalid", "invalid"]
            assert "grant" in got["c-7"][0]["reason"]
            assert [(r.path, r.value, r.requester) for r in seen] == [(LIGHT, True, "fleet")]
            assert uplink.commands is not None
            refusals = [
                e for e in uplink.commands.policy.events.recent(kind="refusal") if e.subject == "fleet"
            ]  # type: ignore[union-attr]
            assert any("safety-critical" in e.message for e in refusals)
        finally:
            await hub.stop()
        # a replay after a restart is still a duplicate
        hub, uplink, seen = await make_hub(
            tmp_path, vehicle, commands=CommandSettings(actuates=["Vehicle.Cabin.Light.**"])
        )
        try:
            await send_down(1883, vehicle, Channel.COMMANDS, command(vehicle, "c-1", {LIGHT: True}))
            await fleet.wait_for(lambda: len(results(fleet)["c-1"]) == 3)
            assert results(fleet)["c-1"][2]["status"] == "duplicate" and not seen
        finally:
            await hub.stop()


async def test_a_command_flood_is_rate_limited_and_telemetry_goes_on(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    async with Listener(vehicle) as fleet:
        hub, uplink, seen = await make_hub(
            tmp_path,
            vehicle,
            commands=CommandSettings(actuates=["Vehicle.Cabin.Light.**"], rate_per_s=2, burst=5),
        )
        try:
            provider = hub.broker.providers()[0]
            payloads = [command(vehicle, f"f-{i}", {LIGHT: i % 2 == 0}) for i in range(300)]
            async with __import__("aiomqtt").Client("127.0.0.1", 1883) as client:
                for p in payloads:
                    await client.publish(f"anycar/v1/{vehicle}/commands", p, qos=1)
            provider.publish(SPEED, 12.5)
            await fleet.wait_for(
                lambda: uplink.commands is not None and sum(uplink.commands.counts.values()) >= 300, 30
            )
            counts = uplink.commands.counts  # type: ignore[union-attr]
            assert counts.get("accepted", 0) <= 5 + 2 * 10 and counts["rate_limited"] >= 250
            assert len(seen) == counts.get("accepted", 0)
            await fleet.wait_for(lambda: any(s[2] == 12.5 for m in fleet.of("telemetry") for s in samples(m)))
            answered = len(fleet.of("command-result"))
            assert answered < 100  # refusals of a flood are answered at a bounded rate, not one each
        finally:
            await hub.stop()


async def test_a_campaign_flood_is_dropped_before_it_is_read(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    async with Listener(vehicle) as fleet:
        hub, uplink, _ = await make_hub(tmp_path, vehicle)
        try:
            import aiomqtt

            async with aiomqtt.Client("127.0.0.1", 1883) as client:
                for i in range(60):
                    await client.publish(f"anycar/v1/{vehicle}/campaigns", b"\xa0" + bytes([i % 200]), qos=1)
            await fleet.wait_for(
                lambda: uplink.refusals.get("rate_limited", 0) + uplink.refusals.get("refused", 0) >= 60
            )
            assert uplink.refusals["rate_limited"] >= 45  # a burst of 10, then 1/s
            assert len(fleet.of("campaign-ack")) <= 15
            assert "fast" in uplink.runners
        finally:
            await hub.stop()
