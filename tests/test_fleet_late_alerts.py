"""Alerts on late data, on real SQLite and PostgreSQL: a hub's spool drained after a tunnel
raises the alerts of what happened during the gap (speeding in a zone, cargo temperature, a door
open while moving, low SoC), marked late with the sample's time; an alert the late data makes
false is withdrawn with the reason; the same data in any order (late and live interleaved, a
batch sent twice) ends in the same alerts as in order; an offline alert raised while the
vehicle's messages were only delayed is withdrawn ("the vehicle was online"), on the API and by
webhook, while a vehicle that really was silent keeps its alert."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from anycar.fleet import domain_queries as dq
from anycar.fleet import offline, registry, rules, webhooks
from anycar.fleet.domain import DomainPipeline
from anycar.fleet.domain_tables import rule_checkpoints
from anycar.fleet.store import Accepted, Store
from fleet_domain_support import CARGO, DOOR, T0, Drive
from fleet_support import eventually, fleet_engine, vin
from test_fleet_alerts import square
from test_fleet_webhooks import Receiver


def the_drive(vehicle: str) -> Drive:
    """Stands, drives slowly, then (t 260-350 s, the gap) at 50 km/h through a 30 km/h school
    zone with the cooler warm and a door open while SoC crosses 15 %, then slowly again."""
    drive = Drive(vehicle, soc=17.0, wh_per_km=150)  # 1 %/km
    drive.leg(60, 0, **{CARGO: 4.0, DOOR: False}).leg(200, 20, **{CARGO: 4.0, DOOR: False})
    drive.leg(100, 50, **{CARGO: 11.5, DOOR: True}).leg(100, 20, **{CARGO: 5.0, DOOR: False})
    drive.leg(300, 20, **{CARGO: 5.0, DOOR: False})
    return drive


GAP = (T0 + 255, T0 + 445)  # the batches stamped in here are the ones the spool holds
SPOOLED = (T0 + 240, T0 + 440)  # their samples (a batch of three is stamped with its last)


def _setup(engine: Engine, n: int) -> tuple[Store, DomainPipeline, list[Any], int]:
    store = Store(engine)
    domain = DomainPipeline(store)
    refs = []
    for i in range(n):
        creds = registry.add_vehicle(engine, vin(i + 1), "kaiyun_pickman", tenant="acme")
        refs.append(store.vehicle(creds.vehicle))
    tid = refs[0].tenant_id
    dq.add_geofence(engine, tid, square("school", 29.99, 30.1, speed_limit_kmh=30))
    return store, domain, refs, tid


def _deliver(store: Store, domain: DomainPipeline, ref: Any, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        store.commit([Accepted(ref, doc)])
        domain.run_pending()


def _alerts(engine: Engine, tid: int, wire_id: str) -> list[dict[str, Any]]:
    return dq.alert_list(engine, tid, wire_id=wire_id, limit=1000)


def _standing(alerts: list[dict[str, Any]]) -> set[tuple[str, str, float]]:
    return {
        (a["type"], str((a["data"] or {}).get("geofence") or (a["data"] or {}).get("path") or ""), a["ts"])
        for a in alerts
        if a["withdrawn_ts"] is None
    }


def _fence_events(engine: Engine, tid: int, wire_id: str) -> set[tuple[str, str, float]]:
    return {
        (e["geofence_name"], e["kind"], e["ts"])
        for e in dq.geofence_event_list(engine, tid, limit=1000)
        if e["vehicle"] == wire_id
    }


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_drained_spool_raises_the_gaps_alerts_late_and_withdraws_what_it_makes_false(
    kind: str, tmp_path: Path
) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, (ref_in_order, ref_late), tid = _setup(engine, 2)
        # the reference: the same drive, in order
        _deliver(store, domain, ref_in_order, the_drive(ref_in_order.wire_id).batches(per_batch=3))
        expected = _standing(_alerts(engine, tid, ref_in_order.wire_id))
        assert {(t, ts - T0) for t, _, ts in expected} == {
            ("speeding", 260.0),
            ("cargo_temperature", 260.0),
            ("door_open_moving", 260.0),
            ("low_soc", 320.0),
        }
        # the late vehicle: before the gap, live; after it, live; then the spool drains
        docs = the_drive(ref_late.wire_id).batches(per_batch=3)
        gap = [d for d in docs if GAP[0] <= d["ts"] <= GAP[1]]
        before = [d for d in docs if d["ts"] < GAP[0]]
        after = [d for d in docs if d["ts"] > GAP[1]]
        _deliver(store, domain, ref_late, before + after)
        live = _alerts(engine, tid, ref_late.wire_id)
        # live, after the gap: SoC is already under 15 % -> a low_soc alert at the first sample seen
        assert [(a["type"], a["ts"] - T0, a["late"]) for a in live] == [("low_soc", 450.0, False)]
        raised_before = time.time()
        _deliver(store, domain, ref_late, gap)
        got = _alerts(engine, tid, ref_late.wire_id)
        assert _standing(got) == expected
        late = [a for a in got if a["late"]]
        assert {a["type"] for a in late} == {"speeding", "cargo_temperature", "door_open_moving", "low_soc"}
        assert all(SPOOLED[0] <= a["ts"] <= SPOOLED[1] and a["raised_ts"] >= raised_before for a in late)
        speeding = next(a for a in late if a["type"] == "speeding")
        assert speeding["data"]["zone"] == "school" and speeding["data"]["speed_kmh"] == 50
        (gone,) = [a for a in got if a["withdrawn_ts"] is not None]
        assert gone["type"] == "low_soc" and gone["ts"] == T0 + 450
        assert gone["withdrawn_reason"] == ("data arrived late: this low soc began earlier, at 00:05:20 UTC")
        assert [a["id"] for a in dq.alert_list(engine, tid, state="withdrawn")] == [gone["id"]]
        assert gone["id"] not in {a["id"] for a in dq.alert_list(engine, tid, state="open", limit=1000)}
        # geofence events come out as in order too
        assert _fence_events(engine, tid, ref_late.wire_id) == _fence_events(
            engine, tid, ref_in_order.wire_id
        )
        # the spool sent again (a hub that did not get its acknowledgements: new sequence numbers)
        resent = the_drive(ref_late.wire_id)
        resent.seq = 1000
        again = [d for d in resent.batches(per_batch=3) if GAP[0] <= d["ts"] <= GAP[1]]
        _deliver(store, domain, ref_late, again)
        assert _alerts(engine, tid, ref_late.wire_id) == got  # nothing new, nothing withdrawn
        with engine.connect() as conn:  # the rules' state is kept at its changes only
            kept = conn.execute(
                select(rule_checkpoints.c.ts).where(rule_checkpoints.c.vehicle_id == ref_late.id)
            ).all()
        assert 0 < len(kept) < 20


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_late_and_live_interleaved_in_any_order_end_as_in_order(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        store, domain, refs, tid = _setup(engine, 4)
        _deliver(store, domain, refs[0], the_drive(refs[0].wire_id).batches(per_batch=3))
        expected = _standing(_alerts(engine, tid, refs[0].wire_id))
        fences = _fence_events(engine, tid, refs[0].wire_id)
        for seed, ref in enumerate(refs[1:]):
            docs = the_drive(ref.wire_id).batches(per_batch=3)
            if seed == 0:  # live goes on while the spool drains: the two streams interleave
                late = [d for d in docs if GAP[0] <= d["ts"] <= GAP[1]]
                live = [d for d in docs if d["ts"] > GAP[1]]
                order = [d for d in docs if d["ts"] < GAP[0]] + live[:2]
                rest = live[2:]
                while late or rest:
                    for stream in (late, rest):
                        if stream:
                            order.append(stream.pop(0))
            else:  # any order at all
                order = docs[:]
                random.Random(seed).shuffle(order)
            _deliver(store, domain, ref, order)
            got = _alerts(engine, tid, ref.wire_id)
            assert _standing(got) == expected, seed
            if seed == 0:  # only the live low_soc after the gap was raised and then withdrawn
                assert [a["type"] for a in got if a["withdrawn_ts"]] == ["low_soc"]
            assert all(
                a["withdrawn_reason"].startswith("data arrived late: ") for a in got if a["withdrawn_ts"]
            )
            assert _fence_events(engine, tid, ref.wire_id) == fences, seed


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_an_offline_alert_while_messages_were_only_delayed_is_withdrawn(
    kind: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    await receiver.listener.start()
    try:
        with fleet_engine(kind, tmp_path) as engine:
            store = Store(engine)
            sender = webhooks.WebhookSender(engine, backoff_s=0.05)
            domain = DomainPipeline(store, notifier=sender)
            delayed, silent = (
                store.vehicle(registry.add_vehicle(engine, vin(i), "kaiyun_pickman", tenant="acme").vehicle)
                for i in (1, 2)
            )
            tid = delayed.tenant_id
            rules.set_override(engine, tid, {"offline": {"after_minutes": 0.05}})  # 3 s
            webhooks.add(engine, tid, receiver.url, ["alert"])
            await sender.start()
            await domain.start()
            try:
                t0 = time.time()
                spooled = Drive(delayed.wire_id, t=t0 - 5, step_s=0.5).leg(30.5, 20)  # to t0 + 25
                quiet = Drive(silent.wire_id, t=t0 - 5, step_s=0.5).leg(5.5, 20)  # to t0
                spool = spooled.batches(per_batch=2)
                for ref, batches in ((delayed, spool), (silent, quiet.batches(per_batch=2))):
                    for doc in [d for d in batches if d["ts"] <= t0]:  # heard until t0
                        await asyncio.to_thread(store.commit, [Accepted(ref, doc)])
                heard = time.time()  # the last receive time (a loaded machine commits slowly)
                await asyncio.sleep(3.5)
                raised = await asyncio.to_thread(offline.check, engine)
                assert sorted(a["vehicle"] for a in raised) == sorted([delayed.wire_id, silent.wire_id])
                assert heard < t0 + 20
                # the spool drains: what it recorded from t0 until now (none of it in the future)
                rest = [(delayed, d) for d in spool if t0 < d["ts"] <= time.time()]
                back = Drive(silent.wire_id, t=time.time(), seq=100, step_s=0.5).leg(1, 20)
                rest += [(silent, d) for d in back.batches()]
                for ref, doc in rest:
                    await asyncio.to_thread(store.commit, [Accepted(ref, doc)])

                def withdrawals() -> list[dict[str, Any]]:
                    docs = [json.loads(body) for _, body in receiver.got]
                    return [d for d in docs if d["type"] == "alert_withdrawn"]

                await eventually(withdrawals, 30, "the withdrawal at the webhook")
                await asyncio.sleep(0.5)
            finally:
                await domain.stop()
                await sender.stop()
            (hook,) = withdrawals()
            body = hook["alert_withdrawn"]
            assert body["type"] == "offline" and body["vehicle"] == delayed.wire_id
            assert body["withdrawn_reason"].startswith("data arrived late: the vehicle was online")
            by_vehicle = {a["vehicle"]: a for a in dq.alert_list(engine, tid, type_="offline")}
            assert by_vehicle[delayed.wire_id]["withdrawn_reason"] == body["withdrawn_reason"]
            assert by_vehicle[silent.wire_id]["withdrawn_ts"] is None  # it really was silent
            assert domain.status()["errors"] == 0
    finally:
        await receiver.listener.stop()
