"""The ingest worker outside the commit (ingest-judge, session 7): the fast check's row loop
(unpacking, one finite test of the float cells' sum) agrees with the reference path on every
input, valid or not; decode gives the reference's document or its error through the codec; a
batch is collected with one wake-up and holds what it held before, in order, and a lost
connection still wakes the collector."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anycar.bench.fleet_procs import PATHS
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.mqttin import MqttError, MqttIn, mqtt_string, varint
from anycar.wire import Origin, WireError, decode, messages
from anycar.wire.codec import _check_plain
from anycar.wire.fastcheck import telemetry_ok
from anycar.wire.schema import check_message


def _reference(doc: Any) -> None:
    _check_plain(doc)
    check_message(doc)


def _good(cells: list[Any]) -> dict[str, Any]:
    doc = messages.telemetry(
        Origin("veh-1", "0123456789abcdef"),
        9,
        [(PATHS[k % len(PATHS)], 1_767_225_600.0 + k, 0.0) for k in range(len(cells))],
        campaign="bench",
        version=1,
        prio=5,
        ts=1_767_225_601.0,
    )
    for row, cell in zip(doc["values"], cells, strict=True):
        row[2] = cell
    return doc


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.7e308, -1.7e308, math.inf, -math.inf, math.nan, 5e-324, -0.0]),
)
cells = st.one_of(floats, st.integers(-(2**64), 2**64), st.booleans(), st.none(), st.text(max_size=3))
rows = st.one_of(
    st.lists(st.one_of(st.integers(-3, 12), floats, st.text(max_size=2), st.none()), min_size=0, max_size=5),
    st.integers(0, 3),
    st.text(max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(0, 3), max_size=3),
)


@st.composite
def telemetry_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A good message whose cells are any floats (huge ones whose sum overflows, infinities that
    cancel, NaN) or other scalars, with now and then a row replaced by anything."""
    doc = _good(draw(st.lists(cells, min_size=1, max_size=12)))
    for _ in range(draw(st.integers(0, 2))):
        doc["values"][draw(st.integers(0, len(doc["values"]) - 1))] = draw(rows)
    return doc


def _verdict(doc: dict[str, Any]) -> Any:
    try:
        _reference(doc)
    except WireError as exc:
        return (exc.reason, str(exc))
    except Exception as exc:  # jsonschema-rs on ints past 64 bits: the fast path keeps out
        return ("raised", type(exc).__name__)
    return "valid"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(telemetry_docs())
def test_the_row_loop_never_accepts_what_the_reference_refuses(doc: dict[str, Any]) -> None:
    fast = telemetry_ok(doc)
    if fast:
        assert _verdict(doc) == "valid", doc


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(telemetry_docs())
def test_decode_gives_the_reference_document_or_error(doc: dict[str, Any]) -> None:
    """Through the codec, as the worker sees it: the same document, or the same reason and text."""
    try:
        payload = cbor2.dumps(doc)
    except (TypeError, ValueError, cbor2.CBOREncodeError):
        return
    ref = _verdict(cbor2.loads(payload))
    try:
        got: Any = decode(payload)
    except WireError as exc:
        assert ref == (exc.reason, str(exc))
        return
    except Exception as exc:
        assert ref == ("raised", type(exc).__name__)
        return
    assert ref == "valid"
    assert cbor2.dumps(got) == payload  # the document itself, not a copy that differs


@pytest.mark.parametrize(
    ("cells", "fast", "valid"),
    [
        ([1.0, 2.5, -3.0], True, True),
        ([1.7e308, 1.7e308], False, True),  # finite cells whose sum overflows: "not sure", then valid
        ([math.inf, -math.inf], False, False),  # the sum is NaN: refused by the reference
        ([math.nan], False, False),
        ([1.0, math.inf], False, False),
        ([5, "x", None, True, 2.0], True, True),
    ],
)
def test_the_float_sum_only_says_not_sure(cells: list[Any], fast: bool, valid: bool) -> None:
    doc = cbor2.loads(cbor2.dumps(_good(cells)))
    assert telemetry_ok(doc) is fast
    assert (_verdict(doc) == "valid") is valid
    if valid:
        assert decode(cbor2.dumps(doc)) == doc


@pytest.mark.parametrize("row", [[0, 0], [0, 0, 1.0, 2.0], [], "abc", {"a": 0, "b": 0, "c": 1.0}])
def test_a_row_of_another_shape_is_not_taken(row: Any) -> None:
    doc = cbor2.loads(cbor2.dumps(_good([1.0, 2.0])))
    doc["values"][1] = row
    assert telemetry_ok(doc) is False
    with pytest.raises(WireError) as caught:
        decode(cbor2.dumps(doc))
    assert caught.value.reason in ("schema", "malformed")


def _publish(name: str, payload: bytes, mid: int) -> bytes:
    body = mqtt_string(name) + mid.to_bytes(2, "big") + b"\x00" + payload
    return b"\x32" + varint(len(body)) + body


def _feed(client: MqttIn, first: int, n: int) -> None:
    client._received(
        b"".join(_publish(f"anycar/v1/v{i}/telemetry", b"\xa0", i + 1) for i in range(first, first + n))
    )


async def test_a_batch_is_collected_with_one_wake_up_when_full() -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    worker = IngestWorker(None, batch_max=50, batch_delay_s=5.0)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    for k in range(6):  # 6 reads of 10 packets, 1 ms apart; the batch is full at the 5th
        loop.call_later(0.001 * (k + 1), _feed, client, 10 * k, 10)
    t0 = loop.time()
    batch = await worker._collect(client)
    assert loop.time() - t0 < 4.0  # woken when full, not at the deadline
    assert [m.mid for m in batch] == list(range(1, 51))
    await asyncio.sleep(0.01)
    assert [m.mid for m in client.take(100)] == list(range(51, 61))  # the rest waits, in order


async def test_a_batch_short_of_full_is_taken_at_the_deadline() -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    worker = IngestWorker(None, batch_max=500, batch_delay_s=0.05)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, _feed, client, 0, 3)
    loop.call_later(0.01, _feed, client, 3, 4)
    batch = await worker._collect(client)
    assert [m.mid for m in batch] == list(range(1, 8))
    assert client._waiter is None and client._want == 1


async def test_a_lost_connection_wakes_the_collector() -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    worker = IngestWorker(None, batch_max=500, batch_delay_s=30.0)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    loop.call_later(0.001, _feed, client, 0, 2)
    loop.call_later(0.01, client._lost, MqttError("connection lost: test"))
    batch = await asyncio.wait_for(worker._collect(client), 5.0)
    assert [m.mid for m in batch] == [1, 2]  # what came before the loss is still taken
    with pytest.raises(MqttError, match="test"):
        await worker._collect(client)


async def test_wait_wants_a_count_and_a_timeout_ends_it() -> None:
    client = MqttIn("127.0.0.1", 1, "t")
    assert await client.wait(0.01) is False and client.waiting() == 0
    _feed(client, 0, 3)
    assert await client.wait(0.01, want=5) is True and client.waiting() == 3  # timed out with 3
    assert await client.wait(0.0, want=5) is True  # no time left: no waiting at all
    assert [m.mid for m in client.take(2)] == [1, 2] and client.waiting() == 1
