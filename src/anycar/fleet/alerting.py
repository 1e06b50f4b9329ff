"""The cloud's rules over one vehicle's stream: low SoC, speeding per zone, cargo temperature out
of range, a door open while moving; and which hub events raise an alert.

``CloudRules`` is pure like the trip segmenter: samples in (time order), alerts out, its state
a JSON-able dict kept in the vehicle's derivation cursor, so an alert is raised once per
episode (SoC with hysteresis, speeding re-armed after ``rearm_s`` under the limit or on leaving
the zone, a door once per opening, a cargo sensor once per excursion) even across batches and
restarts.
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

    def _where(self, ctx: dict[str, Any]) -> tuple[Any, Any]:
        return ctx.get("lat"), ctx.get("lon")

    def soc(self, ts: float, soc: float, ctx: dict[str, Any]) -> None:
        r = self.rules["low_soc"]
        if not r["enabled"]:
            return
        if not self.s["soc_low"] and soc < r["below_percent"]:
            self.s["soc_low"] = True
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
        for key, (limit, name) in limits.items():
            entry = state.setdefault(key, {"alerted": False, "under_since": None})
            if speed > limit + r["tolerance_kmh"]:
                entry["under_since"] = None
                if not entry["alerted"]:
                    entry["alerted"] = True
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
                elif ts - entry["under_since"] >= r["rearm_s"]:
                    entry.update(alerted=False, under_since=None)

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
            self.s["cargo"][path] = out_of_range
        doors = self.rules["door_open_moving"]
        if doors["enabled"] and matches(path, doors["signals"]) and isinstance(value, bool):
            if not value:
                self.s["doors"].pop(path, None)
            else:
                self.s["doors"].setdefault(path, False)
            self.check_doors(ts, ctx)

    def check_doors(self, ts: float, ctx: dict[str, Any]) -> None:
        doors = self.rules["door_open_moving"]
        speed = ctx.get("speed") or 0.0
        if not doors["enabled"] or speed < doors["min_kmh"]:
            return
        for path, alerted in list(self.s["doors"].items()):
            if not alerted:
                self.s["doors"][path] = True
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
