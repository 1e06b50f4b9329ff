"""A message the database cannot take must not stop a worker: through the real Mosquitto into
real SQLite and PostgreSQL, an event whose text holds a NUL (valid wire, but PostgreSQL's text
cannot hold it) becomes a ``store_refused`` dead letter with the database's words, the rest of
its batch is stored, and the worker goes on. Before, the batch was retried forever. Coordinates
of ~1e-300 (PostgreSQL's squares underflow in the rollup's distance) are stored as 0."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from anycar.fleet import db, queries, registry
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.store import Store, Stored, refused_for_its_data
from anycar.wire import Channel, Origin, encode, messages, topic
from fleet_support import eventually, fleet_engine, vin

LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"
T = 1_767_225_600.0


def _telemetry(origin: Origin, seq: int, lat: float, lon: float) -> bytes:
    t = T + seq
    doc = messages.telemetry(
        origin, seq, [(LAT, t, lat), (LON, t, lon)], campaign="c", version=1, prio=5, ts=t
    )
    return encode(doc)


def _event(origin: Origin, seq: int, text: str) -> bytes:
    item = {"type": "low_soc", "ts": T + seq, "position": None, "message": text}
    return encode(messages.events(origin, seq, [item], prio=1, ts=T + seq))


async def _publish(items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for name, payload in items:
            await client.publish(name, payload, qos=1)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_message_the_database_refuses_is_a_dead_letter_and_the_rest_is_stored(
    kind: str, tmp_path: Path
) -> None:
    with fleet_engine(kind, tmp_path) as engine:
        car = registry.add_vehicle(
            engine, vin(3), "kaiyun_pickman", wire_id=f"R-{uuid.uuid4().hex[:10]}"
        ).vehicle
        worker = IngestWorker(Store(engine), group=f"r{uuid.uuid4().hex[:8]}", vehicles=[car], session_s=120)
        await worker.start()
        try:
            origin = Origin(car, "0123456789abcdef")
            tel, ev = topic(car, Channel.TELEMETRY), topic(car, Channel.EVENTS)
            poison = _event(origin, 3, "a\x00b")
            await _publish(
                [
                    (tel, _telemetry(origin, 1, 60.17, 24.94)),
                    (tel, _telemetry(origin, 2, 2e-300, -1e-300)),  # underflows PostgreSQL's power()
                    (ev, poison),
                    (tel, _telemetry(origin, 4, 1e-300, 24.95)),
                    (ev, _event(origin, 5, "battery low")),
                ]
            )
            await eventually(lambda: worker.stats.received >= 5, what="5 messages")
            # the worker goes on: a later message is stored too
            await _publish([(tel, _telemetry(origin, 6, 60.18, 24.96))])
            await eventually(lambda: worker.stats.received >= 6, what="the 6th message")
            s = worker.stats
            refused = 1 if kind == "postgres" else 0  # SQLite's text holds a NUL
            assert (s.stored, s.dead) == (6 - refused, refused), vars(s)
            with engine.connect() as conn:
                lats = conn.execute(
                    select(db.positions.c.lat, db.positions.c.lon).order_by(db.positions.c.ts)
                ).all()
            assert [tuple(r) for r in lats] == [(60.17, 24.94), (0.0, -0.0), (0.0, 24.95), (60.18, 24.96)]
            tid = registry.tenant_id(engine, "default")
            kept = [e["message"] for e in queries.events(engine, tid, wire_id=car)]
            assert "battery low" in kept and len(kept) == 2 - refused
            if kind == "postgres":
                assert s.dead_by_reason == {"store_refused": 1}
                (letter,) = queries.dead_letters(engine, None)
                assert letter["reason"] == "store_refused" and letter["topic"] == ev
                assert "NUL" in letter["detail"] and letter["detail"].startswith("the database refused it: ")
                with engine.connect() as conn:
                    (payload,) = conn.execute(select(db.dead_letters.c.payload)).one()
                assert bytes(payload) == poison  # kept as it came, to look at or replay
        finally:
            await worker.stop()


def test_only_errors_of_the_data_are_refused_for_their_data() -> None:
    class Driver(Exception):
        def __init__(self, sqlstate: str | None) -> None:
            self.sqlstate = sqlstate

    class DataError(Exception):  # a PEP 249 driver's, raised before the server saw the row
        pass

    assert refused_for_its_data(Driver("22003")) and refused_for_its_data(Driver("23503"))
    assert not refused_for_its_data(Driver("08006"))  # connection failure: retry, keep the batch
    assert not refused_for_its_data(Driver("57P01"))  # the server shutting down
    assert refused_for_its_data(DataError()) and not refused_for_its_data(ConnectionError())


def test_commits_folded_together_keep_every_figure() -> None:
    a = Stored(messages=2, duplicates=1, dead=0, positions=[{"p": 1}], touched={7: (1, 10.0)})
    b = Stored(messages=1, dead=1, events=[{"e": 1}], touched={7: (1, 4.0), 8: (2, 5.0)})
    a.add(b)
    assert (a.messages, a.duplicates, a.dead) == (3, 1, 1)
    assert a.positions == [{"p": 1}] and a.events == [{"e": 1}]
    assert a.touched == {7: (1, 4.0), 8: (2, 5.0)}
