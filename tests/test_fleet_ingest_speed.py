"""The ingest's fast paths (ingest-speed): its own MQTT 5 subscriber against the real Mosquitto and
on hand-cut byte streams, and signal values written as COPY text on the real PostgreSQL, with
every kind of value a telemetry batch may carry read back as it was sent (and through the SQLite
driver's executemany)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from anycar.fleet import db, registry
from anycar.fleet.mqttin import MqttError, MqttIn, mqtt_string, puback_packets, varint
from anycar.fleet.store import Accepted, Store
from anycar.wire import Origin, decode, encode, messages
from fleet_support import fleet_engine, vin


def _publish_packet(topic: str, payload: bytes, mid: int, props: bytes = b"", qos: int = 1) -> bytes:
    body = (
        mqtt_string(topic) + (mid.to_bytes(2, "big") if qos else b"") + varint(len(props)) + props + payload
    )
    return bytes([0x30 | qos << 1]) + varint(len(body)) + body


def test_packets_cut_at_every_byte_boundary_come_out_whole() -> None:
    # a long user property makes the properties' length a 2-byte varint; a 200-byte payload too
    prop = b"\x26" + mqtt_string("k" * 90) + mqtt_string("v" * 90)
    packets = [
        _publish_packet("anycar/v1/a/telemetry", b"\xa1\x01\x02", 1),
        _publish_packet("anycar/v1/b/events", bytes(range(200)), 65535, props=prop),
        _publish_packet("anycar/v1/c/state", b"{}", 0, qos=0),
    ]
    stream = b"".join(packets)
    for cut in range(1, len(stream)):
        client = MqttIn("127.0.0.1", 1, "t")
        client._received(stream[:cut])
        client._received(stream[cut:])
        got = client.take(10)
        assert [(m.topic, m.payload, m.qos, m.mid) for m in got] == [
            ("anycar/v1/a/telemetry", b"\xa1\x01\x02", 1, 1),
            ("anycar/v1/b/events", bytes(range(200)), 1, 65535),
            ("anycar/v1/c/state", b"{}", 0, 0),
        ], cut
    assert puback_packets([1, 65535]) == b"\x40\x02\x00\x01\x40\x02\xff\xff"


@pytest.mark.parametrize(
    ("stream", "said"),
    [
        (_publish_packet("t", b"x", 1, qos=2), "QoS 2"),
        (b"\x30\xff\xff\xff\xff\x01", "more than 4 bytes"),
        (b"\x30\x05\x00\x02\xff\xfex", "malformed"),  # a topic that is not UTF-8
        (b"\xe0\x02\x8b\x00", "server shutting down"),  # the broker's DISCONNECT says why
        (b"\x50\x02\x00\x01", "unexpected packet type 5"),  # PUBREC: nothing the ingest asked for
    ],
)
async def test_a_broken_stream_ends_the_connection_with_a_reason(stream: bytes, said: str) -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    client._received(stream)
    with pytest.raises(MqttError, match=said):
        await client.wait(0.1)


async def test_against_mosquitto_acked_messages_are_not_sent_again() -> None:
    """Real Mosquitto: a persistent session, QoS 1 in, PUBACKs out. Unacked messages come back on
    the next connection with the same id; acked ones never do."""
    cid = f"t-mqttin-{uuid.uuid4().hex[:8]}"
    topic = f"anycar/test/{cid}"
    first = MqttIn("127.0.0.1", 1883, cid, session_s=60, receive_maximum=10)
    await first.connect()
    assert await first.subscribe([topic], qos=1) == [1]
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as pub:
        for i in range(6):
            await pub.publish(topic, f"m{i}".encode(), qos=1)
    got: list = []
    while len(got) < 6:
        assert await first.wait(5)
        got += first.take(10)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(6)]
    first.ack([m.mid for m in got[:4]])  # the first four committed, the last two not
    await asyncio.sleep(0.3)
    first.close()
    again = MqttIn("127.0.0.1", 1883, cid, session_s=1, receive_maximum=10)
    await again.connect()
    assert again.session_present
    back: list = []
    while await again.wait(1.0):
        back += again.take(10)
    assert sorted(m.payload for m in back) == [b"m4", b"m5"]
    again.ack([m.mid for m in back])
    await asyncio.sleep(0.2)
    again.close()


async def test_no_broker_is_one_clear_error() -> None:
    # a wrong password is refused with the broker's reason: tests/test_fleet_provisioning.py
    with pytest.raises(MqttError, match="cannot reach"):
        await MqttIn("127.0.0.1", 9, "t").connect(timeout=2)


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_signal_values_of_every_kind_round_trip(kind: str, tmp_path: Path) -> None:
    """Strings with tab, newline, carriage return and backslash, unicode, bools, ints, null,
    arrays of them (what a VSS value may be): what is read back equals what the hub sent."""
    values = [
        12.5,
        -0.0,
        7,
        True,
        None,
        "tab\there",
        "new\nline\r",
        "back\\slash \\N",
        "ümlaut ✓",
        [1.5, "x\ty", None, True, "\\"],
    ]
    paths = [f"Vehicle.Test.P{i}" for i in range(len(values))]
    with fleet_engine(kind, tmp_path) as engine:
        creds = registry.add_vehicle(engine, vin(7), "kaiyun_pickman", tenant="copy")
        store = Store(engine)
        ref = store.vehicle(creds.vehicle)
        assert ref is not None
        origin = Origin(creds.vehicle, "00000000000000cc")
        t = 1_767_225_600.0
        doc = messages.telemetry(
            origin,
            1,
            [(p, t + i, v) for i, (p, v) in enumerate(zip(paths, values, strict=True))],
            campaign="c",
            version=1,
            prio=5,
            ts=t,
        )
        stored = store.commit([Accepted(ref, decode(encode(doc)))])
        assert stored.messages == 1
        sv = db.signal_values.c
        with engine.connect() as conn:
            rows = conn.execute(select(sv.path, sv.ts, sv.num, sv.value).order_by(sv.ts)).all()
        assert [r.path for r in rows] == paths
        assert [r.value for r in rows] == values
        assert [r.num for r in rows] == [12.5, -0.0, 7.0, 1.0] + [None] * 6
        assert [r.ts for r in rows] == [t + i for i in range(len(values))]
