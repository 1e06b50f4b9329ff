"""The accessory lifecycle over real WebSocket connections on 127.0.0.1: attest, commission,
fit, run, heartbeats, disconnection, flooding, removal, restart."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from pathlib import Path

import pytest

from anycar.accessories import FitRefused, PairingError, signing, virtual
from anycar.accessories.commissioning import PairingGuard
from anycar.accessories.manager import Limits
from anycar.accessories.sdk import Accessory, AccessoryRefused, HubError, Refused
from anycar.broker import ActuationStatus
from helpers_accessories import FAST, fit, make, running_hub, until


async def test_commission_fit_and_command_round_trip(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        lamp = make("cabin_light", hub, "L-1")
        rec = await fit(hub, lamp, "ceiling_mount_rear")
        assert rec.instance == "Light1"
        on_path = "Vehicle.Cabin.Light.Spotlight.Row2.DriverSide.IsLightOn"
        assert rec.paths["IsLightOn"] == on_path  # standard VSS path, from the mount's row and side
        assert hub.broker.provider_of(on_path) == "accessory:Light1"
        result = await hub.broker.actuate(on_path, True, requester="test")
        assert result.status is ActuationStatus.ACCEPTED
        await until(lambda: (dp := hub.broker.get(on_path)) is not None and dp.value is True)
        assert lamp.commands == [("IsLightOn", True)]
        refused = await hub.broker.actuate("Vehicle.Cabin.Light.Spotlight.Row2.DriverSide.Color", "tomato")
        assert refused.status is ActuationStatus.REJECTED and "RRGGBB" in refused.reason
        assert hub.broker.get("Vehicle.Accessories.Light1.Status").value == "RUNNING"  # type: ignore[union-attr]
        kinds = [e.kind for e in hub.manager.events.recent(subject="Light1")]
        assert "fitted" in kinds and "commissioned" in kinds
        # the activity log speaks to people: the product's name, its key only in the data
        (done,) = [e for e in hub.manager.events.recent(subject="Light1") if e.kind == "commissioned"]
        assert (
            done.message.startswith(lamp.manifest["product_name"]) and ":" not in done.message.split(" ")[0]
        )
        assert done.data["accessory"].endswith(":L-1")
        await lamp.stop()


async def test_wrong_pairing_codes_lock_out(tmp_path: Path) -> None:
    now = [1000.0]
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        hub.manager.pairing = PairingGuard(max_attempts=3, lockout_s=30, clock=lambda: now[0])
        fan = make("clip_fan", hub, "F-1", pairing_code="2468-1357")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        key = "fff1:8002:F-1"
        with pytest.raises(Exception, match="8 digits"):  # a typo is not an attempt
            await hub.manager.commission(key, "24681", "dash_mount_left")
        for left in (2, 1):
            with pytest.raises(PairingError, match=f"{left} attempt"):
                await hub.manager.commission(key, "1111-1111", "dash_mount_left")
        with pytest.raises(PairingError, match="locked out for 30 s"):
            await hub.manager.commission(key, "1111-1111", "dash_mount_left")
        with pytest.raises(PairingError, match="locked out"):  # even the right code, while locked
            await hub.manager.commission(key, "2468-1357", "dash_mount_left")
        assert [e.kind for e in hub.manager.events.recent(subject=key)] == [
            "pairing_failed",
            "pairing_failed",
            "pairing_failed",
            "locked_out",
            "locked_out",
        ]
        assert not hub.manager.fitted
        now[0] += 31
        rec = await hub.manager.commission(key, "2468-1357", "dash_mount_left")
        assert rec.instance == "Fan1"
        await fan.stop()


async def test_unsigned_forged_and_invalid_manifests_are_refused_at_hello(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        unsigned = virtual.build("clip_fan", serial="U-1")
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(unsigned.run(hub.url, reconnect=False), 5)
        assert unsigned.state == "refused"
        assert "not signed" in unsigned.errors[-1]["message"]

        forged_data = signing.sign_manifest(virtual.manifest_data("clip_fan"), hub.key)
        forged_data["power"]["peak_w"] = 1.0
        forged_data["power"]["typical_w"] = 1.0
        forged = Accessory(forged_data, serial="X-1")
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(forged.run(hub.url, reconnect=False), 5)
        assert forged.errors[-1]["reason"] == "attestation_failed"
        assert "forged or altered" in forged.errors[-1]["message"]

        other_key = signing.generate_key()
        stranger = virtual.build("clip_fan", serial="X-2", signing_key=other_key)
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(stranger.run(hub.url, reconnect=False), 5)
        assert "not in the trust registry" in stranger.errors[-1]["message"]

        bad = copy.deepcopy(virtual.manifest_data("clip_fan"))
        bad["vss"]["FanSpeed"]["unit"] = "furlongs"
        invalid = Accessory(bad, serial="I-1", signing_key=hub.key)
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(invalid.run(hub.url, reconnect=False), 5)
        assert invalid.errors[-1]["reason"] == "invalid_manifest"
        assert invalid.errors[-1]["field"] == "vss.FanSpeed.unit"

        assert len(hub.manager.events.recent(kind="attestation_failed")) == 4
        assert not hub.manager.pending


async def test_revoked_vendor_key_disconnects_and_refuses(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-2")
        rec = await fit(hub, fan, "dash_mount_left")
        hub.manager.trust.revoke(rec.key_id, "vendor key leaked")
        await until(lambda: hub.manager.fitted["Fan1"].status == "UNAVAILABLE")
        await until(lambda: any("revoked" in e.get("message", "") for e in fan.errors), timeout=15)
        assert hub.manager.events.recent(kind="trust_revoked")
        await fan.stop()


async def test_fit_refused_says_what_is_free_and_accessory_stays_waiting(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        cooler = make("cup_cooler", hub, "C-1")
        cooler.start(hub.url)
        await asyncio.wait_for(cooler.awaiting.wait(), 5)
        with pytest.raises(FitRefused) as info:  # the SU7 has no cup holder; USB-C is not a cooler mount
            await hub.manager.commission("fff1:8005:C-1", cooler.pairing_code, "console_usb_c_1")
        assert "the accessory fits cup_holder, socket_12v; free mounts that fit: none" in str(info.value)
        fan = make("clip_fan", hub, "F-3")
        await fit(hub, fan, "dash_mount_left")
        big_fan = make("clip_fan", hub, "F-4")
        big_fan.start(hub.url)
        await asyncio.wait_for(big_fan.awaiting.wait(), 5)
        with pytest.raises(FitRefused, match="taken by Fan1; free mounts that fit: dash_mount_centre"):
            await hub.manager.commission("fff1:8002:F-4", big_fan.pairing_code, "dash_mount_left")
        assert hub.manager.events.recent(kind="fit_refused")
        assert "fff1:8002:F-4" in hub.manager.pending
        await hub.manager.commission("fff1:8002:F-4", big_fan.pairing_code, "dash_mount_centre")
        assert hub.manager.board.rail_used("accessory_12v") == 24
        for acc in (cooler, fan, big_fan):
            await acc.stop()


async def test_silence_marks_unavailable_and_voice_restores(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        lamp = make("cabin_light", hub, "L-2")
        rec = await fit(hub, lamp, "ceiling_mount_rear")
        await hub.broker.actuate(rec.paths["IsLightOn"], True)
        await until(lambda: hub.broker.get(rec.paths["IsLightOn"]).value is True)  # type: ignore[union-attr]
        lamp._heartbeat_s = 60  # the accessory hangs: no more heartbeats
        await until(
            lambda: hub.manager.fitted["Light1"].status == "UNAVAILABLE", timeout=15
        )  # silence is detected after the heartbeat bound; the rest is a loaded box
        assert hub.broker.get(rec.paths["IsLightOn"]).value is None  # type: ignore[union-attr]
        assert hub.broker.get("Vehicle.Accessories.Light1.Status").value == "UNAVAILABLE"  # type: ignore[union-attr]
        silent = await hub.broker.actuate(rec.paths["IsLightOn"], False)
        assert silent.status is ActuationStatus.NO_PROVIDER
        assert "silent for" in hub.manager.events.recent(kind="unavailable")[-1].message
        await lamp.publish(IsLightOn=True)
        await until(lambda: hub.manager.fitted["Light1"].status == "RUNNING")
        assert hub.broker.get(rec.paths["IsLightOn"]).value is True  # type: ignore[union-attr]
        await lamp.stop()


async def test_disconnect_in_the_middle_of_a_command(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        speaker = make("headrest_speaker", hub, "S-1")
        gate = asyncio.Event()

        @speaker.on("Volume")
        async def slow(value: int) -> None:
            await gate.wait()  # the amplifier never answers

        rec = await fit(hub, speaker, "console_usb_c_2")
        started = time.monotonic()
        pending = asyncio.create_task(hub.broker.actuate(rec.paths["Volume"], 80, timeout=10))
        await until(lambda: speaker.commands == [("Volume", 80)])
        await speaker.drop()  # connection dies with the command in flight
        result = await asyncio.wait_for(pending, 5)
        assert result.status is ActuationStatus.NO_PROVIDER
        assert "went away" in result.reason
        assert time.monotonic() - started < 2  # an outcome at once, not after the 10 s timeout
        await until(lambda: hub.manager.fitted["Speaker1"].status == "UNAVAILABLE")
        after = await hub.broker.actuate(rec.paths["Volume"], 10)
        assert after.status is ActuationStatus.NO_PROVIDER
        gate.set()
        await speaker.stop()


async def test_accessory_refusing_or_timing_out(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        speaker = make("headrest_speaker", hub, "S-2")
        rec = await fit(hub, speaker, "console_usb_c_2")
        await hub.broker.actuate(rec.paths["IsMuted"], True)
        refused = await hub.broker.actuate(rec.paths["Announcement"], "hello")
        assert refused.status is ActuationStatus.REJECTED and refused.reason == "speaker is muted"

        @speaker.on("Volume")
        async def hang(value: int) -> None:
            await asyncio.sleep(5)

        slow = await hub.broker.actuate(rec.paths["Volume"], 10, timeout=0.2)
        assert slow.status is ActuationStatus.TIMED_OUT
        assert not hub.manager.fitted["Speaker1"].session.pending  # type: ignore[union-attr]
        await speaker.stop()


async def test_flooding_accessory_is_rate_limited_others_unaffected(tmp_path: Path) -> None:
    limits = Limits(heartbeat_interval_s=0.2, heartbeat_timeout_s=5, messages_per_s=100, burst=20)
    async with running_hub(tmp_path / "hub.sqlite3", limits=limits) as hub:
        flooder = make("cabin_air", hub, "E-1")
        await fit(hub, flooder, "dash_mount_right")
        calm2 = make("clip_fan", hub, "F-9")
        rec2 = await fit(hub, calm2, "dash_mount_left")
        sub = hub.broker.subscribe([rec2.paths["FanSpeed"]], send_current=False)
        frame = json.dumps({"type": "publish", "values": {"Temperature": 21.5}})

        async def flood() -> None:
            for _ in range(3000):
                await flooder.send_raw(frame)

        flooding = asyncio.create_task(flood())
        latencies = []
        for i in range(20):
            t0 = time.perf_counter()
            await calm2.publish(FanSpeed=i + 1)
            while True:
                batch = await sub.get(timeout=2)
                assert batch, "the calm accessory's update did not arrive"
                if any(dp.value == i + 1 for dp in batch):
                    break
            latencies.append(time.perf_counter() - t0)
        await flooding
        await until(lambda: any(e.get("reason") == "rate_limited" for e in flooder.errors), timeout=15)
        session = hub.manager.fitted["CabinEnvironmentSensor1"].session
        assert session is not None
        await until(lambda: session.bucket.allowed + session.bucket.dropped >= 3000, timeout=10)
        assert session.bucket.dropped > 2000  # most of the flood was dropped
        assert max(latencies) < 1.0, latencies  # the calm accessory was served throughout
        assert calm2.errors == []
        assert hub.manager.events.recent(kind="rate_limited")
        # the flooder itself still works once it calms down
        await asyncio.sleep(0.3)
        await flooder.publish_checked(Temperature=19.0)
        sub.close()
        for acc in (flooder, calm2):
            await acc.stop()


async def test_bad_messages_get_errors_and_the_connection_survives(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-5")
        rec = await fit(hub, fan, "dash_mount_left")
        for raw in (
            "garbage",
            "[]",
            '{"type":"publish","values":{"FanSpeed":"fast"}}',
            '{"type":"publish","values":{"Nope":1}}',
            '{"type":"hello","protocol":1,"manifest":{},"serial":"x"}',
        ):
            await fan.send_raw(raw)
        await until(lambda: len(fan.errors) >= 5)
        fields = [e.get("field") for e in fan.errors]
        assert "values.FanSpeed" in fields and "values.Nope" in fields
        with pytest.raises(HubError) as info:
            await fan.publish_checked(FanSpeed=300)
        assert info.value.field == "values.FanSpeed" and "300" in info.value.message
        await fan.publish_checked(FanSpeed=40)
        assert hub.broker.get(rec.paths["FanSpeed"]).value == 40  # type: ignore[union-attr]
        await fan.stop()


async def test_removal_frees_the_mount(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-6")
        rec = await fit(hub, fan, "dash_mount_left")
        await hub.manager.remove("Fan1")
        await until(lambda: fan.state == "removed")
        assert hub.broker.get("Vehicle.Accessories.Fan1.Status").value == "REMOVED"  # type: ignore[union-attr]
        assert hub.broker.provider_of(rec.paths["FanSpeed"]) is None
        assert hub.manager.board.occupant("dash_mount_left") is None
        assert hub.manager.registry.get("Fan1") is None
        assert hub.manager.list() == []


async def test_restart_keeps_trust_registry_and_fitting(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    creds = tmp_path / "fan.json"
    key = signing.generate_key()
    async with running_hub(db, key=key) as hub:
        fan = virtual.build("clip_fan", serial="F-7", signing_key=key, credentials=creds)
        rec = await fit(hub, fan, "dash_mount_left", privilege="Manage")
        await fan.publish_checked(FanSpeed=55)
        await fan.stop()
    assert json.loads(creds.read_text())["instance"] == "Fan1"
    async with running_hub(db, key=key) as hub:  # a new hub process on the same database
        assert [k.key_id for k in hub.manager.trust.entries()] == [signing.key_id(key)]
        listed = hub.manager.list()
        assert [(r["instance"], r["status"], r["mount_id"], r["privilege"]) for r in listed] == [
            ("Fan1", "UNAVAILABLE", "dash_mount_left", "Manage")
        ]
        assert hub.broker.catalog.find(rec.paths["FanSpeed"]) is not None  # overlay re-applied
        assert hub.manager.board.occupant("dash_mount_left") == "Fan1"  # budget still reserved
        assert hub.manager.events.history(kind="commissioned", subject="Fan1")  # log persisted
        again = virtual.build("clip_fan", serial="F-7", signing_key=key, credentials=creds)
        again.start(hub.url)
        await asyncio.wait_for(again.running.wait(), 5)  # no pairing code needed
        assert again.instance == "Fan1"
        result = await hub.broker.actuate(rec.paths["FanSpeed"], 20)
        assert result.ok
        await again.stop()
        # an impostor with the same serial but no token cannot take its place
        impostor = virtual.build("clip_fan", serial="F-7", signing_key=key)
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(impostor.run(hub.url, reconnect=False), 5)
        assert "auth" in impostor.errors[-1]["message"]


async def test_reconnection_replaces_the_old_session(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-8")
        await fit(hub, fan, "dash_mount_left")
        token = fan.token
        twin = virtual.build("clip_fan", serial="F-8", signing_key=hub.key)
        twin.token = token
        twin.start(hub.url)
        await asyncio.wait_for(twin.running.wait(), 5)
        assert hub.manager.fitted["Fan1"].session is not None
        await until(lambda: not fan.running.is_set() or fan.state != "running")
        await twin.stop()
        await fan.stop()


async def test_unknown_or_waiting_accessory_errors(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        with pytest.raises(Exception, match="no accessory 'fff1:0001:x' is waiting"):
            await hub.manager.commission("fff1:0001:x", "12345678", "dash_mount_left")
        with pytest.raises(Exception, match="no fitted accessory"):
            await hub.manager.remove("Nothing1")
        fan = make("clip_fan", hub, "F-10")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        with pytest.raises(HubError, match="needs a commissioned accessory"):
            await fan.publish_checked(FanSpeed=1)
        with pytest.raises(Exception, match="instance name"):
            await hub.manager.commission(
                "fff1:8002:F-10", fan.pairing_code, "dash_mount_left", instance="lower"
            )
        await fan.stop()


async def test_refused_handler_error_and_sdk_bits(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fr = make("fragrance", hub, "A-1")

        @fr.on("Intensity")
        def broken(value: int) -> None:
            raise RuntimeError("pump jammed")

        rec = await fit(hub, fr, "dash_mount_left")
        r = await hub.broker.actuate(rec.paths["Intensity"], 50)
        assert r.status is ActuationStatus.REJECTED and "pump jammed" in r.reason
        fr.values["CartridgeLevel"] = 0
        r = await hub.broker.actuate(rec.paths["IsOn"], True)
        assert r.status is ActuationStatus.REJECTED and r.reason == "cartridge is empty"
        assert isinstance(Refused("x"), Exception)
        await fr.stop()


def test_limits_defaults() -> None:
    assert FAST.heartbeat_timeout_s > FAST.heartbeat_interval_s
    assert Limits().messages_per_s > 0


async def test_key_revoked_while_hub_was_down(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    key = signing.generate_key()
    async with running_hub(db, key=key) as hub:
        lamp = virtual.build("cabin_light", serial="L-9", signing_key=key)
        rec = await fit(hub, lamp, "dash_mount_left")
        token = lamp.token
        await lamp.stop()
    from anycar.accessories.trust import TrustRegistry

    offline = TrustRegistry(db)  # the owner revokes with the CLI while the hub is off
    offline.revoke(rec.key_id, "recalled product")
    offline.close()
    async with running_hub(db, key=key) as hub:
        assert hub.manager.fitted["Light1"].status == "UNAVAILABLE"
        assert "cannot reconnect" in hub.manager.events.recent(kind="attestation_failed")[-1].message
        again = virtual.build("cabin_light", serial="L-9", signing_key=key)
        again.token = token
        with pytest.raises(AccessoryRefused):
            await asyncio.wait_for(again.run(hub.url, reconnect=False), 5)
        assert "recalled product" in again.errors[-1]["message"]
