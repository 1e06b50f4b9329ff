"""The cloud's rules over one vehicle's stream: low SoC, speeding per zone, cargo temperature out
of range, a door open while moving; and which hub events raise an alert.

``CloudRules`` is pure like the trip segmenter: samples in (time order), alerts out, its state
a JSON-able dict kept in the vehicle's derivation cursor, so an alert is raised once per
episode (SoC with hysteresis, speeding re-armed after ``rearm_s`` under the limit or on leaving
the zone, a door once per opening, a cargo sensor once per excursion) even across batches and
restarts.

``changed`` is set whenever the state changes (by value), so the derivation can keep the state at
each change (``anycar.fleet.latealerts``) and evaluate a late sample from the state of its time.
"""

from __future__ import annotations

from typing import Any

from anycar.fleet.geofences import Fence
from anycar.fleet.rules import matches


def alert(
    ts: float, type_: str, severity: str, message: str, data: dict[str, Any], lat: Any, lon: Any
) -> dict[str, Any]:
    return {
        "ts": ts,
        "type": type_,
        "severity": severity,
        "message": message[:1000],
        "data": data,
        "lat": lat,
        "lon": lon,
    }


class CloudRules:
    def __init__(self, rules: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        self.rules = rules
        self.s: dict[str, Any] = state or {"soc_low": False, "speeding": {}, "cargo": {}, "doors": {}}
        self.out: list[dict[str, Any]] = []
        self.changed = False

    def _where(self, ctx: dict[str, Any]) -> tuple[Any, Any]:
        return ctx.get("lat"), ctx.get("lon")

    def soc(self, ts: float, soc: float, ctx: dict[str, Any]) -> None:
        r = self.rules["low_soc"]
        if not r["enabled"]:
            return
        if not self.s["soc_low"] and soc < r["below_percent"]:
            self.s["soc_low"] = self.changed = True
            self.out.append(
                alert(
                    ts,
                    "low_soc",
                    r["severity"],
                    f"state of charge {soc:.1f} % below {r['below_percent']} %",
                    {"soc": soc, "below_percent": r["below_percent"]},
                    *self._where(ctx),
                )
            )
        elif self.s["soc_low"] and soc > r["below_percent"] + r["hysteresis_percent"]:
            self.s["soc_low"] = False
            self.changed = True

    def speed(self, ts: float, speed: float, zones: list[Fence], ctx: dict[str, Any]) -> None:
        r = self.rules["speeding"]
        if not r["enabled"]:
            return
        limits = {str(z.id): (z.speed_limit_kmh, z.name) for z in zones if z.speed_limit_kmh is not None}
        if not limits and r["default_limit_kmh"] is not None:
            limits["default"] = (float(r["default_limit_kmh"]), "everywhere")
        state: dict[str, Any] = self.s["speeding"]
        for key in [k for k in state if k not in limits]:
            del state[key]  # left the zone: re-armed
            self.changed = True
        for key, (limit, name) in limits.items():
            if key not in state:
                state[key] = {"alerted": False, "under_since": None}
                self.changed = True
            entry = state[key]
            if speed > limit + r["tolerance_kmh"]:
                if entry["under_since"] is not None:
                    entry["under_since"] = None
                    self.changed = True
                if not entry["alerted"]:
                    entry["alerted"] = self.changed = True
                    self.out.append(
                        alert(
                            ts,
                            "speeding",
                            r["severity"],
                            f"{speed:.0f} km/h where the limit is {limit:.0f} km/h ({name})",
                            {"speed_kmh": speed, "limit_kmh": limit, "zone": name, "geofence": key},
                            *self._where(ctx),
                        )
                    )
            elif entry["alerted"] and speed <= limit:
                if entry["under_since"] is None:
                    entry["under_since"] = ts
                    self.changed = True
                elif ts - entry["under_since"] >= r["rearm_s"]:
                    entry.update(alerted=False, under_since=None)
                    self.changed = True

    def signal(self, ts: float, path: str, value: Any, ctx: dict[str, Any]) -> None:
        cargo = self.rules["cargo_temperature"]
        if cargo["enabled"] and matches(path, cargo["signals"]) and isinstance(value, int | float):
            out_of_range = not cargo["min_c"] <= value <= cargo["max_c"]
            was = self.s["cargo"].get(path, False)
            if out_of_range and not was:
                self.out.append(
                    alert(
                        ts,
                        "cargo_temperature",
                        cargo["severity"],
                        f"{path} at {value:.1f} °C, outside {cargo['min_c']}..{cargo['max_c']} °C",
                        {"path": path, "value": value, "min_c": cargo["min_c"], "max_c": cargo["max_c"]},
                        *self._where(ctx),
                    )
                )
            if self.s["cargo"].get(path) != out_of_range:
                self.s["cargo"][path] = out_of_range
                self.changed = True
        doors = self.rules["door_open_moving"]
        if doors["enabled"] and matches(path, doors["signals"]) and isinstance(value, bool):
            if not value:
                if self.s["doors"].pop(path, None) is not None:
                    self.changed = True
            elif path not in self.s["doors"]:
                self.s["doors"][path] = False
                self.changed = True
            self.check_doors(ts, ctx)

    def check_doors(self, ts: float, ctx: dict[str, Any]) -> None:
        doors = self.rules["door_open_moving"]
        speed = ctx.get("speed") or 0.0
        if not doors["enabled"] or speed < doors["min_kmh"]:
            return
        for path, alerted in list(self.s["doors"].items()):
            if not alerted:
                self.s["doors"][path] = self.changed = True
                self.out.append(
                    alert(
                        ts,
                        "door_open_moving",
                        doors["severity"],
                        f"{path} open at {speed:.0f} km/h",
                        {"path": path, "speed_kmh": speed},
                        *self._where(ctx),
                    )
                )


RULE_TYPES = ("low_soc", "speeding", "cargo_temperature", "door_open_moving")


def subject(a: dict[str, Any]) -> str:
    """What a rule's alert is about besides its type: the zone of a speeding, the signal of a
    cargo or door alert (one vehicle has one episode of each at a time)."""
    data = a.get("data") or {}
    return str(data.get("geofence") or data.get("path") or "")


def hub_event_alert(rules: dict[str, Any], event: dict[str, Any]) -> dict[str, Any] | None:
    """The alert a hub event raises under the tenant's rules, or None."""
    severity = rules["hub_events"].get(event["type"])
    if severity is None:
        return None
    subject = event.get("subject")
    message = event.get("message") or event["type"].replace("_", " ")
    return alert(
        event["ts"],
        event["type"],
        severity,
        f"{message}" + (f" ({subject})" if subject else ""),
        {"source": "hub", "subject": subject, "data": event.get("data")},
        event.get("lat"),
        event.get("lon"),
    )


def hub_key(a: dict[str, Any]) -> tuple[str, str, float]:
    """What makes a hub's alert the same one again (a resent event): type, subject, time."""
    return a["type"], str((a.get("data") or {}).get("subject") or ""), round(float(a["ts"]), 6)
