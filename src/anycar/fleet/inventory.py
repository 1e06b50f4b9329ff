"""The accessory inventory across the fleet: what is fitted where, from the hubs' ``inventory``
messages (the whole list each time, on birth and whenever it changes).

Each message replaces what was held for its vehicle, unless an older one arrives after a newer
one (a backlog drained late): the vehicle's rows keep the hub's time of the list they came from.
Reads are scoped to one tenant through the vehicles.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db

A = db.accessories.c
IR = db.inventory_reports.c
V = db.vehicles.c


def apply(conn: Connection, vehicle_id: int, doc: dict[str, Any]) -> bool:
    """Store one inventory message in the ingest's transaction; False if it was older than held."""
    ts = float(doc["ts"])
    held = conn.execute(select(IR.ts).where(IR.vehicle_id == vehicle_id)).scalar()
    if held is not None and held > ts:
        return False
    if held is None:
        conn.execute(db.inventory_reports.insert().values(vehicle_id=vehicle_id, ts=ts, received=time.time()))
    else:
        conn.execute(
            update(db.inventory_reports)
            .where(IR.vehicle_id == vehicle_id)
            .values(ts=ts, received=time.time())
        )
    conn.execute(delete(db.accessories).where(A.vehicle_id == vehicle_id))
    rows = [
        {
            "vehicle_id": vehicle_id,
            "instance": a["id"],
            "vendor_id": a["vendor_id"],
            "vendor": a["vendor"],
            "product_id": a["product_id"],
            "model": a["model"],
            "serial": a.get("serial"),
            "firmware": a["firmware"],
            "mount": a["mount"],
            "status": a["status"],
            "updated": ts,
        }
        for a in {a["id"]: a for a in doc["accessories"]}.values()
    ]
    if rows:
        conn.execute(db.accessories.insert(), rows)
    return True


def listing(
    engine: Engine,
    tenant_id: int,
    *,
    vehicle: str | None = None,
    model: str | None = None,
    firmware: str | None = None,
    vendor_id: int | None = None,
    product_id: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The tenant's fitted accessories, by vehicle then instance, filtered as asked."""
    q = (
        select(db.accessories, V.wire_id)
        .join(db.vehicles, V.id == A.vehicle_id)
        .where(V.tenant_id == tenant_id)
    )
    if vehicle is not None:
        q = q.where(V.wire_id == vehicle[:64])
    if model is not None:
        q = q.where(A.model == model[:64])
    if firmware is not None:
        q = q.where(A.firmware == firmware[:64])
    if vendor_id is not None:
        q = q.where(A.vendor_id == vendor_id)
    if product_id is not None:
        q = q.where(A.product_id == product_id)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(V.wire_id, A.instance).limit(limit))
        return [
            {
                "vehicle": r.wire_id,
                "id": r.instance,
                "vendor_id": r.vendor_id,
                "vendor": r.vendor,
                "product_id": r.product_id,
                "model": r.model,
                "serial": r.serial,
                "firmware": r.firmware,
                "mount": r.mount,
                "status": r.status,
                "updated": r.updated,
            }
            for r in rows
        ]
