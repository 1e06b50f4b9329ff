"""The ingest worker's own cuts (ingest-worker): the one-pass telemetry check agrees with the
reference path (JSON-types walk + jsonschema-rs) on arbitrary messages, bad messages still reach
the dead letters with a reason that names the field (real Mosquitto, real PostgreSQL), the MQTT
packet cutter refuses lengths that run past their packet, and the bench's pre-encoded load is
the same bytes as encoding the message, and its serving-worker mode runs the domain handlers."""

from __future__ import annotations

import copy
import math
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.bench import fleet
from anycar.bench.fleet_procs import PATHS, Template
from anycar.fleet import queries, registry
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.mqttin import MqttError, MqttIn, mqtt_string, varint
from anycar.fleet.store import TINY_DEGREES, Store, positions_of
from anycar.fleet.store import _number as store_number
from anycar.wire import Channel, Origin, WireError, decode, encode, messages, samples, topic
from anycar.wire.codec import _check_plain
from anycar.wire.fastcheck import telemetry_ok
from anycar.wire.schema import check_message
from fleet_support import eventually, fleet_engine, vin


def _reference(doc: Any) -> None:
    """What decode did for every message before the fast path: the walk, then the schema."""
    _check_plain(doc)
    check_message(doc)


def _good(seq: int = 7) -> dict[str, Any]:
    return messages.telemetry(
        Origin("veh-1", "0123456789abcdef"),
        seq,
        [(p, 1_767_225_600.0 + k / 10, float(k)) for k, p in enumerate(PATHS)],
        campaign="bench",
        version=1,
        prio=5,
        ts=1_767_225_601.5,
    )


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["", "x" * 4096, "x" * 4097, "Vehicle.Speed", "a..b", "veh-1\n", "0123abcd"]),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=3),
    ),
    max_leaves=8,
)
KEYS = ["v", "kind", "vehicle", "boot", "seq", "prio", "ts", "campaign", "cv", "t0", "paths", "values"]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A good telemetry message with a few random changes: a field set to anything, a key dropped
    or added, a row or a path or a value replaced, rows lengthened or cut."""
    doc = _good(draw(st.integers(min_value=0, max_value=2**53 + 5)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        what = draw(st.sampled_from(["set", "drop", "add", "row", "cell", "path", "trigger"]))
        if what == "set":
            doc[draw(st.sampled_from(KEYS))] = draw(values)
        elif what == "drop":
            doc.pop(draw(st.sampled_from(KEYS)), None)
        elif what == "add":
            doc[draw(st.sampled_from(["extra", "trigger", "Kind", "values2"]))] = draw(values)
        elif what == "trigger":
            doc["trigger"] = draw(scalars)
        elif isinstance(doc.get("values"), list) and doc["values"] and what in ("row", "cell"):
            i = draw(st.integers(min_value=0, max_value=len(doc["values"]) - 1))
            if what == "row":
                doc["values"][i] = draw(values)
            elif isinstance(doc["values"][i], list) and doc["values"][i]:
                row = doc["values"][i]
                row[draw(st.integers(min_value=0, max_value=len(row) - 1))] = draw(
                    st.one_of(values, st.lists(scalars, max_size=3), st.integers(-(10**9), 10**9))
                )
        elif isinstance(doc.get("paths"), list) and doc["paths"]:
            j = draw(st.integers(min_value=0, max_value=len(doc["paths"]) - 1))
            doc["paths"][j] = draw(st.one_of(values, st.sampled_from(["A.b", "a b", "x" * 1025, "é"])))
    return doc


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_the_fast_path_never_accepts_what_the_reference_refuses(doc: dict[str, Any]) -> None:
    original = copy.deepcopy(doc)
    fast = telemetry_ok(doc)
    assert doc == original or doc != doc  # it does not touch the message (nan != nan)
    try:
        _reference(doc)
    except WireError:
        assert fast is False, doc
    except Exception as exc:  # e.g. jsonschema-rs on an int past 64 bits: the fast path keeps out
        assert fast is False, (doc, exc)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_decode_gives_what_the_reference_gives_on_the_wire(doc: dict[str, Any]) -> None:
    """Through the codec: the same document or the same error (reason and text), byte for byte."""
    try:
        payload = cbor2.dumps(doc)
    except (TypeError, ValueError, cbor2.CBOREncodeError):
        return
    ref: Any
    try:
        ref = cbor2.loads(payload)
        _reference(ref)
    except WireError as exc:
        ref = (exc.reason, str(exc))
    except Exception as exc:
        ref = type(exc)
    try:
        got: Any = decode(payload)
    except WireError as exc:
        got = (exc.reason, str(exc))
    except Exception as exc:
        got = type(exc)
    if isinstance(ref, dict) and isinstance(got, dict):
        assert cbor2.dumps(got) == cbor2.dumps(ref)
    else:
        assert got == ref


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS),
            st.floats(min_value=1e9, max_value=2e9),
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(-(2**62), 2**62),
                st.booleans(),
                st.none(),
                st.text(max_size=20),
                st.lists(
                    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
                    max_size=5,
                ),
            ),
        ),
        min_size=1,
        max_size=30,
    ).filter(lambda rows: max(t for _, t, _ in rows) - min(t for _, t, _ in rows) < 80_000),
    st.integers(min_value=0, max_value=2**53 - 1),
)
def test_the_fast_path_takes_the_messages_a_hub_sends(rows: list[Any], seq: int) -> None:
    doc = messages.telemetry(
        Origin("veh-1", "0123456789abcdef"), seq, rows, campaign="c", version=2, prio=3, ts=1.8e9
    )
    _reference(doc)
    assert telemetry_ok(cbor2.loads(cbor2.dumps(doc))) is True


def test_the_fast_path_leaves_odd_but_valid_messages_to_the_reference() -> None:
    doc = _good()
    doc["cv"] = 1.0  # an integer to JSON Schema, not to the fast path: the reference decides
    assert telemetry_ok(doc) is False
    _reference(doc)
    assert decode(cbor2.dumps(doc))["cv"] == 1.0
    doc = _good()
    doc["vehicle"] = "veh-1\n"  # Python's $ matches before a final newline; the schema's does not
    assert telemetry_ok(doc) is False
    with pytest.raises(WireError, match="vehicle"):
        decode(cbor2.dumps(doc))
    doc = _good()
    doc["values"][0][2] = math.inf
    assert telemetry_ok(doc) is False
    with pytest.raises(WireError, match="finite"):
        decode(cbor2.dumps(doc))


async def test_bad_messages_are_dead_lettered_with_the_field(tmp_path: Path) -> None:
    """Real Mosquitto, real PostgreSQL: malformed, oversized and schema-breaking telemetry (each
    in CBOR, the fast path's format) land in the dead letters with a reason naming the field."""
    with fleet_engine("postgres", tmp_path) as engine:
        car = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", wire_id=f"W-{uuid.uuid4().hex[:10]}"
        ).vehicle
        worker = IngestWorker(Store(engine), group=f"w{uuid.uuid4().hex[:8]}", vehicles=[car], session_s=120)
        await worker.start()
        try:
            origin = Origin(car, "0123456789abcdef")
            t = 1_767_225_600.0

            def tel(seq: int, **change: Any) -> dict[str, Any]:
                doc = messages.telemetry(
                    origin,
                    seq,
                    [(p, t, float(k)) for k, p in enumerate(PATHS)],
                    campaign="c",
                    version=1,
                    prio=5,
                    ts=t,
                )
                doc.update(change)
                return doc

            past = tel(3)
            past["values"][4][0] = 10  # index past the 10 paths
            wide = tel(4)
            wide["values"][2][1] = 86_400_001  # ms offset past a day
            bad = {
                "malformed": cbor2.dumps(["not", "a", "map"]),
                "too_large": b"\xa1" + cbor2.dumps("x") + cbor2.dumps("y" * (300 * 1024)),
                "prio": cbor2.dumps(tel(1, prio=12)),
                "paths[1]": cbor2.dumps(tel(2, paths=[PATHS[0], "bad path", *PATHS[2:]])),
                "values[4][0]": cbor2.dumps(past),
                "values[2][1]": cbor2.dumps(wide),
            }
            good = encode(tel(9))
            name = topic(car, Channel.TELEMETRY)
            async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
                for payload in [*bad.values(), good]:
                    await client.publish(name, payload, qos=1)
            await eventually(lambda: worker.stats.received >= 7, what="7 messages")
            assert (worker.stats.stored, worker.stats.dead) == (1, 6), vars(worker.stats)
            letters = queries.dead_letters(engine, None)
            by_detail = {d["detail"]: d["reason"] for d in letters}
            assert sorted(by_detail.values()) == [
                "malformed",
                "schema",
                "schema",
                "schema",
                "schema",
                "too_large",
            ]
            for where in ("prio", "paths[1]", "values[4][0]", "values[2][1]"):
                assert any(where in d and r == "schema" for d, r in by_detail.items()), (where, by_detail)
        finally:
            await worker.stop()


