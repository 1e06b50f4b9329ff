"""Cargo features from the accessories fitted now, not from the vehicle's type.

An order may need a refrigerated cargo box or a tail lift. Whether a vehicle has one is what its
hub last reported in its ``inventory`` message (the whole list of fitted accessories, stored by
``anycar.fleet.inventory`` in ``accessories``), matched by vendor and product id against
``data/cargo_accessories.yaml``; only an accessory whose status counts (``RUNNING``) gives its
feature, so a box that was unplugged, shed or went unavailable stops counting at the hub's next
report. What is fitted but does not count is said in the plan's notes, so a dispatcher sees why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine

from anycar.fleet import db
from anycar.logistics.settings import cargo_accessories


@dataclass
class Fitted:
    """One vehicle's cargo features from its fitted accessories, and which accessory gives each."""

    features: set[str] = field(default_factory=set)
    by: dict[str, list[str]] = field(default_factory=dict)  # feature -> ["Fridge1 (Virtual ...)"]
    idle: dict[str, list[str]] = field(default_factory=dict)  # fitted, but its status does not count


def products() -> dict[tuple[int, int], tuple[str, frozenset[str]]]:
    """(vendor_id, product_id) -> (name, features) from the catalogue."""
    return {
        (int(p["vendor_id"]), int(p["product_id"])): (str(p["name"]), frozenset(p["features"]))
        for p in cargo_accessories()["products"]
    }


def fitted_features(engine: Engine, vehicle_ids: Iterable[int]) -> dict[int, Fitted]:
    """Per vehicle (fleet id), its cargo features from the accessories its hub reports fitted."""
    ids = sorted(set(vehicle_ids))
    if not ids:
        return {}
    catalogue = products()
    counts = set(cargo_accessories()["counts"])
    a = db.accessories.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.vehicle_id, a.instance, a.vendor_id, a.product_id, a.status)
            .where(a.vehicle_id.in_(ids))
            .order_by(a.vehicle_id, a.instance)
        ).all()
    out: dict[int, Fitted] = {}
    for r in rows:
        known = catalogue.get((int(r.vendor_id), int(r.product_id)))
        if known is None:
            continue
        name, features = known
        got = out.setdefault(r.vehicle_id, Fitted())
        for feature in sorted(features):
            if r.status in counts:
                got.features.add(feature)
                got.by.setdefault(feature, []).append(f"{r.instance} ({name})")
            else:
                got.idle.setdefault(feature, []).append(f"{r.instance} ({name}) is {r.status}")
    return out
