"""Counters and checksums the way the cars' ECUs compute them, so simulated frames are what a
real bus carries and a receiver that checks them (a gateway, openpilot's panda) accepts them.

The algorithms are those opendbc documents for its DBCs (``opendbc/can/common.cc`` and the panda
safety code): Tesla's byte sum with the address, Volkswagen MQB's AUTOSAR E2E profile 2 (CRC-8H2F
over the payload and a per-message, per-counter "data ID" byte), Toyota's byte sum with address
and length, and Hyundai's nibble sum and (for WHL_SPD11) bit count. Which scheme a profile uses
and the Volkswagen data IDs are data: ``data/checksums.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from cantools.database.can import Message
from cantools.database.can import Signal as DbcSignal

from anycar.errors import ConfigError

_COUNTER = re.compile(r"(counter|alive)", re.IGNORECASE)
_CHECKSUM = re.compile(r"(checksum|chksum|crc)", re.IGNORECASE)


def _crc8_table(poly: int) -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


CRC8_8H2F = _crc8_table(0x2F)  # AUTOSAR CRC-8H2F


def tesla(address: int, data: bytes, checksum_byte: int) -> int:
    """Tesla: the low and high address bytes plus every payload byte but the checksum's, mod 256."""
    total = (address & 0xFF) + ((address >> 8) & 0xFF)
    total += sum(b for i, b in enumerate(data) if i != checksum_byte)
    return total & 0xFF


def toyota(address: int, data: bytes) -> int:
    """Toyota: length, the address bytes and every byte but the last (the checksum), mod 256."""
    total = len(data)
    a = address
    while a:
        total += a & 0xFF
        a >>= 8
    return (total + sum(data[:-1])) & 0xFF


def volkswagen_mqb(data: bytes, data_id: int) -> int:
    """AUTOSAR E2E profile 2: CRC-8H2F over bytes 1.. and the data ID (checksum in byte 0)."""
    crc = 0xFF
    for b in data[1:]:
        crc = CRC8_8H2F[crc ^ b]
    crc = CRC8_8H2F[crc ^ data_id]
    return crc ^ 0xFF


def hyundai_nibbles(data: bytes, skip: Callable[[int, int], int]) -> int:
    """Hyundai: 16 minus the sum of the nibbles (``skip(i, byte)`` masks out the checksum), mod 16."""
    total = 0
    for i, b in enumerate(data):
        b = skip(i, b)
        total += (b & 0x0F) + (b >> 4)
    return (16 - total % 16) % 16


def hyundai_whl_spd11(data: bytes) -> int:
    """Hyundai WHL_SPD11 (0x386): the set bits, leaving out bits 6-7 of bytes 1, 3, 5 and 7, xor 9."""
    count = 0
    for i, b in enumerate(data):
        bits = b & 0x3F if i in (1, 3, 5, 7) else b
        count += bin(bits).count("1")
    return (count ^ 9) & 0x0F


@dataclass
class MessageGuard:
    """The counter and checksum signals of one message, and how to fill them."""

    counters: list[DbcSignal] = field(default_factory=list)
    checksums: list[DbcSignal] = field(default_factory=list)
    compute: Callable[[Message, bytes, int], dict[str, int]] | None = None
    count: int = 0

    def next_counter(self) -> dict[str, int]:
        """The counters' next values (each counts up and wraps at its width; a counter split in
        ``..._LSB`` and ``..._MSB`` signals counts as one)."""
        self.count += 1
        out = {s.name: self.count % (2**s.length) for s in self.counters}
        by_name = {s.name: s for s in self.counters}
        for name, low in by_name.items():
            high = by_name.get(name[:-4] + "_MSB") if name.endswith("_LSB") else None
            if high is not None:
                value = self.count % (2 ** (low.length + high.length))
                out[low.name] = value & (2**low.length - 1)
                out[high.name] = value >> low.length
        return out


@cache
def _schemes() -> dict[str, Any]:
    text = resources.files("anycar.brands").joinpath("data/checksums.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError("anycar/brands/data/checksums.yaml: expected a mapping of profile ids")
    return data


def scheme_of(profile_id: str) -> dict[str, Any] | None:
    """The checksum scheme a profile's ECUs use (``None``: counters only, checksums left alone)."""
    value = _schemes().get(profile_id)
    return value if isinstance(value, dict) else None


def guard_for(profile_id: str, message: Message) -> MessageGuard | None:
    """How this message's counters and checksums are filled, or ``None`` if it has neither."""
    counters = [s for s in message.signals if _COUNTER.search(s.name) and "DISABLED" not in s.name.upper()]
    checksums = [s for s in message.signals if _CHECKSUM.search(s.name)]
    if not counters and not checksums:
        return None
    guard = MessageGuard(counters=counters, checksums=checksums)
    scheme = scheme_of(profile_id)
    if scheme is not None and checksums:
        guard.compute = _computer(scheme, message, checksums)
    return guard


def _computer(
    scheme: dict[str, Any], message: Message, checksums: list[DbcSignal]
) -> Callable[[Message, bytes, int], dict[str, int]] | None:
    kind = scheme.get("algorithm")
    address = int(message.frame_id)
    if kind == "tesla":
        # opendbc computes the signals named ...Checksum (not the ...Crc ones, another algorithm)
        sums = [s for s in checksums if s.name.lower().endswith("checksum") and s.length == 8]
        if not sums:
            return None
        sig = sums[0]
        return lambda msg, data, counter: {sig.name: tesla(address, data, sig.start // 8)}
    if kind == "toyota":
        sig = checksums[0]
        return lambda msg, data, counter: {sig.name: toyota(address, data)}
    if kind == "volkswagen_mqb":
        ids = (scheme.get("data_ids") or {}).get(address)
        named = [s for s in checksums if s.name == "CHECKSUM"]
        if not ids or not named or len(ids) != 16:
            return None  # opendbc knows no data ID for this message either
        table = [int(x) for x in ids]
        return lambda msg, data, counter: {"CHECKSUM": volkswagen_mqb(data, table[data[1] & 0x0F])}
    if kind == "hyundai":
        return _hyundai(address, checksums)
    raise ConfigError(f"anycar/brands/data/checksums.yaml: unknown algorithm {kind!r}")


def _hyundai(
    address: int, checksums: list[DbcSignal]
) -> Callable[[Message, bytes, int], dict[str, int]] | None:
    names = {s.name for s in checksums}
    if address == 0x386 and {"WHL_SPD_Checksum_LSB", "WHL_SPD_Checksum_MSB"} <= names:

        def whl(msg: Message, data: bytes, counter: int) -> dict[str, int]:
            cs = hyundai_whl_spd11(data)
            return {"WHL_SPD_Checksum_LSB": cs & 0x3, "WHL_SPD_Checksum_MSB": cs >> 2}

        return whl
    if address == 0x394 and "CheckSum_TCS3" in names:

        def tcs13(msg: Message, data: bytes, counter: int) -> dict[str, int]:
            body = data[:7]
            return {"CheckSum_TCS3": hyundai_nibbles(body, lambda i, b: b & 0xF0 if i == 6 else b)}

        return tcs13
    return None  # e.g. SAS11: opendbc's mainline panda code documents no algorithm for it


__all__ = ["MessageGuard", "guard_for", "hyundai_whl_spd11", "scheme_of", "tesla", "toyota", "volkswagen_mqb"]