def _publish(topic_name: str, payload: bytes, mid: int) -> bytes:
    body = mqtt_string(topic_name) + mid.to_bytes(2, "big") + b"\x00" + payload
    return b"\x32" + varint(len(body)) + body


@pytest.mark.parametrize(
    ("stream", "said"),
    [
        (b"\x32\x03\x00\x09ab", "topic runs past"),  # a topic longer than its packet
        (b"\x32\x06\x00\x01a\x00\x01\x40", "properties run past"),  # properties past the end
    ],
)
async def test_lengths_that_run_past_their_packet_end_the_connection(stream: bytes, said: str) -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    client._received(stream + _publish("anycar/v1/a/telemetry", b"\xa0", 1))
    with pytest.raises(MqttError, match=said):
        await client.wait(0.1)
    assert client.take(10) == []  # nothing after a broken packet is believed


def test_reads_and_packets_are_counted() -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    stream = b"".join(_publish(f"anycar/v1/v{i}/telemetry", bytes(300), i + 1) for i in range(10))
    client._received(stream[:1000])
    client._received(stream[1000:])
    assert (client.reads, client.packets, len(client.take(20))) == (2, 10, 10)


@pytest.mark.parametrize("seq", [1, 23, 24, 255, 256, 65_535, 65_536, 2**32, 2**53 - 1])
@pytest.mark.parametrize("t", [1.0, 1_796_150_000.123456])
def test_the_generator_s_template_is_the_encoded_message(seq: int, t: float) -> None:
    template = Template("B000001", "abcd000000000001", 48.1)
    payload = template.payload(seq, t)
    assert payload == encode(template.doc(seq, t))
    doc = decode(payload)  # valid on the wire (the worker checks it the same way)
    assert doc["seq"] == seq and doc["ts"] == doc["t0"] == t and doc["values"][1][2] == 11.5 + seq / 1e5


