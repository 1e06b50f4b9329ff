"""Ingest through the real Mosquitto on 127.0.0.1:1883 into real SQLite and PostgreSQL: every
message decoded with anycar.wire, bad ones dead-lettered with a reason (the worker goes on),
duplicates dropped, shared subscriptions splitting the load, and a worker stopped before it
acknowledged losing nothing. Each test has its own share group and vehicle ids."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select

from anycar.fleet import db, queries, registry
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.store import Store
from anycar.wire import Channel, Origin, encode, messages, topic
from fleet_support import eventually, fleet_engine, vin

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


def _batch(origin: Origin, seq: int, t: float) -> bytes:
    doc = messages.telemetry(
        origin,
        seq,
        [(LAT, t, 48.0 + seq / 1e4), (LON, t, 11.0), ("Vehicle.Speed", t, 10.0)],
        campaign="c",
        version=1,
        prio=5,
        ts=t,
    )
    return encode(doc, compress=seq % 2 == 0)


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


async def _publish(items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for name, payload in items:
            await client.publish(name, payload, qos=1)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_good_bad_and_duplicate_messages(kind: str, tmp_path: Path) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        car = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", wire_id=f"T-{uuid.uuid4().hex[:10]}"
        ).vehicle
        other = registry.add_vehicle(
            engine, vin(2), "kaiyun_pickman", wire_id=f"T-{uuid.uuid4().hex[:10]}"
        ).vehicle
        stranger = f"N-{uuid.uuid4().hex[:8]}"
        worker = IngestWorker(
            Store(engine), group=f"t{uuid.uuid4().hex[:8]}", vehicles=[car, stranger], session_s=120
        )
        await worker.start()
        try:
            origin = Origin(car, "0123456789abcdef")
            t = 1_767_225_600.0
            good = [(topic(car, Channel.TELEMETRY), _batch(origin, i, t + i)) for i in range(1, 21)]
            state = encode(messages.state(origin, True, ts=t))
            event = encode(
                messages.events(
                    origin,
                    21,
                    [
                        {
                            "type": "door_opened",
                            "ts": t,
                            "position": {"lat": 48.0, "lon": 11.0},
                            "subject": "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
                        }
                    ],
                    prio=1,
                    ts=t,
                )
            )
            spoof = _batch(Origin(other, "0123456789abcdef"), 1, t)  # other's payload under car's topic
            bad = [
                (topic(car, Channel.TELEMETRY), b"not a wire message"),
                (topic(car, Channel.TELEMETRY), b'{"v": 1, "kind": "telemetry"}'),
                (topic(car, Channel.TELEMETRY), spoof),
                (topic(car, Channel.EVENTS), good[0][1]),  # telemetry on the events channel
                (f"anycar/v1/{stranger}/telemetry", good[0][1]),  # not registered
                (topic(car, Channel.TELEMETRY), b"\x78\x9c" + b"\x00" * 10),  # broken deflate
            ]
            await _publish(
                [
                    *good[:10],
                    *bad,
                    *good,
                    (topic(car, Channel.STATE), state),
                    (topic(car, Channel.EVENTS), event),
                ]
            )
            await eventually(lambda: worker.stats.received >= 38, what="38 messages")
            s = worker.stats
            assert (s.stored, s.duplicates, s.dead) == (22, 10, 6), vars(s)
            assert s.dead_by_reason == {
                "malformed": 2,
                "schema": 1,
                "vehicle_mismatch": 1,
                "wrong_channel": 1,
                "unknown_vehicle": 1,
            }
            assert _count(engine, db.positions) == 20 and _count(engine, db.signal_values) == 60
            tid = registry.tenant_id(engine, "default")
            (v,) = [x for x in queries.vehicles(engine, tid) if x["id"] == car]
            assert v["online"] is True and v["position"]["lat"] == pytest.approx(48.002)
            (ev,) = queries.events(engine, tid, wire_id=car)
            assert ev["type"] == "door_opened" and ev["lat"] == 48.0
            letters = queries.dead_letters(engine, None)
            assert {d["reason"] for d in letters} >= {"malformed", "schema", "unknown_vehicle"}
            assert any(d["detail"].startswith("payload: first byte 0x6e") for d in letters)
        finally:
            await worker.stop()


async def test_shared_subscription_splits_and_a_stopped_worker_loses_nothing(tmp_path: Path) -> None:
    """Two workers in one share group split the messages; one is stopped without acknowledging
    its last batch (its database refuses), comes back with the same id, and every message is
    stored exactly once."""
    with fleet_engine("postgres", tmp_path) as engine:
        car = registry.add_vehicle(
            engine, vin(3), "kaiyun_pickman", wire_id=f"T-{uuid.uuid4().hex[:10]}"
        ).vehicle
        group = f"t{uuid.uuid4().hex[:8]}"
        a = IngestWorker(
            Store(engine),
            group=group,
            vehicles=[car],
            worker_id=f"wa-{uuid.uuid4().hex[:6]}",
            batch_max=20,
            session_s=120,
        )
        b = IngestWorker(
            Store(engine),
            group=group,
            vehicles=[car],
            worker_id=f"wb-{uuid.uuid4().hex[:6]}",
            batch_max=20,
            session_s=120,
        )
        await a.start()
        await b.start()
        origin = Origin(car, "00000000000000ff")
        t = 1_767_225_600.0
        await _publish([(topic(car, Channel.TELEMETRY), _batch(origin, i, t + i)) for i in range(1, 201)])
        await eventually(lambda: a.stats.received + b.stats.received >= 200, what="200 messages")
        assert a.stats.received > 0 and b.stats.received > 0  # the broker split them
        # b's database now fails: it keeps its batch unacknowledged, then it is stopped (as if killed)
        broken = make_broken(b)
        await _publish([(topic(car, Channel.TELEMETRY), _batch(origin, i, t + i)) for i in range(201, 301)])
        await eventually(lambda: broken["tries"] > 0 and a.stats.received >= 1, what="b failing")
        await b.stop()
        await a.stop()
        assert _count(engine, db.positions) < 300
        again = IngestWorker(
            Store(engine), group=group, vehicles=[car], worker_id=b.worker_id, batch_max=20, session_s=120
        )
        survivor = IngestWorker(
            Store(engine), group=group, vehicles=[car], worker_id=a.worker_id, batch_max=20, session_s=120
        )
        await again.start()
        await survivor.start()
        try:
            await eventually(lambda: _count(engine, db.positions) >= 300, what="all 300 stored")
            assert _count(engine, db.received) == 300 and _count(engine, db.positions) == 300
        finally:
            await again.stop()
            await survivor.stop()


def make_broken(worker: IngestWorker) -> dict[str, int]:
    """Point the worker's store at a database that refuses every commit (a real failure: the
    server has no such database), counting the tries."""
    from anycar.fleet.db import make_engine

    tries = {"tries": 0}
    dead_engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/anycar_no_such_db")
    real_commit = Store(dead_engine).commit

    def commit(*args, **kwargs):
        tries["tries"] += 1
        return real_commit(*args, **kwargs)

    worker.store.commit = commit  # type: ignore[method-assign]
    return tries
