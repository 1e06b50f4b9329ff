"""Orders: what a customer asked for, checked field by field before anything is stored.

Three kinds, as a small delivery business has them: a ``delivery`` leaves the depot with the
vehicle and is dropped at the customer; a ``pickup`` is collected at the customer and brought
back to the depot; a ``courier`` job is collected at one address and dropped at another by the
same vehicle, in that order. Times are seconds since the planning day's midnight (local), so a
window "09:00-11:00" is (32400, 39600); an order may have several windows and is served in one.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anycar.logistics.settings import FEATURES, ServiceArea

KINDS = ("delivery", "pickup", "courier")
MAX_REF = 64
MAX_WINDOWS = 8
DAY_S = 86_400
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/#-]{0,63}$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class OrderError(ValueError):
    """One field of one order is wrong; the message names the field and says why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # seconds since the planning day's midnight
    end: int

    def as_text(self) -> str:
        return f"{clock(self.start)}-{clock(self.end)}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a vehicle stops for an order, when it may arrive, and how long it stays."""

    lat: float
    lon: float
    windows: tuple[Window, ...]
    service_s: int
    address: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    ref: str
    kind: str
    drop: Place | None  # delivery, courier
    pickup: Place | None  # pickup, courier
    weight_kg: float = 0.0
    volume_m3: float = 0.0
    priority: int = 0  # 0 normal .. 9 most urgent: the last to be left out when not all fit
    features: frozenset[str] = field(default_factory=frozenset)
    cod: float | None = None  # cash on delivery, in the tenant's currency
    note: str = ""

    def places(self) -> list[tuple[str, Place]]:
        """The order's stops in the order a vehicle makes them."""
        out: list[tuple[str, Place]] = []
        if self.pickup is not None:
            out.append(("pickup", self.pickup))
        if self.drop is not None:
            out.append(("drop", self.drop))
        return out

    def to_fields(self) -> dict[str, Any]:
        """The flat fields ``parse_order`` reads (a CSV row's columns): what the store keeps."""
        out: dict[str, Any] = {
            "id": self.ref,
            "kind": self.kind,
            "weight_kg": self.weight_kg,
            "volume_m3": self.volume_m3,
            "priority": self.priority,
            "features": "|".join(sorted(self.features)),
            "cod": self.cod,
            "note": self.note,
        }
        for prefix, p in (("", self.drop), ("pickup_", self.pickup)):
            if p is not None:
                out[f"{prefix}lat"], out[f"{prefix}lon"] = p.lat, p.lon
                out[f"{prefix}windows"] = ";".join(w.as_text() for w in p.windows)
                out[f"{prefix}service_s"] = p.service_s
                out[f"{prefix}address"] = p.address
        return out

    def to_json(self) -> dict[str, Any]:
        def place(p: Place | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "lat": p.lat,
                "lon": p.lon,
                "windows": [w.as_text() for w in p.windows],
                "service_s": p.service_s,
                "address": p.address,
            }

        return {
            "id": self.ref,
            "kind": self.kind,
            "drop": place(self.drop),
            "pickup": place(self.pickup),
            "weight_kg": self.weight_kg,
            "volume_m3": self.volume_m3,
            "priority": self.priority,
            "features": sorted(self.features),
            "cod": self.cod,
            "note": self.note,
        }


