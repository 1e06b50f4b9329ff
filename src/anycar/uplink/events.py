"""Events produced in the hub, each with the time and the position: ignition on/off, trip
start/end, a door or tailgate opened/closed, the battery falling below a threshold, harsh
braking or acceleration, another traction pack fitted (a swap station: ``pack_changed``), and what the policy logged (accessories fitted, removed, shed,
restored; refusals). Thresholds are data: ``data/events.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anycar.broker import SignalBroker
from anycar.broker.datapoint import Datapoint
from anycar.broker.subscription import Subscription
from anycar.errors import AnycarError, ConfigError
from anycar.model import paths
from anycar.policy.events import Event, EventLog
from anycar.uplink.tasks import supervised

log = logging.getLogger(__name__)
DEFAULTS = Path(__file__).with_name("data") / "events.yaml"
PACK = {  # a thresholds file without ``pack`` still gets the swappable pack's event
    "signal": "Vehicle.Powertrain.TractionBattery.Id",
    "soc": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "soh": "Vehicle.Powertrain.TractionBattery.StateOfHealth",
}
Emit = Callable[[list[dict[str, Any]]], None]

# Policy event kinds -> wire event types
POLICY_KINDS = {
    "fitted": "accessory_fitted",
    "commissioned": "accessory_fitted",
    "removed": "accessory_removed",
    "shed": "accessory_shed",
    "restore": "accessory_restored",
    "refusal": "policy_refusal",
    "fit_refused": "policy_refusal",
    "attestation_failed": "policy_refusal",
    "pairing_failed": "policy_refusal",
    "locked_out": "policy_refusal",
    "rate_limited": "policy_refusal",
    # a lamp allowed to run with the ignition off: a fleet operator wants to see it (the 12 V rail)
    "courtesy": "courtesy_lighting",
}


@dataclass
class Thresholds:
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Thresholds:
        file = path or DEFAULTS
        try:
            data = yaml.safe_load(file.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{file}: cannot read event thresholds: {exc}") from None
        need = {"ignition", "trip", "soc", "harsh", "doors", "tailgates", "position"}
        if not isinstance(data, dict) or not need <= set(data):
            raise ConfigError(f"{file}: event thresholds need {sorted(need)}")
        return cls(data)


@dataclass
class _Trip:
    started: float
    start_distance: float | None
    max_speed: float = 0.0
    stopped_since: float | None = None


@dataclass
class EventDetector:
    broker: SignalBroker
    emit: Emit
    thresholds: Thresholds = field(default_factory=Thresholds.load)
    clock: Callable[[], float] = time.time
    values: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.thresholds.data
        self._ignition_path = t["ignition"]["signal"]
        self._ignition_on = set(t["ignition"]["on_states"])
        self._speed = t["trip"]["speed"]
        self._distance = t["trip"]["distance"]
        self._soc = t["soc"]["signal"]
        self._harsh = t["harsh"]["signal"]
        self._lat, self._lon = t["position"]
        self._pack = {**PACK, **(t.get("pack") or {})}
        self._ignition: bool | None = None
        self._trip: _Trip | None = None
        self._soc_armed = {float(p): True for p in t["soc"]["below_percent"]}
        self._last_harsh: float | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._policy: EventLog | None = None

    def _patterns(self) -> list[str]:
        t = self.thresholds.data
        singles = [
            self._ignition_path,
            self._speed,
            self._distance,
            self._soc,
            self._harsh,
            self._lat,
            self._lon,
            self._pack["signal"],
            self._pack["soh"],
        ]
        return [*singles, *t["doors"], *t["tailgates"]]

    async def start(self, policy_events: EventLog | None = None) -> None:
        patterns = [p for p in self._patterns() if self.broker.catalog.match(p)]
        if patterns:
            try:
                self._sub = self.broker.subscribe(patterns, name="uplink:events")
            except AnycarError as exc:
                raise ConfigError(f"uplink events: {exc}") from None
            self.apply(self._sub.drain(), initial=True)
            self._task = asyncio.create_task(
                supervised(self._run, "events", self.crashes), name="uplink-events"
            )
        if policy_events is not None:
            self._policy = policy_events
            policy_events.add_listener(self._on_policy)

    async def stop(self) -> None:
        self._policy = None  # the log keeps its listener list; a stopped detector ignores it
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        assert self._sub is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        while True:
            batch = await self._sub.get(timeout=1.0)
            if self._sub.closed:
                return
            self.apply(batch)

    # -- detection -----------------------------------------------------------------------------
    def position(self) -> dict[str, float] | None:
        lat, lon = self.values.get(self._lat), self.values.get(self._lon)
        if (
            isinstance(lat, (int, float))
            and isinstance(lon, (int, float))
            and -90 <= lat <= 90
            and -180 <= lon <= 180
        ):
            return {"lat": float(lat), "lon": float(lon)}
        return None

    def _event(
        self, kind: str, ts: float, subject: str = "", message: str = "", **data: Any
    ) -> dict[str, Any]:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        out: dict[str, Any] = {"type": kind, "ts": ts, "position": self.position()}
        if subject:
            out["subject"] = subject[:1024]
        if message:
            out["message"] = message[:4096]
        if data:
            out["data"] = {k: v for k, v in list(data.items())[:64]}
        return out

    def apply(self, batch: list[Datapoint], *, initial: bool = False) -> None:
        """New values in; events out (an initial snapshot sets the state without events)."""
        out: list[dict[str, Any]] = []
        t = self.thresholds.data
        for dp in batch:
            old = self.values.get(dp.path)
            self.values[dp.path] = dp.value
            if dp.value is None:
                continue
            ts = dp.timestamp
            if dp.path == self._ignition_path:
                on = str(dp.value) in self._ignition_on
                if self._ignition is not None and on != self._ignition and not initial:
                    out.append(self._event("ignition_on" if on else "ignition_off", ts, state=str(dp.value)))
                    if not on and self._trip is not None:
                        out.append(self._end_trip(ts, "ignition off"))
                self._ignition = on
            elif dp.path == self._speed and isinstance(dp.value, (int, float)):
                out.extend(self._on_speed(float(dp.value), ts, initial))
            elif dp.path == self._soc and isinstance(dp.value, (int, float)) and not initial:
                for level, armed in self._soc_armed.items():
                    if armed and dp.value < level and (old is None or old >= level):
                        self._soc_armed[level] = False
                        out.append(
                            self._event(
                                "low_soc",
                                ts,
                                message=f"state of charge below {level:g} %",
                                threshold=level,
                                soc=dp.value,
                            )
                        )
                    elif not armed and dp.value >= level + t["soc"]["hysteresis_percent"]:
                        self._soc_armed[level] = True
            elif dp.path == self._pack["signal"] and isinstance(dp.value, str) and not initial:
                if old != dp.value:  # another pack (or the first word of it): the fleet reconciles it
                    soc, soh = self.values.get(self._pack["soc"]), self.values.get(self._pack["soh"])
                    out.append(
                        self._event(
                            "pack_changed",
                            ts,
                            subject=dp.value,
                            message=f"traction pack {dp.value} fitted (was {old})"
                            if isinstance(old, str)
                            else f"traction pack {dp.value} reported",
                            serial=dp.value,
                            previous=old if isinstance(old, str) else None,
                            soc=soc if isinstance(soc, (int, float)) else None,
                            soh=soh if isinstance(soh, (int, float)) else None,
                        )
                    )
            elif dp.path == self._harsh and isinstance(dp.value, (int, float)) and not initial:
                h = t["harsh"]
                kind = (
                    "harsh_braking"
                    if dp.value <= h["braking_mps2"]
                    else "harsh_acceleration"
                    if dp.value >= h["acceleration_mps2"]
                    else None
                )
                if kind and (
                    self._last_harsh is None
                    or ts - self._last_harsh >= h["min_interval_s"]
                    or ts < self._last_harsh
                ):
                    self._last_harsh = ts
                    out.append(self._event(kind, ts, acceleration_mps2=dp.value))
            elif isinstance(dp.value, bool) and old is not None and old != dp.value and not initial:
                if any(paths.matches(p, dp.path) for p in t["tailgates"]):
                    out.append(
                        self._event("tailgate_opened" if dp.value else "tailgate_closed", ts, subject=dp.path)
                    )
                elif any(paths.matches(p, dp.path) for p in t["doors"]):
                    out.append(self._event("door_opened" if dp.value else "door_closed", ts, subject=dp.path))
        if self._trip is not None and self._trip.stopped_since is not None:
            now = self.clock()
            if now - self._trip.stopped_since >= t["trip"]["end_stopped_s"]:
                out.append(self._end_trip(now, "stood still"))
        if out:
            self.emit(out)

    def _on_speed(self, speed: float, ts: float, initial: bool) -> list[dict[str, Any]]:
        trip = self._trip
        t = self.thresholds.data["trip"]
        if trip is None:
            if speed >= t["start_kmh"] and self._ignition is not False and not initial:
                dist = self.values.get(self._distance)
                self._trip = _Trip(ts, float(dist) if isinstance(dist, (int, float)) else None, speed)
                return [self._event("trip_start", ts, speed=speed)]
            return []
        trip.max_speed = max(trip.max_speed, speed)
        if speed < 1.0:
            trip.stopped_since = trip.stopped_since or ts
        else:
            trip.stopped_since = None
        return []

    def _end_trip(self, ts: float, why: str) -> dict[str, Any]:
        trip = self._trip
        assert trip is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        self._trip = None
        dist = self.values.get(self._distance)
        km = None
        if trip.start_distance is not None and isinstance(dist, (int, float)):
            km = round((float(dist) - trip.start_distance) / 1000, 3)  # VSS TraveledDistance is in m
        return self._event(
            "trip_end",
            ts,
            message=f"trip ended: {why}",
            duration_s=round(max(0.0, ts - trip.started), 1),
            max_speed_kmh=round(trip.max_speed, 1),
            distance_km=km,
        )

    def _on_policy(self, event: Event) -> None:
        if self._policy is None:
            return
        kind = POLICY_KINDS.get(event.kind)
        if kind is None:
            return
        data = {k: v for k, v in event.data.items() if isinstance(v, (str, int, float, bool)) or v is None}
        try:
            self.emit([self._event(kind, event.ts, subject=event.subject, message=event.message, **data)])
        except Exception:  # the policy's log must never fail because the uplink could not take it
            self.crashes["policy listener"] = self.crashes.get("policy listener", 0) + 1
            log.exception("uplink: a policy event could not be spooled")
