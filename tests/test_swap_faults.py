"""Bad input and faults against the CSMS, from stations written with the same ``ocpp`` package
(and a bare OCPP-J client for frames the library refuses to build)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path

import pytest
from ocpp.v21 import call
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from anycar.swap import inventory, registry
from anycar.swap import tables as t
from anycar.swap.csms import SwapError
from anycar.swap.ocpp21 import battery_data
from anycar.swap.policy import load_policy
from anycar.swap.station import Pack, StationSim, Vehicle, client_tls
from swap_support import (
    Pki,
    basic,
    raw_call,
    raw_station,
    running,
    running_csms,
    station,
    swap_engine,
    until,
    vehicle,
)


def _alerts(engine, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [r.detail for r in conn.execute(select(t.alerts).where(t.alerts.c.kind == kind))]


def _swap(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(t.swaps).order_by(t.swaps.c.requested.desc())).first()


async def test_unknown_station_wrong_password_and_wrong_certificates_are_refused(tmp_path: Path) -> None:
    pki, rogue = Pki(tmp_path, "anycar-test-ca"), Pki(tmp_path, "rogue-ca")
    with swap_engine("sqlite", tmp_path) as engine:
        password = registry.add_station(engine, "s2", layout="pickman-8")
        assert password is not None
        assert registry.add_station(engine, "s3", layout="pickman-8", profile=3) is None
        with engine.connect() as conn:
            stored = conn.execute(select(t.stations.c.password_hash).where(t.stations.c.id == "s2")).scalar()
        assert stored != password and len(stored) == 64  # only a hash is kept
        async with running_csms(engine, pki) as csms:
            ca = client_tls(pki.ca)

            async def status(ident: str, headers: dict[str, str], ctx: ssl.SSLContext) -> int:
                try:
                    async with connect(
                        f"{csms.url}/{ident}", subprotocols=["ocpp2.1"], additional_headers=headers, ssl=ctx
                    ):  # type: ignore[list-item]
                        return 101
                except InvalidStatus as exc:
                    return exc.response.status_code

            assert await status("nobody", basic("nobody", "x"), ca) == 404
            assert await status("s2", basic("s2", "wrong"), ca) == 401
            assert await status("s2", basic("s3", password), ca) == 401  # user must be the identity
            assert await status("s2", {}, ca) == 401
            assert await status("s2", basic("s2", password), ca) == 101
            assert await status("s3", {}, ca) == 401  # profile 3 without a certificate
            cert, key = pki.issue("s2")  # a good certificate, but for another station
            assert await status("s3", {}, client_tls(pki.ca, cert, key)) == 401
            bad_cert, bad_key = rogue.issue("s3")  # the right name from a CA the CSMS does not trust
            with pytest.raises(
                (ssl.SSLError, OSError, InvalidMessage)
            ):  # TLS 1.3: refused after the handshake
                await status("s3", {}, client_tls(pki.ca, bad_cert, bad_key))
            good_cert, good_key = pki.issue("s3")
            sim = StationSim("s3", csms.url, "pickman-8", ssl_context=client_tls(pki.ca, good_cert, good_key))
            async with running(sim):
                assert "s3" in csms.sessions
            assert csms.stats["refused"] >= 6


async def test_schema_invalid_frames_get_the_right_callerror_and_the_link_stays_up(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        password = registry.add_station(engine, "raw-1")
        assert password
        async with running_csms(engine) as csms, raw_station(csms.url, "raw-1", password) as ws:
            now = "2026-12-01T10:00:00Z"
            cases = [
                (
                    [
                        2,
                        "a",
                        "StatusNotification",
                        {"timestamp": now, "connectorStatus": "Available", "evseId": 1},
                    ],
                    "OccurrenceConstraintViolation",
                ),
                (
                    [
                        2,
                        "b",
                        "StatusNotification",
                        {"timestamp": now, "connectorStatus": "Available", "evseId": "one", "connectorId": 1},
                    ],
                    "TypeConstraintViolation",
                ),
                (
                    [
                        2,
                        "c",
                        "StatusNotification",
                        {"timestamp": now, "connectorStatus": "Exploded", "evseId": 1, "connectorId": 1},
                    ],
                    "PropertyConstraintViolation",
                ),
                ([2, "d", "Heartbeat", {"bogus": 1}], "FormatViolation"),
                (
                    [
                        2,
                        "e",
                        "BatterySwap",
                        {
                            "batteryData": [{"evseId": 1, "serialNumber": "P", "SoC": 5, "soh": 5}],
                            "eventType": "BatteryIn",
                            "idToken": {"idToken": "x", "type": "Central"},
                            "requestId": 1,
                        },
                    ],
                    "FormatViolation",
                ),
                ([2, "f", "SwapMyCar", {}], "NotSupported"),
                (
                    [2, "g", "NotifyReport", {"requestId": 1, "generatedAt": now, "seqNo": 0}],
                    "NotImplemented",
                ),
            ]
            for frame, code in cases:
                answer = await raw_call(ws, frame)
                assert answer[:3] == [4, frame[1], code], (frame, answer)
                json.dumps(answer)
            assert (await raw_call(ws, "not json at all"))[:3] == [4, "-1", "RpcFrameworkError"]
            assert (await raw_call(ws, [7, "h"]))[:3] == [4, "h", "RpcFrameworkError"]
            answer = await raw_call(ws, [2, "ok", "Heartbeat", {}])
            assert answer[0] == 3 and answer[1] == "ok" and "currentTime" in answer[2]
            with pytest.raises(ConnectionClosed):  # a frame above 64 KiB closes the connection (1009)
                await raw_call(ws, [2, "big", "Heartbeat", {"customData": {"vendorId": "x" * 70_000}}])


async def test_a_pack_that_is_in_another_vehicle_makes_the_swap_disputed_and_unbilled(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        wire_a, _ = vehicle(engine)
        _, token_b = vehicle(engine)
        registry.add_pack(engine, "PACK-A", chemistry="LFP", capacity_kwh=10, soh=90, soc=30, vehicle=wire_a)
        async with running_csms(engine) as csms:
            sim = station(engine, "st-1", csms, speed=500.0, meter_s=0.3)
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "st-1")[0]["state"] == "ready")
                got = await sim.arrive(Vehicle(token_b, Pack("PACK-A", 30.0, 90.0, 10.0)), timeout=60)
                assert got is not None
                await until(lambda: not csms.swaps)
        swap = _swap(engine)
        assert swap.state == "disputed" and swap.amount is None
        assert any("PACK-A" in a for a in _alerts(engine, "pack_elsewhere"))
        moved = inventory.passport(engine, "PACK-A")
        assert moved is not None and moved["station_id"] == "st-1"  # the station's report is applied


async def test_duplicate_swap_events_are_ignored_and_alerted(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        wire, token = vehicle(engine)
        registry.add_pack(engine, "PACK-D", chemistry="LFP", capacity_kwh=10, soh=90, soc=20, vehicle=wire)
        async with running_csms(engine) as csms:
            sim = station(engine, "st-d", csms, speed=500.0, meter_s=0.3)
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "st-d")[0]["state"] == "ready")
                assert await sim.arrive(Vehicle(token, Pack("PACK-D", 20.0, 90.0, 10.0)), timeout=60)
                await until(lambda: not csms.swaps)
                done = _swap(engine)
                assert sim.link is not None
                for event, serial in (("BatteryIn", "PACK-D"), ("BatteryOut", "st-d-P01")):
                    await sim.link.call(
                        call.BatterySwap(
                            battery_data=[battery_data(8, serial, 50.0, 90.0)], event_type=event,
                            id_token={"idToken": token, "type": "Central"}, request_id=done.id,
                        )
                    )  # fmt: skip
        again = _swap(engine)
        assert (again.state, again.amount, again.in_ts) == ("done", done.amount, done.in_ts)
        assert len(_alerts(engine, "duplicate_event")) == 2
        assert [h["event"] for h in inventory.passport(engine, "PACK-D")["history"]] == [
            "registered",
            "into_slot",
        ]


async def test_a_station_rebooting_mid_swap_ends_in_a_clean_state(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        wire, token = vehicle(engine)
        registry.add_pack(engine, "PACK-R", chemistry="LFP", capacity_kwh=10, soh=90, soc=20, vehicle=wire)
        async with running_csms(engine) as csms:
            sim = station(engine, "st-r", csms, speed=20.0, meter_s=0.3)  # 90 s robot: 2.25 s per half
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "st-r")[0]["state"] == "ready")
                arrival = asyncio.ensure_future(
                    sim.arrive(Vehicle(token, Pack("PACK-R", 20.0, 90.0, 10.0)), timeout=60)
                )
                await until(lambda: bool(_swap(engine)) and _swap(engine).in_ts is not None, what="BatteryIn")
                await sim.reboot("PowerUp")
                assert await arrival is None
                await until(lambda: not csms.swaps, what="the swap ended")
                await until(lambda: sim.booted.is_set() and "st-r" in csms.sessions, what="the station back")
            swap = _swap(engine)
            assert swap.state == "aborted" and swap.amount is None and swap.out_ts is None
            assert inventory.passport(engine, "PACK-R")["station_id"] == "st-r"  # what the station reported
            assert inventory.passport(engine, "st-r-P01")["state"] == "ready"  # never handed out
            assert _alerts(engine, "swap_aborted")
            with pytest.raises(SwapError, match="offline"):
                await csms.request_swap("st-r", token)  # stopped now


async def test_a_skewed_station_clock_is_alerted_once_and_not_trusted(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        async with running_csms(engine) as csms:
            sim = station(engine, "st-c", csms, clock_offset_s=7200.0, meter_s=0.2)
            async with running(sim):
                await until(lambda: bool(_alerts(engine, "clock_skew")))
                await asyncio.sleep(0.6)
                boot = next(lat for lat in sim.latencies if lat[0] == "BootNotification")
                assert boot
        assert len(_alerts(engine, "clock_skew")) == 1
        with engine.connect() as conn:
            row = conn.execute(select(t.stations).where(t.stations.c.id == "st-c")).one()
        assert row.clock_skew_s == pytest.approx(7200, abs=60)
        assert abs(row.last_seen - time.time()) < 60  # CSMS time, not the station's


async def test_a_flood_of_status_notifications_does_not_slow_other_stations(tmp_path: Path) -> None:
    with swap_engine("sqlite", tmp_path) as engine:
        flood_pw = registry.add_station(engine, "flood")
        assert flood_pw
        async with running_csms(engine) as csms:
            calm = station(engine, "calm", csms)
            async with running(calm), raw_station(csms.url, "flood", flood_pw) as ws:
                n = 3000
                statuses = ["Available", "Occupied", "Faulted"]
                frames = [
                    json.dumps([2, f"f{i}", "StatusNotification", {"timestamp": "2026-12-01T10:00:00Z", "connectorStatus": statuses[i % 3], "evseId": 1 + i % 8, "connectorId": 1}])
                    for i in range(n)
                ]  # fmt: skip

                async def flood() -> int:
                    for frame in frames:
                        await ws.send(frame)
                    got = 0
                    while got < n:
                        answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        assert answer[0] == 3
                        got += 1
                    return got

                async def heartbeats() -> list[float]:
                    waits = []
                    for _ in range(20):
                        started = time.perf_counter()
                        await calm.heartbeat()
                        waits.append(time.perf_counter() - started)
                        await asyncio.sleep(0.05)
                    return waits

                answered, waits = await asyncio.gather(flood(), heartbeats())
                assert answered == n
                assert max(waits) < 1.0, waits
                await until(lambda: not csms.pending_status)
                csms.flush()
            with engine.connect() as conn:
                rows = dict(
                    conn.execute(
                        select(t.slots.c.evse_id, t.slots.c.status).where(t.slots.c.station_id == "flood")
                    ).all()
                )
            last = {1 + i % 8: statuses[i % 3] for i in range(n)}
            assert rows == last
            assert csms.stats["flushes"] < n / 10  # coalesced, not a commit per frame


async def test_timeouts_end_in_a_clean_state(tmp_path: Path) -> None:
    policy = load_policy()
    with swap_engine("sqlite", tmp_path) as engine:
        wire, token = vehicle(engine)
        registry.add_pack(engine, "PACK-T", chemistry="LFP", capacity_kwh=10, soh=90, soc=20, vehicle=wire)
        short = type(policy)(**{**{f: getattr(policy, f) for f in policy.__slots__}, "swap_timeout_s": 1.0})
        async with running_csms(engine, policy=short) as csms:
            # the driver leaves without the charged pack: BatteryOutTimeout
            sim = station(engine, "st-t", csms, speed=500.0, meter_s=0.3, out_timeout_s=30.0)
            sim.slots[0].pack.soc = 99.0
            async with running(sim):
                await until(lambda: inventory.station_packs(engine, "st-t")[0]["state"] == "ready")
                assert (
                    await sim.arrive(
                        Vehicle(token, Pack("PACK-T", 20.0, 90.0, 10.0), takes_pack=False), timeout=60
                    )
                    is None
                )
                await until(lambda: not csms.swaps)
                swap = _swap(engine)
                assert swap.state == "timeout" and swap.amount is None
                assert inventory.passport(engine, "st-t-P01")["state"] == "ready"
            # the station never reports: the CSMS's own timeout (1 s here); the late events are alerted
            slow = station(engine, "st-slow", csms, speed=1.0, meter_s=0.3)  # 45 s per half swap
            slow.slots[0].pack.soc = 99.0
            _, token2 = vehicle(engine)
            async with running(slow):
                await until(lambda: inventory.station_packs(engine, "st-slow")[0]["state"] == "ready")
                slow.bay = Vehicle(token2, Pack("PACK-T2", 20.0, 90.0, 10.0))
                result = await csms.request_swap("st-slow", token2)
                assert result.state == "timeout"
                slow.bay = None
            assert not csms.swaps
