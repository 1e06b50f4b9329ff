"""What the station said against what the vehicle says: the pack a vehicle carries after a swap.

A station's BatteryOut names the charged pack it handed to the vehicle (BatteryIn the vehicle's
old pack it took). The vehicle's hub reports its own pack: ``Vehicle.Powertrain.TractionBattery.Id``
in its telemetry and a ``pack_changed`` event when the serial changes (``anycar.uplink.events``).
``PackReconciler`` puts the two side by side, on the fleet side only: it reads the events the
ingest stored (a ``Store.after_commit`` hook, registered by the fleet server, so ``anycar.fleet``
never imports this room) and the latest ``Id`` in ``signal_values``.

- the vehicle reports the pack the station handed out: the swap is ``reconciled = ok`` and the
  passport gets a ``vehicle_confirmed`` row (the pack is in that vehicle, by both accounts);
- it reports another pack: ``mismatch``, and a fleet alert ``pack_mismatch``;
- it reports nothing new within ``report_within_s`` (``data/reconcile.yaml``): ``missing``, and a
  fleet alert ``pack_not_reported``;
- outside a swap, a pack the inventory has in another vehicle or in a station's slot: a fleet
  alert ``pack_conflict`` (the inventory is not moved: one of the two accounts is wrong, and a
  person decides which);
- a serial that is not 1-50 printable characters (OCPP's serialNumber): a fleet alert
  ``pack_report_invalid`` naming what came, in one line.

Alerts go into the fleet's ``alerts`` table (the console's alert list) and to the tenant's
webhooks (``alert``), as the logistics room's proof-of-delivery exceptions do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db as fleet_db
from anycar.fleet.alerting import alert
from anycar.fleet.domain_tables import alerts
from anycar.fleet.tasks import stop_task
from anycar.swap import tables as t
from anycar.swap.policy import DATA

log = logging.getLogger("anycar.swap.reconcile")
PACK_ID = "Vehicle.Powertrain.TractionBattery.Id"
MAX_SERIAL = 50  # OCPP 2.1 BatteryData.serialNumber, and swap_packs.serial


@dataclass(frozen=True, slots=True)
class Settings:
    report_within_s: float  # after BatteryOut, the vehicle must report the new pack within this
    sweep_s: float  # how often swaps waiting for the vehicle's word are looked at


def load_settings() -> Settings:
    doc = yaml.safe_load((DATA / "reconcile.yaml").read_text(encoding="utf-8"))
    return Settings(float(doc["report_within_s"]), float(doc["sweep_s"]))


def check_serial(value: Any) -> str | None:
    """Why ``value`` is not a pack serial, or None when it is one."""
    if not isinstance(value, str):
        return f"a pack serial must be a string, got {type(value).__name__} {str(value)[:40]!r}"
    if not 0 < len(value) <= MAX_SERIAL or not value.isprintable():
        return f"a pack serial is 1-{MAX_SERIAL} printable characters, got {len(value)}: {value[:40]!r}"
    return None


class PackReconciler:
    """A fleet component: ``on_commit`` after each ingest batch, a sweep for swaps left unreported."""

    name = "swap-reconcile"

    def __init__(self, engine: Engine, notifier: Any = None, settings: Settings | None = None) -> None:
        self.engine = engine
        self.notifier = notifier  # the fleet's WebhookSender (submit(tenant, kind, item))
        self.settings = settings or load_settings()
        self.counts: dict[str, int] = {}
        self.crashes = 0
        self._task: asyncio.Task[None] | None = None

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # component -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_loop(), name="swap-reconcile")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _sweep_loop(self) -> None:
        """Never dies silently: a failed sweep is logged and counted, and the next one runs."""
        while True:
            await asyncio.sleep(self.settings.sweep_s)
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:
                self.crashes += 1
                log.exception("swap reconcile: a sweep failed (retried in %.0f s)", self.settings.sweep_s)

    # the ingest's hook -----------------------------------------------------------------------
    def on_commit(self, stored: Any) -> None:
        """``Store.after_commit``: the ``pack_changed`` events of the batch just stored."""
        for e in stored.events:
            if e.get("type") != "pack_changed":
                continue
            data = e.get("data") if isinstance(e.get("data"), dict) else {}
            serial = data.get("serial", e.get("subject"))
            self.report(
                int(e["vehicle_id"]), float(e["ts"]), serial, data.get("previous"), e.get("lat"), e.get("lon")
            )

    def report(
        self, vehicle_id: int, ts: float, serial: Any, previous: Any = None, lat: Any = None, lon: Any = None
    ) -> str:
        """The vehicle says it carries ``serial`` since ``ts``; returns what came of it."""
        with self.engine.begin() as conn:
            vehicle = self._vehicle(conn, vehicle_id)
            if vehicle is None:
                return "unknown_vehicle"
            bad = check_serial(serial)
            if bad is not None:
                self._alert(conn, vehicle, ts, "pack_report_invalid", f"vehicle {vehicle.wire_id}: {bad}",
                            {"serial": str(serial)[:60]}, lat, lon)  # fmt: skip
                return "invalid"
            sw = t.swaps.c
            swap = conn.execute(
                select(t.swaps)
                .where(sw.vehicle_id == vehicle_id, sw.pack_new.is_not(None), sw.reconciled.is_(None))
                .where(sw.state.in_(["requested", "done", "disputed"]))
                .order_by(sw.out_ts.desc())
                .limit(1)
            ).first()
            if swap is not None:
                return self._settle(conn, vehicle, swap, serial, ts, "event", previous, lat, lon)
            return self._outside_swap(conn, vehicle, serial, ts, lat, lon)

    # the sweep -------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> dict[str, int]:
        """Swaps whose new pack the vehicle has not confirmed yet: settled from the latest ``Id``
        in telemetry (a lost event), or as ``missing`` once ``report_within_s`` has passed."""
        now = time.time() if now is None else now
        done: dict[str, int] = {}
        sw, sv = t.swaps.c, fleet_db.signal_values.c
        with self.engine.begin() as conn:
            waiting = conn.execute(
                select(t.swaps)
                .where(sw.pack_new.is_not(None), sw.reconciled.is_(None), sw.out_ts.is_not(None))
                .where(sw.state.in_(["done", "disputed"]))
                .order_by(sw.out_ts)
                .limit(500)
            ).all()
            for swap in waiting:
                vehicle = self._vehicle(conn, swap.vehicle_id)
                if vehicle is None:
                    continue
                latest = conn.execute(
                    select(sv.value, sv.ts)
                    .where(sv.vehicle_id == swap.vehicle_id, sv.path == PACK_ID, sv.ts >= swap.out_ts)
                    .where(sv.batch_ts >= swap.out_ts)  # the rows' index range (ingest-store)
                    .order_by(sv.ts.desc())
                    .limit(1)
                ).first()
                late = now - float(swap.out_ts) >= self.settings.report_within_s
                if latest is not None and (latest.value == swap.pack_new or late):
                    outcome = self._settle(conn, vehicle, swap, latest.value, float(latest.ts), "telemetry")
                elif late:
                    outcome = "missing"
                    self._mark(conn, swap.id, "missing", None, now)
                    self._alert(
                        conn, vehicle, now, "pack_not_reported",
                        f"vehicle {vehicle.wire_id} has not reported pack {swap.pack_new} within "
                        f"{self.settings.report_within_s:g} s of swap {swap.id} at {swap.station_id}",
                        {"swap": swap.id, "station": swap.station_id, "expected": swap.pack_new}, None, None,
                    )  # fmt: skip
                else:
                    continue
                done[outcome] = done.get(outcome, 0) + 1
        return done

    # what is decided -------------------------------------------------------------------------
    def _settle(self, conn: Connection, vehicle: Any, swap: Any, serial: Any, ts: float, how: str,
                previous: Any = None, lat: Any = None, lon: Any = None) -> str:  # fmt: skip
        bad = check_serial(serial)
        if bad is not None:
            self._alert(conn, vehicle, ts, "pack_report_invalid", f"vehicle {vehicle.wire_id}: {bad}",
                        {"serial": str(serial)[:60], "swap": swap.id}, lat, lon)  # fmt: skip
            return "invalid"
        if serial == swap.pack_new:
            self._mark(conn, swap.id, "ok", serial, ts)
            conn.execute(
                insert(t.pack_history).values(
                    serial=serial, ts=ts, event="vehicle_confirmed", station_id=swap.station_id,
                    vehicle_id=vehicle.id, swap_id=swap.id,
                    detail=f"vehicle {vehicle.wire_id} reports it fitted ({how})",
                )
            )  # fmt: skip
            self._count("ok")
            if isinstance(previous, str) and swap.pack_old and previous != swap.pack_old:
                self._alert(
                    conn, vehicle, ts, "pack_mismatch",
                    f"swap {swap.id} at {swap.station_id}: the station took pack {swap.pack_old} in, "
                    f"but vehicle {vehicle.wire_id} had been carrying {previous}",
                    {"swap": swap.id, "station": swap.station_id, "station_in": swap.pack_old, "vehicle_had": previous},
                    lat, lon,
                )  # fmt: skip
            return "ok"
        self._mark(conn, swap.id, "mismatch", serial, ts)
        self._history_claim(
            conn, serial, ts, vehicle, swap.id, f"vehicle {vehicle.wire_id} reports it ({how})"
        )
        self._alert(
            conn, vehicle, ts, "pack_mismatch",
            f"swap {swap.id} at {swap.station_id}: the station handed out pack {swap.pack_new}, "
            f"vehicle {vehicle.wire_id} reports {serial}",
            {"swap": swap.id, "station": swap.station_id, "station_out": swap.pack_new, "vehicle_reports": serial},
            lat, lon,
        )  # fmt: skip
        return "mismatch"

    def _outside_swap(
        self, conn: Connection, vehicle: Any, serial: str, ts: float, lat: Any, lon: Any
    ) -> str:
        pack = conn.execute(select(t.packs).where(t.packs.c.serial == serial)).first()
        if pack is None or (pack.state == "in_vehicle" and pack.vehicle_id == vehicle.id):
            self._count("consistent" if pack is not None else "not_in_inventory")
            return "consistent" if pack is not None else "not_in_inventory"
        if pack.state == "in_vehicle" and pack.vehicle_id is not None:
            other = self._vehicle(conn, pack.vehicle_id)
            where = f"vehicle {other.wire_id if other else pack.vehicle_id}"
        elif pack.station_id is not None:
            where = f"slot {pack.station_id}/{pack.evse_id}"
        else:
            where = f"state {pack.state}"
        self._history_claim(
            conn, serial, ts, vehicle, None, f"vehicle {vehicle.wire_id} reports it; recorded at {where}"
        )
        self._alert(
            conn, vehicle, ts, "pack_conflict",
            f"vehicle {vehicle.wire_id} reports pack {serial}, which the inventory has in {where}",
            {"serial": serial, "recorded": where}, lat, lon,
        )  # fmt: skip
        return "conflict"

    # rows ------------------------------------------------------------------------------------
    @staticmethod
    def _vehicle(conn: Connection, vehicle_id: int) -> Any:
        v = fleet_db.vehicles.c
        return conn.execute(select(v.id, v.tenant_id, v.wire_id).where(v.id == vehicle_id)).first()

    @staticmethod
    def _mark(conn: Connection, swap_id: int, outcome: str, serial: str | None, ts: float) -> None:
        conn.execute(
            update(t.swaps)
            .where(and_(t.swaps.c.id == swap_id, t.swaps.c.reconciled.is_(None)))
            .values(reconciled=outcome, vehicle_pack=serial, reconciled_ts=ts)
        )

    @staticmethod
    def _history_claim(
        conn: Connection, serial: str, ts: float, vehicle: Any, swap_id: int | None, detail: str
    ) -> None:
        """The vehicle's word in the passport, beside the inventory's (which is not moved)."""
        if conn.execute(select(t.packs.c.serial).where(t.packs.c.serial == serial)).first() is None:
            return  # the passport has no page for a pack it never saw
        conn.execute(
            insert(t.pack_history).values(
                serial=serial, ts=ts, event="vehicle_reported", vehicle_id=vehicle.id, swap_id=swap_id,
                detail=detail[:500],
            )
        )  # fmt: skip

    def _alert(self, conn: Connection, vehicle: Any, ts: float, kind: str, message: str,
               data: dict[str, Any], lat: Any, lon: Any) -> None:  # fmt: skip
        self._count(kind)
        row = {
            "tenant_id": vehicle.tenant_id,
            "vehicle_id": vehicle.id,
            **alert(ts, kind, "warning", message, data, lat, lon),
        }
        conn.execute(insert(alerts).values(**row))
        log.warning("swap reconcile: %s", message)
        if self.notifier is not None:
            self.notifier.submit(vehicle.tenant_id, "alert", {"vehicle": vehicle.wire_id, **row})
