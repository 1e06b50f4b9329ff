"""The domain handlers' runner: after each committed batch, derive the touched vehicles.

``Store.after_commit`` calls ``on_commit`` in the committing thread; it only merges "vehicle V
has new data from time T" into a pending map (one entry per vehicle, so it is bounded by the
fleet's size and never blocks the ingest) and wakes the runner. The runner (a fleet component,
``start()``/``stop()``) derives each pending vehicle in its own transaction off the event loop
(``anycar.fleet.derive``), turns the hubs' events into alerts by the tenant's rules, then pushes
alerts, geofence events and closed trips to the live feed and the webhooks. Passes start at most
every ``derive_min_interval_s`` (trips.yaml, default 1 s): one pass covers all the commits of
that time, so a vehicle sending many messages a second costs one pass, not one per batch, and
an alert is raised up to that much later (domain-speed). A vehicle whose
pass fails stays pending and is retried with backoff; a crash of the runner itself is logged,
counted and the runner restarted: never silently dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db
from anycar.fleet.alerting import hub_event_alert, hub_key
from anycar.fleet.derive import NEW, Derived, VehicleInfo, derive_vehicle
from anycar.fleet.domain_tables import alerts, derive_cursors, geofences
from anycar.fleet.geofences import Fence, fence_of
from anycar.fleet.live import LiveFeed
from anycar.fleet.rules import effective
from anycar.fleet.store import Store, Stored
from anycar.fleet.tasks import stop_task
from anycar.fleet.trips import TripConfig, load_trip_config

log = logging.getLogger("anycar.fleet.domain")


class Notifier(Protocol):
    def submit(self, tenant_id: int, kind: str, item: dict[str, Any]) -> None: ...


@dataclass
class DomainStats:
    passes: int = 0
    vehicles: int = 0
    samples: int = 0
    alerts: int = 0
    geofence_events: int = 0
    trips: int = 0
    rederived: int = 0
    late_skipped: int = 0
    already_derived: int = 0
    unchanged: int = 0  # vehicle passes that found nothing after the cursor (fleet-domain, session 6)
    errors: int = 0
    crashes: int = 0
    last_error: str = ""


@dataclass(slots=True)
class Outcome:
    """One run over the pending vehicles."""

    derived: list[Derived] = field(default_factory=list)
    hub_alerts: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for d in self.derived for a in d.alerts] + self.hub_alerts

    @property
    def withdrawn(self) -> list[dict[str, Any]]:
        """Alerts that late data showed false (fleet-domain)."""
        return [a for d in self.derived for a in d.withdrawn]


def tenant_fences(engine_conn: Any, tenant_id: int) -> list[Fence]:
    rows = engine_conn.execute(select(geofences).where(geofences.c.tenant_id == tenant_id))
    return [fence_of(r) for r in rows]


class DomainPipeline:
    name = "domain"

    def __init__(
        self,
        store: Store,
        *,
        live: LiveFeed | None = None,
        notifier: Notifier | None = None,
        cfg: TripConfig | None = None,
        tenant_cache_s: float = 2.0,
    ) -> None:
        self.engine: Engine = store.engine
        self.live = live
        self.notifier = notifier
        self.cfg = cfg or load_trip_config()
        self.stats = DomainStats()
        # a tenant's rules and geofences, reused for tenant_cache_s (a change applies within it)
        self.tenant_cache_s = tenant_cache_s
        self._tenants: dict[int, tuple[float, dict[str, Any], list[Fence]]] = {}
        self._info: dict[int, VehicleInfo] = {}
        self._pending: dict[int, tuple[int, float]] = {}
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        store.after_commit.append(self.on_commit)

    # ---- the hook ---------------------------------------------------------------------------
    def on_commit(self, stored: Stored) -> None:
        """Called after every committed batch, in the committing thread; never blocks."""
        if not stored.touched and not stored.events:
            return
        with self._lock:
            for vid, (tid, ts) in stored.touched.items():
                was = self._pending.get(vid)
                self._pending[vid] = (tid, ts if was is None else min(was[1], ts))
            self._events.extend(e for e in stored.events if e.get("type") is not None)
            if len(self._events) > 100_000:  # runner far behind: keep the newest
                del self._events[: len(self._events) - 100_000]
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # loop closed while stopping
                self._loop.call_soon_threadsafe(self._wake.set)

    # ---- one run (sync: the runner calls it in a thread; tests and the CLI directly) --------
    def run_pending(self) -> Outcome:
        with self._run_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                events, self._events = self._events, []
            outcome = Outcome()
            if not pending and not events:
                return outcome
            self.stats.passes += 1
            info = self._vehicles({*pending, *(e["vehicle_id"] for e in events)})
            rules_cache: dict[int, dict[str, Any]] = {}
            fences_cache: dict[int, list[Fence]] = {}
            cursors: dict[int, float] = {}  # where each derived vehicle's stream was before this pass
            now = time.monotonic()
            for tid, (at, r, f) in list(self._tenants.items()):
                if now - at < self.tenant_cache_s:
                    rules_cache[tid], fences_cache[tid] = r, f
                else:
                    del self._tenants[tid]
            self._derive_all(pending, info, rules_cache, fences_cache, cursors, outcome)
            if events:
                try:
                    outcome.hub_alerts = self._hub_alerts(events, info, rules_cache, cursors)
                    self.stats.alerts += len(outcome.hub_alerts)
                except Exception as exc:
                    with self._lock:
                        self._events[:0] = events
                    self.stats.errors += 1
                    self.stats.last_error = f"hub events: {type(exc).__name__}: {str(exc)[:200]}"
                    log.warning("domain: %s; retrying", self.stats.last_error)
                    outcome.failed += 1
            return outcome

    def _derive_all(
        self,
        pending: dict[int, tuple[int, float]],
        info: dict[int, VehicleInfo],
        rules_cache: dict[int, dict[str, Any]],
        fences_cache: dict[int, list[Fence]],
        cursors: dict[int, float],
        outcome: Outcome,
    ) -> None:
        """Each pending vehicle derived in its own transaction, all on one connection (a
        vehicle that fails is retried alone; checking a pooled connection out and back in for
        each vehicle cost as much CPU as a statement, domain-pass); after a failure, a fresh
        connection for the rest."""
        conn: Connection | None = None
        try:
            for vid, (tid, from_ts) in sorted(pending.items()):
                v = info.get(vid)
                if v is None:
                    continue
                try:
                    if conn is None:
                        conn = self.engine.connect()
                    with conn.begin():
                        if tid not in rules_cache or tid not in fences_cache:
                            rules_cache[tid] = effective(conn, tid)
                            fences_cache[tid] = tenant_fences(conn, tid)
                            self._tenants[tid] = (time.monotonic(), rules_cache[tid], fences_cache[tid])
                        d = derive_vehicle(conn, v, from_ts, self.cfg, rules_cache[tid], fences_cache[tid])
                except Exception as exc:
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                        conn = None
                    self._failed(vid, tid, from_ts, exc)
                    outcome.failed += 1
                    continue
                outcome.derived.append(d)
                cursors[vid] = d.cursor_was
                s = self.stats
                s.vehicles += 1
                s.samples += d.samples
                s.alerts += len(d.alerts)
                s.geofence_events += len(d.geofence_events)
                s.trips += len(d.trips)
                s.rederived += d.rederived
                s.late_skipped += d.late_skipped
                s.already_derived += d.already_derived
                s.unchanged += d.unchanged
        finally:
            if conn is not None:
                conn.close()

    def rederive(self, vehicle_ids: list[int]) -> int:
        """Trips and stops of these vehicles derived again from their first sample (after
        trips.yaml changed); returns how many vehicles. Alerts are not raised again."""
        done = 0
        with self._run_lock:
            for _, v in sorted(self._vehicles(set(vehicle_ids)).items()):
                with self.engine.begin() as conn:
                    rules_now, fences = effective(conn, v.tenant_id), tenant_fences(conn, v.tenant_id)
                    derive_vehicle(conn, v, 0.0, self.cfg, rules_now, fences, everything=True)
                done += 1
        return done

    def _failed(self, vid: int, tid: int, from_ts: float, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"vehicle {vid}: {type(exc).__name__}: {str(exc)[:200]}"
        log.warning("domain: %s; retrying", self.stats.last_error)
        with self._lock:
            was = self._pending.get(vid)
            self._pending[vid] = (tid, from_ts if was is None else min(was[1], from_ts))

    def _vehicles(self, ids: set[int]) -> dict[int, VehicleInfo]:
        """Tenant, wire id and brand of each vehicle (they do not change: kept once read)."""
        missing = sorted(i for i in ids if i not in self._info)
        if missing:
            v = db.vehicles.c
            with self.engine.connect() as conn:
                rows = conn.execute(select(v.id, v.tenant_id, v.wire_id, v.brand).where(v.id.in_(missing)))
                for r in rows:
                    self._info[r.id] = VehicleInfo(r.id, r.tenant_id, r.wire_id, r.brand)
            if len(self._info) > 1_000_000:
                self._info.clear()
        return {i: self._info[i] for i in ids if i in self._info}

    def forget_tenant(self, tenant_id: int) -> None:
        """Its rules or geofences changed: read them again on the next pass."""
        self._tenants.pop(tenant_id, None)

    def _hub_alerts(
        self,
        events: list[dict[str, Any]],
        info: dict[int, VehicleInfo],
        rules_cache: dict[int, dict[str, Any]],
        cursors: dict[int, float],
    ) -> list[dict[str, Any]]:
        """The alerts of the hubs' events. Not evaluated again on late data (the hub judged
        them on its own in-order data; one event is one alert, order cannot change them), but:
        ``late`` when the vehicle's stream had been derived past the event before this pass,
        and an event already alerted (same vehicle, type, subject and time: a resent spool)
        raises nothing (fleet-domain, session 6)."""
        out: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            todo: list[tuple[VehicleInfo, dict[str, Any]]] = []
            for e in events:
                v = info.get(e["vehicle_id"])
                if v is None:
                    continue
                if v.tenant_id not in rules_cache:
                    rules_cache[v.tenant_id] = effective(conn, v.tenant_id)
                a = hub_event_alert(rules_cache[v.tenant_id], e)
                if a is not None:
                    todo.append((v, a))
            if not todo:
                return out
            vids = sorted({v.id for v, _ in todo})
            missing = [i for i in vids if i not in cursors]
            if missing:
                c = derive_cursors.c
                rows = conn.execute(select(c.vehicle_id, c.until_ts).where(c.vehicle_id.in_(missing)))
                cursors = {**cursors, **{r.vehicle_id: float(r.until_ts) for r in rows}}
            seen = _alerted(conn, vids, [a for _, a in todo])
            for v, a in todo:
                key = (v.id, *hub_key(a))
                if key in seen:
                    continue
                seen.add(key)
                was = cursors.get(v.id, NEW)
                row = {
                    "tenant_id": v.tenant_id,
                    "vehicle_id": v.id,
                    **a,
                    "late": was != NEW and a["ts"] <= was,
                    "raised_ts": time.time(),
                }
                key_id = conn.execute(insert(alerts).values(**row).returning(alerts.c.id)).scalar_one()
                out.append({"id": int(key_id), "vehicle": v.wire_id, **row})
        return out

    # ---- pushing what came out -------------------------------------------------------------
    @staticmethod
    def items(outcome: Outcome) -> dict[str, list[dict[str, Any]]]:
        """Per kind, ``{"tenant_id": T, KIND: {...}}``: the feed and the webhooks send
        ``{"type": KIND, KIND: {...}}`` (an alert's own ``type`` stays inside)."""
        return {
            "alert": [wrap("alert", a) for a in outcome.alerts],
            "alert_withdrawn": [wrap("alert_withdrawn", a) for a in outcome.withdrawn],
            "geofence": [wrap("geofence", e) for d in outcome.derived for e in d.geofence_events],
            "trip": [wrap("trip", t) for d in outcome.derived for t in d.trips],
        }

    def notify(self, outcome: Outcome) -> None:
        """Off the loop: hand alerts and geofence events to the webhooks (a queue put each)."""
        if self.notifier is None:
            return
        for kind, rows in self.items(outcome).items():
            if kind != "trip":
                for row in rows:
                    self.notifier.submit(row["tenant_id"], kind, row)

    def publish(self, outcome: Outcome) -> None:
        """On the event loop: the live feed (never waits)."""
        if self.live is None:
            return
        for kind, rows in self.items(outcome).items():
            if rows:
                self.live.publish(kind, rows)

    # ---- the component ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name="fleet-domain")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._loop = None

    async def _supervise(self) -> None:
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.crashes += 1
                self.stats.last_error = f"runner: {type(exc).__name__}: {exc}"
                log.exception("the domain runner failed; restarting it")
                await asyncio.sleep(1.0)

    async def _run(self) -> None:
        if self._wake is None:
            raise RuntimeError("domain runner: start() first")
        delay = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            began = time.monotonic()
            outcome = await asyncio.to_thread(self.run_pending)
            self.publish(outcome)
            await asyncio.to_thread(self.notify, outcome)
            if outcome.failed:
                await asyncio.sleep(delay)  # the database is down or refused: back off, retry
                delay = min(delay * 2, 10.0)
                self._wake.set()
            else:
                delay = 0.5
                # coalesce (domain-speed): the commits of the next min interval wait for one pass
                rest = self.cfg.derive_min_interval_s - (time.monotonic() - began)
                if rest > 0:
                    await asyncio.sleep(rest)

    def status(self) -> dict[str, Any]:
        with self._lock:
            pending = len(self._pending)
        return {
            "pending": pending,
            "running": self._task is not None and not self._task.done(),
            **vars(self.stats),
        }


def _alerted(conn: Connection, vids: list[int], made: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(vehicle, type, subject, time) of the hub alerts already stored among those ``made``
    could repeat: one indexed read over their types and time range."""
    a = alerts.c
    rows = conn.execute(
        select(a.vehicle_id, a.type, a.ts, a.data).where(
            a.vehicle_id.in_(vids),
            a.type.in_(sorted({m["type"] for m in made})),
            a.ts >= min(m["ts"] for m in made),
            a.ts <= max(m["ts"] for m in made),
        )
    )
    out: set[tuple[Any, ...]] = set()
    for r in rows:
        row = {"type": r.type, "ts": r.ts, "data": r.data}
        if (r.data or {}).get("source") == "hub":
            out.add((r.vehicle_id, *hub_key(row)))
    return out


def wrap(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in row.items() if k not in ("tenant_id", "vehicle_id")}
    if kind in ("alert", "alert_withdrawn"):
        body.setdefault("ack_ts", None)
        body.setdefault("cleared_ts", None)
    return {"tenant_id": row["tenant_id"], kind: body}
