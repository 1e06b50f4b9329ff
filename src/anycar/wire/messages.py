"""Building and reading the wire's messages, so the hub and the fleet make the same shapes.

Uplink messages carry ``vehicle``, ``boot`` (random per hub process run), ``seq`` (1, 2, 3 ...
per boot, over every channel) and ``prio`` (0 most important ... 9 least). A telemetry batch
names each path once and sends ``[index, ms after t0, value]`` rows.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from anycar.wire.topics import check_vehicle

VERSION = 1
INVENTORY_PRIORITY = 1
Sample = tuple[str, float, Any]  # (path, timestamp, value)


def new_boot_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sends uplink messages: one vehicle during one boot."""

    vehicle: str
    boot: str

    def __post_init__(self) -> None:
        check_vehicle(self.vehicle)

    def envelope(self, kind: str, seq: int, prio: int, ts: float) -> dict[str, Any]:
        return {
            "v": VERSION,
            "kind": kind,
            "vehicle": self.vehicle,
            "boot": self.boot,
            "seq": seq,
            "prio": prio,
            "ts": ts,
        }


def telemetry(
    origin: Origin,
    seq: int,
    samples: Iterable[Sample],
    *,
    campaign: str,
    version: int,
    prio: int,
    ts: float,
    trigger: float | None = None,
) -> dict[str, Any]:
    """One batch; ``samples`` in any order, each path written once."""
    rows = list(samples)
    t0 = float(int(min(t for _, t, _ in rows))) if rows else ts
    index: dict[str, int] = {}
    values = []
    for path, t, value in rows:
        i = index.setdefault(path, len(index))
        values.append([i, round((t - t0) * 1000), value])
    doc = origin.envelope("telemetry", seq, prio, ts)
    doc.update({"campaign": campaign, "cv": version, "t0": t0, "paths": list(index), "values": values})
    if trigger is not None:
        doc["trigger"] = trigger
    return doc


def samples(doc: Mapping[str, Any]) -> list[Sample]:
    """The (path, timestamp, value) rows of a telemetry message."""
    paths = doc["paths"]
    t0 = doc["t0"]
    return [(paths[i], t0 + ms / 1000, value) for i, ms, value in doc["values"]]


def events(origin: Origin, seq: int, items: list[dict[str, Any]], *, prio: int, ts: float) -> dict[str, Any]:
    doc = origin.envelope("events", seq, prio, ts)
    doc["events"] = items
    return doc


def state(
    origin: Origin, online: bool, *, ts: float, version: str = "", campaigns: Iterable[str] = ()
) -> dict[str, Any]:
    """Birth (online) or last will / clean stop (offline): seq 0, retained, idempotent."""
    doc = origin.envelope("state", 0, 0, ts)
    doc["state"] = "online" if online else "offline"
    if version:
        doc["hub"] = {"version": version}
    if campaigns:
        doc["campaigns"] = list(campaigns)
    return doc


def campaign_ack(
    origin: Origin,
    seq: int,
    *,
    campaign: str | None,
    version: int | None,
    status: str,
    reason: str = "",
    ts: float,
) -> dict[str, Any]:
    doc = origin.envelope("campaign-ack", seq, 0, ts)
    doc.update({"campaign": campaign, "version": version, "status": status, "reason": reason[:4096]})
    return doc


def command_result(
    origin: Origin,
    seq: int,
    *,
    command: str | None,
    status: str,
    reason: str = "",
    results: Iterable[Mapping[str, Any]] = (),
    ts: float,
    action: str | None = None,
) -> dict[str, Any]:
    doc = origin.envelope("command-result", seq, 0, ts)
    doc.update(
        {"command": command, "status": status, "reason": reason[:4096], "results": [dict(r) for r in results]}
    )
    if action is not None:
        doc["action"] = action
    return doc


def command(
    vehicle: str, command_id: str, actuate: Mapping[str, Any], *, ts: float, expires: float
) -> dict[str, Any]:
    """An unsigned command (the fleet signs it with ``signature.sign``)."""
    return {
        "v": VERSION,
        "kind": "command",
        "vehicle": check_vehicle(vehicle),
        "ts": ts,
        "id": command_id,
        "expires": expires,
        "actuate": dict(actuate),
    }


def command_of(
    vehicle: str, command_id: str, action: str, body: Any, *, ts: float, expires: float
) -> dict[str, Any]:
    """An unsigned command carrying one action (``anycar.wire.schema.COMMAND_ACTIONS``): ``actuate``
    ({path: value}), ``scene`` ({id}), ``firmware`` ({accessory, release, url}), ``fleet_event``
    ({type, data})."""
    return {
        "v": VERSION,
        "kind": "command",
        "vehicle": check_vehicle(vehicle),
        "ts": ts,
        "id": command_id,
        "expires": expires,
        action: body,
    }


def inventory(
    origin: Origin, seq: int, accessories: Iterable[Mapping[str, Any]], *, ts: float
) -> dict[str, Any]:
    """Every accessory fitted now (the whole list: the fleet replaces what it held)."""
    doc = origin.envelope("inventory", seq, INVENTORY_PRIORITY, ts)
    doc["accessories"] = [dict(a) for a in accessories]
    return doc


def campaign(vehicle: str, document: Mapping[str, Any], *, ts: float) -> dict[str, Any]:
    """An unsigned campaign message for one vehicle, or ``*`` for whoever receives it."""
    return {
        "v": VERSION,
        "kind": "campaign",
        "vehicle": vehicle if vehicle == "*" else check_vehicle(vehicle),
        "ts": ts,
        "campaign": dict(document),
    }


POD_PRIORITY = 0  # delivery-exec: a proof of delivery is what the business is paid on


def pod(origin: Origin, seq: int, record: Mapping[str, Any], public_key: str, *, ts: float) -> dict[str, Any]:
    """A proof of delivery: ``record`` already signed by the hub's key (``signature.sign``)."""
    doc = origin.envelope("pod", seq, POD_PRIORITY, ts)
    doc.update({"public_key": public_key, "record": dict(record)})
    return doc
