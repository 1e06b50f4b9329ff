"""The periodic checker: a vehicle silent for the tenant's ``offline.after_minutes`` raises an
``offline`` alert (once), cleared when it is heard again.

A fleet component (``start()``/``stop()``) running ``check`` every ``interval_s`` off the event
loop. Supervised: a failing check is logged and counted and the next one runs on time; if the
task itself dies it is logged and started again, so the checker is never silently dead
(``status()`` says how often it crashed and when it last ran).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.fleet.alerting import alert
from anycar.fleet.domain import Notifier, wrap
from anycar.fleet.domain_tables import alerts
from anycar.fleet.live import LiveFeed
from anycar.fleet.rules import effective
from anycar.fleet.tasks import stop_task

log = logging.getLogger("anycar.fleet.offline")


@dataclass
class CheckerStats:
    runs: int = 0
    failures: int = 0
    crashes: int = 0
    raised: int = 0
    cleared: int = 0
    skipped: int = 0  # rounds another process was checking (PostgreSQL's advisory lock)
    last_run: float = 0.0
    last_error: str = ""


# pg_try_advisory_xact_lock key of the offline check ("anyo"): with several API processes on one
# PostgreSQL, one of them checks in a round and the others skip it, so an alert is raised once
# (ingest-speed; without it two processes reading "no open alert" at once both raised one)
LOCK = 0x616E_796F


class Busy(Exception):
    """Another process is running this round's check (PostgreSQL): nothing to do here."""


def check(engine: Engine, now: float | None = None) -> list[dict[str, Any]]:
    """Raise and clear offline alerts for every tenant; returns the new alerts. On PostgreSQL
    raises ``Busy`` when another process holds this round (its alerts are its to announce)."""
    now = time.time() if now is None else now
    v, a = db.vehicles.c, alerts.c
    raised: list[dict[str, Any]] = []
    with engine.begin() as conn:
        if (
            engine.dialect.name == "postgresql"
            and not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK}).scalar()
        ):
            raise Busy()  # released at its commit; the next round that finds it free runs
        tenants = [r.id for r in conn.execute(select(db.tenants.c.id))]
        for tid in tenants:
            rule = effective(conn, tid)["offline"]
            open_rows = {
                r.vehicle_id: r
                for r in conn.execute(
                    select(a.id, a.vehicle_id, a.ts, a.data).where(
                        a.tenant_id == tid, a.type == "offline", a.cleared_ts.is_(None)
                    )
                )
            }
            cutoff = now - float(rule["after_minutes"]) * 60
            for r in conn.execute(
                select(v.id, v.wire_id, v.last_seen, v.last_lat, v.last_lon).where(
                    v.tenant_id == tid, v.revoked.is_(False), v.last_seen.is_not(None)
                )
            ):
                was = open_rows.get(r.id)
                heard_then = (was.data or {}).get("last_seen", was.ts) if was is not None else None
                if was is not None and r.last_seen > heard_then:  # heard from again since
                    conn.execute(update(alerts).where(a.id == was.id).values(cleared_ts=r.last_seen))
                    continue
                if was is None and rule["enabled"] and r.last_seen < cutoff:
                    minutes = (now - r.last_seen) / 60
                    row = {
                        "tenant_id": tid,
                        "vehicle_id": r.id,
                        **alert(
                            now,
                            "offline",
                            rule["severity"],
                            f"no message for {minutes:.0f} min (limit {rule['after_minutes']} min)",
                            {"last_seen": r.last_seen, "after_minutes": rule["after_minutes"]},
                            r.last_lat,
                            r.last_lon,
                        ),
                        "raised_ts": now,
                    }
                    key = conn.execute(insert(alerts).values(**row).returning(a.id)).scalar_one()
                    raised.append(
                        {"id": int(key), "vehicle": r.wire_id, **row, "ack_ts": None, "cleared_ts": None}
                    )
    return raised


class OfflineChecker:
    name = "offline"

    def __init__(
        self,
        engine: Engine,
        *,
        interval_s: float = 30.0,
        live: LiveFeed | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.live = live
        self.notifier = notifier
        self.stats = CheckerStats()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="fleet-offline")
        self._task.add_done_callback(self._died)

    def _died(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        self.stats.crashes += 1
        exc: BaseException | None = asyncio.CancelledError() if task.cancelled() else task.exception()
        self.stats.last_error = f"checker task died: {type(exc).__name__}: {exc}"
        log.error("the offline checker died (%s); restarting it", exc)
        self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        await stop_task(self._task)
        self._task = None

    async def run_once(self) -> list[dict[str, Any]]:
        try:
            raised = await asyncio.to_thread(check, self.engine)
        except Busy:
            self.stats.skipped += 1
            return []
        self.stats.runs += 1
        self.stats.raised += len(raised)
        self.stats.last_run = time.time()
        if raised and self.live is not None:
            self.live.publish("alert", [wrap("alert", r) for r in raised])
        if raised and self.notifier is not None:
            await asyncio.to_thread(self._notify, raised)
        return raised

    def _notify(self, raised: list[dict[str, Any]]) -> None:
        if self.notifier is not None:
            for r in raised:
                self.notifier.submit(r["tenant_id"], "alert", wrap("alert", r))

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the database is down: the next run is on time
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("offline check failed: %s", self.stats.last_error)
            await asyncio.sleep(self.interval_s)

    def status(self) -> dict[str, Any]:
        return {"running": self._task is not None and not self._task.done(), **vars(self.stats)}
