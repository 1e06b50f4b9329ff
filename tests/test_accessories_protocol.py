"""Protocol messages: each malformed message gets a ProtocolError naming the field; random
input never raises anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.accessories.errors import ProtocolError
from anycar.accessories.protocol import (
    TO_ACCESSORY,
    auth_proof,
    message_types,
    normalize_code,
    pairing_proof,
    parse_message,
)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ("nope", "", "not JSON"),
        ("[1,2]", "", "JSON object"),
        ('{"type": "dance"}', "type", "'dance' is not one of"),
        ('{"values": {}}', "type", "None is not one of"),
        ('{"type": "publish", "values": {}}', "values", "should be non-empty"),
        ('{"type": "publish", "values": {"9lives": 1}}', "values", "does not match"),
        ('{"type": "publish", "values": {"A": 1}, "extra": 2}', "(message)", "Additional properties"),
        ('{"type": "actuate", "id": 1, "path": "Vehicle..Speed", "value": 1}', "path", "does not match"),
        ('{"type": "actuate", "id": 1, "path": "Vehicle.Speed", "value": NaN}', "", "NaN is not valid JSON"),
        ('{"type": "command_result", "id": {"a": 1}, "ok": true}', "id", "not of type"),
        ('{"type": "command_result", "id": "c1", "ok": "yes"}', "ok", "not of type 'boolean'"),
        ('{"type": "hello", "protocol": 2, "manifest": {}, "serial": "S1"}', "protocol", "1 was expected"),
        (
            '{"type": "hello", "protocol": 1, "manifest": {}, "serial": "has space"}',
            "serial",
            "does not match",
        ),
        ('{"type": "subscribe", "id": "s", "paths": []}', "paths", "should be non-empty"),
    ],
)
def test_bad_messages_name_the_field(raw: str, field: str, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(raw)
    assert info.value.field == field
    assert words in str(info.value)


def test_size_and_encoding_limits() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_message("x" * 300_000)
    with pytest.raises(ProtocolError, match="not UTF-8"):
        parse_message(b'{"type": "\xff"}')
    with pytest.raises(ProtocolError):
        parse_message("[" * 100_000 + "]" * 100_000)


def test_good_messages() -> None:
    assert parse_message(b'{"type":"heartbeat"}') == {"type": "heartbeat"}
    assert parse_message('{"type":"publish","values":{"Zone.Temp":1.5}}')["values"] == {"Zone.Temp": 1.5}
    assert set(message_types()) == {
        "hello",
        "publish",
        "command_result",
        "heartbeat",
        "subscribe",
        "actuate",
        "bye",
        "update_result",
    }
    assert "command" in message_types(TO_ACCESSORY)


def test_pairing_and_auth_proofs() -> None:
    nonce = "ab" * 32
    assert normalize_code("1234-5678") == normalize_code("1234 5678") == "12345678"
    with pytest.raises(ProtocolError, match="8 digits"):
        normalize_code("1234")
    p = pairing_proof("12345678", nonce, "S1")
    assert (
        len(p) == 64
        and p != pairing_proof("12345679", nonce, "S1")
        and p != pairing_proof("12345678", nonce, "S2")
    )
    assert auth_proof("00" * 32, nonce) != auth_proof("00" * 32, "cd" * 32)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "id", "values", "path", "value", "ok", "paths", "protocol", "serial", "manifest", "x"]
        ),
        json_values,
        max_size=6,
    )
)
def test_hypothesis_random_objects(msg: dict[str, Any]) -> None:
    try:
        text = json.dumps(msg)
    except ValueError:
        return
    try:
        parse_message(text)
    except ProtocolError as exc:
        assert isinstance(exc.field, str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_hypothesis_random_bytes(raw: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(raw)
