"""The wire format: topics, schemas, CBOR/JSON/deflate, bounds, signatures and dedup."""

from __future__ import annotations

import json
import time
import zlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.wire import (
    Channel,
    Deduplicator,
    Format,
    Origin,
    WireError,
    decode,
    encode,
    new_boot_id,
    parse_topic,
    samples,
    signature,
    subscription,
    topic,
)
from anycar.wire import messages as msg

ORIGIN = Origin("PM-0001", "0123456789abcdef")
NOW = 1_764_580_000.0


def batch(n: int = 50) -> dict:
    rows = [("Vehicle.Speed", NOW + i * 0.1, 20.0 + i) for i in range(n)]
    rows += [
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", NOW + 1, True),
        ("Vehicle.LowVoltageSystemState", NOW, "ON"),
    ]
    return msg.telemetry(ORIGIN, 7, rows, campaign="default", version=2, prio=5, ts=NOW + 6)


def test_topics_layout_and_parse() -> None:
    assert topic("PM-0001", Channel.TELEMETRY) == "anycar/v1/PM-0001/telemetry"
    assert topic("PM-0001", "command-results") == "anycar/v1/PM-0001/command-results"
    assert subscription(Channel.EVENTS) == "anycar/v1/+/events"
    assert parse_topic("anycar/v1/PM-0001/campaign-acks") == ("PM-0001", Channel.CAMPAIGN_ACKS)
    assert not Channel.COMMANDS.uplink and Channel.STATE.uplink
    for bad in ("anycar/v2/x/telemetry", "anycar/v1/x/nope", "anycar/v1/a/b/telemetry"):
        with pytest.raises(WireError, match="topic"):
            parse_topic(bad)
    for vehicle in ("", "a/b", "+", "#", "x" * 65, "-lead"):
        with pytest.raises(WireError, match="vehicle id"):
            topic(vehicle, Channel.TELEMETRY)


@pytest.mark.parametrize("fmt", ["cbor", "json"])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_keeps_every_value(fmt: str, compress: bool) -> None:
    doc = batch()
    payload = encode(doc, fmt, compress=compress)
    assert (payload[0] == 0x78) == compress
    back = decode(payload)
    assert back == doc
    assert samples(back)[1] == ("Vehicle.Speed", pytest.approx(NOW + 0.1), 21.0)
    assert len(back["paths"]) == 3  # each path written once


def test_cbor_is_smaller_than_json_and_deflate_smaller_still() -> None:
    doc = batch(500)
    cbor, js, packed = encode(doc), encode(doc, Format.JSON), encode(doc, compress=True)
    assert len(cbor) < len(js)
    assert len(packed) < len(cbor)


