"""MQTT 5 framing, with no dependency: variable byte integers, strings, and the properties of a
CONNACK, SUBACK or DISCONNECT (MQTT 5.0, OASIS). One copy for the fleet's ingest client
(``anycar.fleet.mqttin``) and the ingest benchmark's load generator (``anycar.bench.fleet_procs``),
which must not import the fleet package: that pulls SQLAlchemy in, and the fault tests time their
kills from the generator's start.
"""

from __future__ import annotations

import struct

# what a CONNACK, SUBACK or DISCONNECT property's value is, by identifier (MQTT 5.0 table 2-4)
_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_TWO = {0x13, 0x21, 0x22, 0x23}
_FOUR = {0x02, 0x11, 0x18, 0x27}
_STRING = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
_BINARY = {0x09, 0x16}


class MqttError(Exception):
    """The broker refused, closed or broke the connection (the worker reconnects)."""


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    if len(raw) > 65535:
        raise ValueError("an MQTT string is at most 65,535 bytes")
    return struct.pack("!H", len(raw)) + raw


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, position after it) of a variable byte integer at ``pos``; None if cut short."""
    value, shift = 0, 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MqttError("malformed packet from the broker: a length of more than 4 bytes")


def properties(body: bytes, pos: int) -> tuple[dict[int, object], int]:
    """The properties at ``pos`` of a CONNACK, SUBACK or DISCONNECT body, and where they end."""
    got = read_varint(body, pos)
    if got is None:
        return {}, len(body)
    length, pos = got
    end = pos + length
    out: dict[int, object] = {}
    while pos < end:
        ident = body[pos]
        pos += 1
        if ident in _BYTE:
            out[ident], pos = body[pos], pos + 1
        elif ident in _TWO:
            out[ident], pos = int.from_bytes(body[pos : pos + 2], "big"), pos + 2
        elif ident in _FOUR:
            out[ident], pos = int.from_bytes(body[pos : pos + 4], "big"), pos + 4
        elif ident == 0x0B:
            got = read_varint(body, pos)
            if got is None:
                break
            out[ident], pos = got
        elif ident in _STRING or ident in _BINARY:
            n = int.from_bytes(body[pos : pos + 2], "big")
            out[ident], pos = bytes(body[pos + 2 : pos + 2 + n]).decode("utf-8", "replace"), pos + 2 + n
        elif ident == 0x26:  # user property: a string pair
            for _ in range(2):
                pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
        else:
            raise MqttError(f"malformed packet from the broker: unknown property 0x{ident:02x}")
    return out, end