def clock(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _clock_value(text: str, where: str) -> int:
    text = text.strip()
    m = _CLOCK.match(text)
    if m is None:
        raise OrderError(where, f"{text[:20]!r} is not a time of day HH:MM")
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if mi > 59 or s > 59 or h > 48 or (h == 48 and (mi or s)):  # 48:00: the next day's end
        raise OrderError(where, f"{text!r} is not a time of day HH:MM (hours up to 47 for the next day)")
    return h * 3600 + mi * 60 + s


def parse_windows(value: Any, where: str) -> tuple[Window, ...]:
    """``"09:00-11:00; 14:00-16:00"``, or a list of such strings or of ``[start_s, end_s]``."""
    if value is None or value == "":
        return (Window(0, 2 * DAY_S),)
    items: Iterable[Any]
    items = [p for p in re.split(r"[;,]", value) if p.strip()] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise OrderError(where, "a list of windows HH:MM-HH:MM")
    windows: list[Window] = []
    for item in items:
        if isinstance(item, str):
            start_text, sep, end_text = item.partition("-")
            if not sep:
                raise OrderError(where, f"{item.strip()[:30]!r} is not a window HH:MM-HH:MM")
            start, end = _clock_value(start_text, where), _clock_value(end_text, where)
        elif isinstance(item, list | tuple) and len(item) == 2:
            start, end = _int(item[0], where, 0, 2 * DAY_S), _int(item[1], where, 0, 2 * DAY_S)
        else:
            raise OrderError(where, f"{str(item)[:30]!r} is not a window")
        if end < start:
            raise OrderError(where, f"time window ends before it starts ({clock(start)}-{clock(end)})")
        windows.append(Window(start, end))
    if not windows:
        raise OrderError(where, "no time window")
    if len(windows) > MAX_WINDOWS:
        raise OrderError(where, f"{len(windows)} windows, at most {MAX_WINDOWS}")
    windows.sort(key=lambda w: w.start)
    for a, b in itertools.pairwise(windows):
        if b.start < a.end:
            raise OrderError(where, f"windows {a.as_text()} and {b.as_text()} overlap")
    return tuple(windows)


def _number(value: Any, where: str, low: float, high: float, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise OrderError(where, "a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OrderError(where, f"{str(value)[:30]!r} is not a number") from None
    if not math.isfinite(number):
        raise OrderError(where, "not a finite number")
    if number < low:
        raise OrderError(where, f"{number:g} is negative" if low == 0 else f"{number:g} is below {low:g}")
    if number > high:
        raise OrderError(where, f"{number:g} is above {high:g}")
    return number


def _int(value: Any, where: str, low: int, high: int, default: int = 0) -> int:
    number = _number(value, where, low, high, default)
    if number != int(number):
        raise OrderError(where, f"{number:g} is not a whole number")
    return int(number)


def _place(fields: Mapping[str, Any], prefix: str, area: ServiceArea) -> Place:
    lat = _number(fields.get(f"{prefix}lat"), f"{prefix}lat", -90, 90, math.nan)
    lon = _number(fields.get(f"{prefix}lon"), f"{prefix}lon", -180, 180, math.nan)
    if math.isnan(lat) or math.isnan(lon):
        raise OrderError(f"{prefix}lat" if math.isnan(lat) else f"{prefix}lon", "missing")
    if not area.contains(lat, lon):
        raise OrderError(f"{prefix}lat", f"{lat:.5f},{lon:.5f} is outside the map ({area.describe()})")
    address = str(fields.get(f"{prefix}address") or "")[:200]
    return Place(
        lat=lat,
        lon=lon,
        windows=parse_windows(fields.get(f"{prefix}windows"), f"{prefix}windows"),
        service_s=_int(fields.get(f"{prefix}service_s"), f"{prefix}service_s", 0, 4 * 3600, 0),
        address=address,
    )


def parse_order(fields: Mapping[str, Any], area: ServiceArea) -> Order:
    """One order from its fields (a CSV row or an API object); raises ``OrderError``."""
    ref = str(fields.get("id") or "").strip()
    if not _REF.match(ref):
        raise OrderError(
            "id", f"{ref[:70]!r}: 1-64 of A-Z a-z 0-9 _ . : / # - (starting with a letter or digit)"
        )
    kind = str(fields.get("kind") or "delivery").strip()
    if kind not in KINDS:
        raise OrderError("kind", f"{kind[:20]!r}: one of {', '.join(KINDS)}")
    drop = _place(fields, "", area) if kind in ("delivery", "courier") else None
    pickup = _place(fields, "pickup_", area) if kind in ("pickup", "courier") else None
    if drop is not None and pickup is not None and drop.windows[-1].end < pickup.windows[0].start:
        raise OrderError("windows", "the drop-off's windows all end before the pickup can start")
    raw_features = fields.get("features") or ""
    names = (
        [f.strip() for f in re.split(r"[|;, ]", raw_features) if f.strip()]
        if isinstance(raw_features, str)
        else [str(f) for f in raw_features]
    )
    for name in names:
        if name not in FEATURES:
            raise OrderError("features", f"{name[:30]!r}: one of {', '.join(FEATURES)}")
    cod_raw = fields.get("cod")
    cod = None if cod_raw in (None, "") else _number(cod_raw, "cod", 0, 1e7, 0)
    return Order(
        ref=ref,
        kind=kind,
        drop=drop,
        pickup=pickup,
        weight_kg=_number(fields.get("weight_kg"), "weight_kg", 0, 10_000, 0),
        volume_m3=_number(fields.get("volume_m3"), "volume_m3", 0, 100, 0),
        priority=_int(fields.get("priority"), "priority", 0, 9, 0),
        features=frozenset(names),
        cod=cod,
        note=str(fields.get("note") or "")[:500],
    )