def test_a_short_run_with_the_serving_worker_s_domain_handlers() -> None:
    run = fleet.ingest("postgres", workers=1, vehicles=50, rate=300.0, seconds=2.0, domain=True)
    assert run["zero_loss"] is True and run["stored"] == run["published"] >= 500
    (domain,) = run["domain"]
    assert domain["passes"] > 0 and domain["vehicles"] > 0 and domain["errors"] == 0, domain
    assert run["packets_per_read"] >= 1.0


def _positions_before(doc: dict[str, Any], last: dict[str, float | None]) -> list[dict[str, Any]]:
    """``positions_of`` as it was before ingest-worker (every sample sorted, then filtered)."""
    keys = {
        "Vehicle.CurrentLocation.Latitude": "lat",
        "Vehicle.CurrentLocation.Longitude": "lon",
        "Vehicle.CurrentLocation.Heading": "heading",
        "Vehicle.Speed": "speed",
    }
    out: list[dict[str, Any]] = []
    moved_at: float | None = None

    def emit() -> None:
        if moved_at is not None and last.get("lat") is not None and last.get("lon") is not None:
            out.append(
                {
                    "ts": moved_at,
                    "lat": last["lat"],
                    "lon": last["lon"],
                    "speed": last.get("speed"),
                    "heading": last.get("heading"),
                }
            )

    for path, ts, value in sorted(samples(doc), key=lambda s: s[1]):
        key = keys.get(path)
        number = store_number(value)
        if key is None or number is None:
            continue
        if moved_at is not None and ts != moved_at:
            emit()
            moved_at = None
        if key in ("lat", "lon"):
            moved_at = ts
            if -TINY_DEGREES < number < TINY_DEGREES:  # stored as 0 (PostgreSQL's underflow)
                number = 0.0 * number
        last[key] = number
    emit()
    return out


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*PATHS, "Vehicle.CurrentLocation.Altitude"]),
            st.integers(min_value=0, max_value=20).map(lambda s: 1_767_225_600.0 + s / 4),
            st.one_of(
                st.floats(-100, 100),
                st.floats(),  # pg-worker: NaN and the infinities too (the fast path's own float test)
                st.integers(-5, 5),
                st.booleans(),
                st.none(),
                st.text(max_size=2),
            ),
        ),
        min_size=1,
        max_size=25,
    ),
    st.dictionaries(st.sampled_from(["lat", "lon", "speed", "heading"]), st.floats(-10, 10), max_size=4),
)
def test_positions_come_out_as_before(rows: list[Any], last: dict[str, Any]) -> None:
    doc = messages.telemetry(
        Origin("veh-1", "0123456789abcdef"), 1, rows, campaign="c", version=1, prio=5, ts=1.8e9
    )
    before, now = dict(last), dict(last)
    assert positions_of(doc, now) == _positions_before(doc, before)
    assert now == before


def test_the_latency_run_takes_its_number_of_workers() -> None:
    result = fleet.run(parts=("latency",), latency_workers=2, latency_rate=300.0, seconds=2.0, vehicles=50)
    run = result["postgres_latency"]
    assert run["workers"] == 2 and run["zero_loss"] is True and run["stored"] == run["published"] >= 500


def test_a_wrong_number_of_workers_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    from anycar.cli.main import main

    code = main(["bench", "fleet", "--workers", "0", "--parts", "latency"])
    err = capfd.readouterr().err
    assert code != 0 and err.strip() == "error: --workers 0: 1 to 8", err