def test_schema_errors_name_the_field() -> None:
    doc = batch()
    doc["values"][3][1] = "late"
    with pytest.raises(WireError, match=r"values\[3\]\[1\]") as err:
        encode(doc)
    assert err.value.reason == "schema"
    doc = batch()
    doc["values"][0][0] = 99
    with pytest.raises(WireError, match=r"values\[0\]\[0\]: index 99 is past the 3 paths"):
        encode(doc)
    doc = batch()
    del doc["seq"]
    with pytest.raises(WireError, match="seq"):
        encode(doc)
    with pytest.raises(WireError, match="kind"):
        encode({"kind": "gossip"})
    with pytest.raises(WireError, match="unexpected"):
        decode(encode({**batch(), "extra": 1}, validate=False))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "malformed"),
        (b"\x00\x01", "malformed"),
        (b"{not json", "malformed"),
        (b'{"v": NaN}', "malformed"),
        (cbor2.dumps([1, 2]), "malformed"),
        (b"\xa1" + cbor2.dumps(1) + cbor2.dumps(2), "malformed"),  # integer key
        (cbor2.dumps({"v": b"bytes"}), "malformed"),
        (cbor2.dumps({"v": float("inf")}), "malformed"),
        (b"[" * 100_000, "malformed"),
        (b"\x81" * 100_000, "malformed"),
        (b"\x78\x9c garbage", "malformed"),
        (b"{" + b" " * 300_000 + b"}", "too_large"),
        (zlib.compress(b"{" + b" " * 5_000_000 + b"}"), "too_large"),
        (zlib.compress(zlib.compress(b"{}")), "malformed"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode(payload)
    assert err.value.reason == reason
    assert "\n" not in str(err.value)


def test_decode_time_is_linear_in_a_hostile_payload() -> None:
    started = time.perf_counter()
    for payload in (b"[" * 250_000, b"\x9f" * 250_000, zlib.compress(b"[" * 2_000_000)):
        with pytest.raises(WireError):
            decode(payload)
    assert time.perf_counter() - started < 5


def test_every_kind_builds_valid_messages() -> None:
    seen = {
        decode(encode(d))["kind"]
        for d in (
            batch(),
            msg.events(
                ORIGIN,
                8,
                [{"type": "trip_start", "ts": NOW, "position": {"lat": 30.1, "lon": 120.2}}],
                prio=1,
                ts=NOW,
            ),
            msg.state(ORIGIN, True, ts=NOW, version="0.1.0", campaigns=["default@1"]),
            msg.campaign_ack(ORIGIN, 9, campaign="c", version=1, status="accepted", ts=NOW),
            msg.command_result(
                ORIGIN,
                10,
                command="c1",
                status="accepted",
                results=[{"path": "Vehicle.Body.Horn.IsActive", "status": "accepted"}],
                ts=NOW,
            ),
        )
    }
    assert seen == {"telemetry", "events", "state", "campaign-ack", "command-result"}


def test_signed_commands_and_campaigns_verify_and_tampering_is_caught() -> None:
    key = Ed25519PrivateKey.generate()
    trusted = {signature.key_id(key): key.public_key()}
    cmd = signature.sign(
        msg.command("PM-0001", "c-1", {"Vehicle.Body.Horn.IsActive": True}, ts=NOW, expires=NOW + 60), key
    )
    back = decode(encode(cmd))  # signed over canonical JSON, carried as CBOR
    assert signature.verify(back, trusted) == signature.key_id(key)
    back["actuate"]["Vehicle.Body.Horn.IsActive"] = False
    with pytest.raises(WireError, match="forged or altered"):
        signature.verify(back, trusted)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(WireError, match="not a trusted fleet key"):
        signature.verify(signature.sign(cmd, other), trusted)
    unsigned = msg.command("PM-0001", "c-2", {"Vehicle.Body.Horn.IsActive": True}, ts=NOW, expires=NOW + 60)
    with pytest.raises(WireError, match="signature"):
        decode(json.dumps(unsigned).encode())  # the schema requires the signature
    with pytest.raises(WireError, match="not signed"):
        signature.verify(unsigned, trusted)
    doc = {
        "id": "fast",
        "version": 3,
        "signals": [{"path": "Vehicle.Speed"}],
        "collect": {"periodic": {"period_ms": 100}},
    }
    camp = signature.sign(msg.campaign("*", doc, ts=NOW), key)
    assert decode(encode(camp, "json"))["campaign"]["version"] == 3


def test_dedup_counts_each_sequence_once_in_any_order() -> None:
    dd = Deduplicator()
    boot = new_boot_id()
    order = [1, 2, 5, 3, 3, 4, 1, 6, 5]
    fresh = [s for s in order if dd.first_time("PM-0001", boot, s)]
    assert fresh == [1, 2, 5, 3, 4, 6]
    assert dd.duplicates == 3
    assert dd.first_time("PM-0001", new_boot_id(), 1)  # a new boot starts over
    assert dd.first_time("PM-0002", boot, 1)
    assert dd.missing("PM-0001", boot) == 0
    dd.first_time("PM-0001", boot, 10)
    assert dd.missing("PM-0001", boot) == 3
