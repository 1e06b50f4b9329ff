"""Writing what the ingest accepted, one transaction per batch, and the queries behind the API.

A batch is committed whole or not at all, so the ingest acknowledges its messages only after
``commit`` returns. Duplicates are dropped inside that transaction: every uplink message's
(vehicle, boot, seq) goes into ``received`` with INSERT ... ON CONFLICT DO NOTHING RETURNING, and
only the keys that come back are stored, so two workers (or a restarted one) that see the same
message store it once. On SQLite (one writer) a boot's seqs seen are a mark, one row a (vehicle,
boot), with ``received`` rows only above a gap (sqlite-marks: ``_first_time_sqlite``). Rows go in with one multi-row statement per table, COPY on PostgreSQL;
a telemetry message's signal values are one ``signal_batches`` row (ingest-store: parallel
arrays, one tuple and one index entry for its ten values), read through the ``signal_values``
view.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import operator
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import commands, daily, db, inventory, ota, pgarrays, pgcopy, retention

LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
SPEED = "Vehicle.Speed"
_POSITION_KEYS = {LAT: "lat", LON: "lon", HEADING: "heading", SPEED: "speed"}
log = logging.getLogger("anycar.fleet.store")
CACHE_S = 5.0  # how long a vehicle lookup is trusted (a revocation takes effect within it)
PREFETCH_EARLY_S = 1.0  # a batch's prefetch refreshes an entry this long before it is too old


@dataclass(frozen=True, slots=True)
class VehicleRef:
    id: int
    tenant_id: int
    wire_id: str
    revoked: bool


@dataclass(slots=True)
class Accepted:
    """One decoded uplink message (or an OsmAnd fix) of a known vehicle, before dedup."""

    vehicle: VehicleRef
    doc: dict[str, Any]
    topic: str = ""  # where it came from: a dead letter's if the database refuses its data
    payload: bytes = b""


@dataclass(slots=True)
class DeadLetter:
    topic: str
    reason: str
    detail: str
    payload: bytes
    vehicle_id: int | None = None
    received: float = field(default_factory=time.time)


@dataclass(slots=True)
class Stored:
    """What one commit added: counts, and the rows the live feed shows (each with its tenant)."""

    messages: int = 0
    duplicates: int = 0
    dead: int = 0
    positions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # vehicle id -> (tenant id, earliest ts) of what this commit added: the domain handlers'
    # input (anycar.fleet.domain), so a late sample re-derives the window it falls in
    touched: dict[int, tuple[int, float]] = field(default_factory=dict)

    def add(self, other: Stored) -> None:
        """Fold another commit's figures into these (a batch committed in parts)."""
        self.messages += other.messages
        self.duplicates += other.duplicates
        self.dead += other.dead
        self.positions.extend(other.positions)
        self.events.extend(other.events)
        for vid, (tenant, ts) in other.touched.items():
            had = self.touched.get(vid)
            self.touched[vid] = (tenant, ts if had is None else min(had[1], ts))


def refused_for_its_data(exc: BaseException) -> bool:
    """The database refused what a batch holds, not for being down: SQLSTATE class 22 (data
    exception: a number out of range, text it cannot hold) or 23 (a constraint, e.g. a vehicle
    deleted while its batch was in flight), or the driver's DataError before sending it. Retrying
    the same rows would fail forever."""
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] in ("22", "23")
    # raised by the driver before the server saw it (psycopg: a NUL in a text field): PEP 249's names
    return any(c.__name__ in ("DataError", "IntegrityError") for c in type(orig).__mro__)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


# A coordinate this close to 0 is stored as 0: PostgreSQL raises "underflow" (it does not round to
# 0) when the rollup's distance formula squares the sine of a difference under ~1e-154 degrees,
# and a batch it refuses would stop its worker. 1e-11 degrees is about a micrometre on the ground.
TINY_DEGREES = 1e-11


def positions_of(doc: dict[str, Any], last: dict[str, float | None]) -> list[dict[str, Any]]:
    """Positions from a telemetry batch: one at every time a latitude or longitude was sampled,
    with the latest speed and heading known then; ``last`` carries a vehicle's values across
    batches (a dead-band may send only the coordinate that moved)."""
    out: list[dict[str, Any]] = []
    # only the position signals, then sorted by time (ingest-worker: sorting all samples was most
    # of this; a stable sort of the kept ones gives them in the same order as before). pg-worker:
    # the sort's key and the float test at C level, a fix built only when one is complete
    paths, t0 = doc["paths"], doc["t0"]
    keys = _POSITION_KEYS.get
    kept = [
        (t0 + ms / 1000, key, value) for i, ms, value in doc["values"] if (key := keys(paths[i])) is not None
    ]
    if len(kept) > 1:
        kept.sort(key=_FIRST)
    moved_at: float | None = None
    for ts, key, value in kept:
        if type(value) is float:  # the usual sample: _number's answer without the call
            if not math.isfinite(value):
                continue
            number = value
        else:
            found = _number(value)
            if found is None:
                continue
            number = found
        if moved_at is not None and ts != moved_at:
            _fix(out, moved_at, last)  # every sample of one time is in: that time's position is complete
            moved_at = None
        if key in _COORDINATES:
            moved_at = ts
            if -TINY_DEGREES < number < TINY_DEGREES:
                number = 0.0 * number  # under a micrometre: 0 (keeps the sign of a signed zero)
        last[key] = number
    if moved_at is not None:
        _fix(out, moved_at, last)
    return out


_FIRST = operator.itemgetter(0)
_COORDINATES = frozenset(("lat", "lon"))


def _fix(out: list[dict[str, Any]], ts: float, last: dict[str, float | None]) -> None:
    """Add the position at ``ts`` when both coordinates are known."""
    lat, lon = last.get("lat"), last.get("lon")
    if lat is not None and lon is not None:
        out.append(
            {"ts": ts, "lat": lat, "lon": lon, "speed": last.get("speed"), "heading": last.get("heading")}
        )


class Store:
    """The fleet database: batched writes for the ingest, tenant-scoped reads for the API."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._vehicles: dict[str, tuple[float, VehicleRef | None]] = {}
        self._last: dict[int, dict[str, float | None]] = {}
        # pg-tail: a list of paths -> its signal_path_sets id as a COPY field (PostgreSQL)
        self._path_sets: dict[tuple[str, ...], bytes] = {}
        self._lock = threading.Lock()
        # handlers run after each committed batch (trips, geofences, rules); one that raises is
        # logged and never fails the commit
        self.after_commit: list[Callable[[Stored], None]] = []
        # delivery-exec: kind -> (connection, vehicle, message) run inside the batch's transaction
        # for message kinds another room owns (``pod``: anycar.logistics.execution)
        self.handlers: dict[str, Callable[[Connection, VehicleRef, dict[str, Any]], None]] = {}
        # fleet-report: run inside the batch's transaction with the positions just written (in id
        # order); ``daily.apply`` keeps each vehicle-day's rollup exact (anycar.fleet.daily)
        self.position_handlers: list[Callable[[Connection, list[dict[str, Any]]], None]] = [daily.apply]

    # ---- lookups -------------------------------------------------------------------------
    def vehicle(self, wire_id: str) -> VehicleRef | None:
        """The registered vehicle with this wire id (cached for ``CACHE_S``), or None."""
        now = time.monotonic()
        with self._lock:
            hit = self._vehicles.get(wire_id)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(db.vehicles.c.id, db.vehicles.c.tenant_id, db.vehicles.c.revoked).where(
                    db.vehicles.c.wire_id == wire_id
                )
            ).first()
        ref = VehicleRef(row.id, row.tenant_id, wire_id, bool(row.revoked)) if row else None
        with self._lock:
            if len(self._vehicles) > 100_000:
                self._vehicles.clear()
            self._vehicles[wire_id] = (now, ref)
        return ref

    def prefetch(self, wire_ids: Iterable[str]) -> None:
        """Refresh the cache for every id of a batch whose entry is missing or old, in one query
        (fleet_scale: one lookup per vehicle every CACHE_S, on the event loop, was most of a
        worker's time on a loaded machine). An entry within ``PREFETCH_EARLY_S`` of its age is
        refreshed too: else it would turn old between this prefetch and the judge a moment later
        and be read alone, on the event loop (ingest-judge: 425 such reads in 90,000 messages)."""
        now = time.monotonic()
        old = CACHE_S - PREFETCH_EARLY_S
        with self._lock:
            stale = {w for w in wire_ids if (hit := self._vehicles.get(w)) is None or now - hit[0] >= old}
        if not stale:
            return
        v = db.vehicles.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(v.id, v.tenant_id, v.revoked, v.wire_id).where(v.wire_id.in_(sorted(stale)))
            )
            found = {r.wire_id: VehicleRef(r.id, r.tenant_id, r.wire_id, bool(r.revoked)) for r in rows}
        with self._lock:
            if len(self._vehicles) > 100_000:
                self._vehicles.clear()
            for w in stale:
                self._vehicles[w] = (now, found.get(w))

    def forget(self, wire_id: str) -> None:
        with self._lock:
            self._vehicles.pop(wire_id, None)

    # ---- writing -------------------------------------------------------------------------
    def commit(self, accepted: Sequence[Accepted], dead: Sequence[DeadLetter] = ()) -> Stored:
        """Store one batch in one transaction; raises (and stores nothing) if the database fails."""
        stored = Stored(dead=len(dead))
        with self.engine.begin() as conn:
            if dead:
                conn.execute(
                    insert(db.dead_letters),
                    [
                        {
                            "received": d.received,
                            "topic": d.topic[:1024],
                            "reason": d.reason[:32],
                            "detail": d.detail[:4096],
                            "payload": d.payload,
                            "vehicle_id": d.vehicle_id,
                        }
                        for d in dead
                    ],
                )
            fresh = self._first_time(conn, accepted)
            stored.duplicates = len(accepted) - len(fresh)
            stored.messages = len(fresh)
            self._write(conn, fresh, stored)
        for handler in self.after_commit:
            try:
                handler(stored)
            except Exception:
                log.exception("a handler after the commit failed (the batch is stored)")
        return stored

    def _first_time(self, conn: Connection, accepted: Sequence[Accepted]) -> list[Accepted]:
        keyed: dict[tuple[str, str, int], Accepted] = {}
        out: list[Accepted] = []
        for item in accepted:
            seq = int(item.doc.get("seq", 0))
            if seq == 0:
                out.append(item)  # state: idempotent, always applied
            else:
                keyed.setdefault((item.vehicle.wire_id, str(item.doc["boot"]), seq), item)
        if keyed and self.postgres:
            new_keys = _first_time_pg(conn, sorted(keyed))
            out.extend(item for key, item in keyed.items() if key in new_keys)
        elif keyed:  # SQLite: one mark a (vehicle, boot), see _first_time_sqlite (sqlite-marks)
            new = _first_time_sqlite(_raw(conn), keyed, time.time())
            out.extend(item for key, item in keyed.items() if key in new)
        return out

    def _write(self, conn: Connection, fresh: Iterable[Accepted], stored: Stored) -> None:
        pos_rows: list[dict[str, Any]] = []
        sig_rows: list[bytes] = []  # PostgreSQL: COPY binary tuples of signal_batches, one per message
        sig_tuples: list[tuple[Any, ...]] = []  # SQLite: the same as rows
        first_ts: dict[int, float] = {}  # PostgreSQL: each vehicle's earliest signal value
        ev_rows: list[dict[str, Any]] = []
        vehicle_updates: dict[int, dict[str, Any]] = {}
        tenants: dict[int, int] = {}
        now = time.time()
        pgarrays.FLOATS.trim()
        known = pgarrays.FLOATS
        ftext = known.__getitem__  # SQLite: each float's text once a batch (sqlite-rate)
        for item in sorted(fresh, key=lambda a: (a.doc.get("ts", 0), a.doc.get("seq", 0))):
            ref, doc, kind = item.vehicle, item.doc, item.doc["kind"]
            tenants[ref.id] = ref.tenant_id
            upd = vehicle_updates.setdefault(ref.id, {"last_seen": now})
            if kind == "telemetry":
                last = self._last.setdefault(ref.id, {})
                vid, t0, paths = ref.id, doc["t0"], doc["paths"]
                if doc["values"] and self.postgres:  # one COPY binary tuple per message
                    # (pg-tail: the doubles as their bytes, see pgcopy; C-level maps over the columns)
                    idx, mss, got = zip(*doc["values"], strict=True)
                    heads = tuple(map(paths.__getitem__, idx))
                    path_set = self._path_sets.get(heads) or self._path_set(heads)
                    if mss.count(ms0 := mss[0]) == len(mss):  # pg-worker: one sample time, as usual
                        early = newest = t0 + ms0 / 1000
                        times = pgcopy.float8_repeat(newest, len(mss))
                    else:
                        tss = [t0 + ms / 1000 for ms in mss]
                        early, newest = min(tss), max(tss)
                        times = pgcopy.float8_array(tss)
                    if set(map(type, got)) == _FLOAT_ONLY:  # the usual message: nums = the values
                        nums = pgcopy.float8_array(got)
                        jsons = pgcopy.json_float_array(got)  # vals: each as JSON text (pg-worker: cached)
                    else:
                        nums = pgcopy.float8_array(list(map(_number, got)))
                        jsons = pgcopy.text_array(list(map(_json_text, got)))
                    sig_rows.append(
                        _signal_head(7, 4, vid, 8, newest) + _NO_PATHS + times + nums + jsons + path_set
                    )
                    if early < first_ts.get(vid, math.inf):
                        first_ts[vid] = early
                elif doc["values"]:  # SQLite: one tuple per message for the driver's executemany
                    # (sqlite-rate: the JSON texts json.dumps wrote, built from each float's text
                    # once a batch and the paths' text once per distinct list; nums = vals when
                    # every value is a float, as is usual)
                    idx, mss, got = zip(*doc["values"], strict=True)
                    tss = [t0 + ms / 1000 for ms in mss]
                    early, newest = min(tss), max(tss)
                    path_json = _SQLITE_PATHS.get(names := tuple(map(paths.__getitem__, idx)))
                    if path_json is None:
                        path_json = _SQLITE_PATHS.remember(names)
                    if set(map(type, got)) == _FLOAT_ONLY:
                        num_json = val_json = "[" + ", ".join(map(ftext, got)) + "]"
                    else:
                        num_json, val_json = json.dumps([_number(v) for v in got]), json.dumps(list(got))
                    sig_tuples.append(
                        (vid, newest, path_json, "[" + ", ".join(map(ftext, tss)) + "]", num_json, val_json)
                    )
                    if early < first_ts.get(vid, math.inf):
                        first_ts[vid] = early
                for p in positions_of(doc, last):
                    pos_rows.append({"vehicle_id": ref.id, "source": "hub", **p})
                    stored.positions.append({"tenant_id": ref.tenant_id, "vehicle": ref.wire_id, **p})
            elif kind == "position":  # an OsmAnd fix, shaped by anycar.fleet.osmand
                p = {k: doc.get(k) for k in ("ts", "lat", "lon", "speed", "heading")}
                for k in ("lat", "lon"):
                    if -TINY_DEGREES < p[k] < TINY_DEGREES:
                        p[k] = 0.0 * p[k]
                pos_rows.append({"vehicle_id": ref.id, "source": "osmand", **p})
                stored.positions.append({"tenant_id": ref.tenant_id, "vehicle": ref.wire_id, **p})
            elif kind == "events":
                for e in doc["events"]:
                    pos = e.get("position") or {}
                    row = {
                        "vehicle_id": ref.id,
                        "ts": e["ts"],
                        "type": e["type"],
                        "subject": e.get("subject"),
                        "message": e.get("message"),
                        "data": e.get("data"),
                        "lat": pos.get("lat"),
                        "lon": pos.get("lon"),
                    }
                    ev_rows.append(row)
                    stored.events.append({"tenant_id": ref.tenant_id, "vehicle": ref.wire_id, **row})
            elif kind == "state":
                upd["online"] = doc["state"] == "online"
            elif kind == "inventory":  # fleet-commands: what is fitted where
                inventory.apply(conn, ref.id, doc)
            elif kind in self.handlers:  # delivery-exec: kinds another room handles (pod)
                self.handlers[kind](conn, ref, doc)
            elif kind in ("campaign-ack", "command-result"):
                if kind == "command-result":  # fleet-commands: the command's outcome, its rollout
                    rollout = commands.apply_result(conn, ref.id, doc, now)
                    if rollout is not None:
                        ota.settle(conn, rollout)
                else:  # fleet-commands: a campaign the fleet sent, acknowledged
                    commands.apply_ack(conn, ref.id, doc, now)
                subject = doc.get("campaign") if kind == "campaign-ack" else doc.get("command")
                ev_rows.append(
                    {
                        "vehicle_id": ref.id,
                        "ts": doc["ts"],
                        "type": kind,
                        "subject": subject,
                        "message": doc.get("reason") or None,
                        "data": {k: doc[k] for k in ("status", "version", "results") if k in doc},
                        "lat": None,
                        "lon": None,
                    }
                )
        for row in pos_rows:
            upd = vehicle_updates[row["vehicle_id"]]
            if row["ts"] >= (upd.get("last_ts") or float("-inf")):
                upd.update(
                    last_ts=row["ts"],
                    last_lat=row["lat"],
                    last_lon=row["lon"],
                    last_speed=row["speed"],
                    last_heading=row["heading"],
                )
        earliest = dict(first_ts)
        for row in pos_rows:  # what the derivation reads (events come in stored.events)
            vid, ts = row["vehicle_id"], row["ts"]
            if ts < earliest.get(vid, math.inf):
                earliest[vid] = ts
        for vid, ts in earliest.items():
            tid = tenants.get(vid)
            if tid is not None:
                stored.touched[vid] = (tid, ts)
        if self.postgres and pos_rows:
            _copy_binary(conn, "positions", _POSITION_COLUMNS, list(map(_position_row, pos_rows)))
        elif pos_rows:  # SQLite: the driver's executemany, no SQLAlchemy compilation per batch
            _raw(conn).executemany(
                "INSERT INTO positions (vehicle_id, ts, lat, lon, speed, heading, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [tuple(r[c] for c in _POSITION_COLUMNS) for r in pos_rows],
            )
        for position_handler in self.position_handlers if pos_rows else ():
            position_handler(conn, pos_rows)  # fleet-report: the daily rollup, same transaction
        if sig_tuples:
            _raw(conn).executemany(
                "INSERT INTO signal_batches (vehicle_id, ts, paths, tss, nums, vals) VALUES (?, ?, ?, ?, ?, ?)",
                sig_tuples,
            )
        if sig_rows:
            _copy_binary(conn, "signal_batches", _SIGNAL_COLUMNS, sig_rows)
        self._insert(conn, db.events, ev_rows)
        if self.postgres:
            _update_vehicles_pg(conn, vehicle_updates)
        else:
            self._update_vehicles(conn, vehicle_updates)

    def _path_set(self, paths: tuple[str, ...]) -> bytes:
        """The ``signal_path_sets`` id of ``paths`` (made if new) as a COPY field, cached.

        In a transaction of its own, committed before the batch's: a batch that fails never
        takes back a set another worker's batch already uses (a set is never deleted). Text
        PostgreSQL cannot hold (a NUL, a path over 256) is refused here, for its data, as the
        batch's COPY refused it."""
        key = hashlib.sha256(json.dumps(list(paths)).encode()).hexdigest()
        with self.engine.begin() as conn, _raw(conn).cursor() as cur:
            cur.execute(_PATH_SET_PG, (key, pgarrays.text_array(paths), key))
            found = cur.fetchone()
            if found is None:  # another worker's insert committed after this statement's snapshot
                cur.execute("SELECT id FROM signal_path_sets WHERE key = %s", (key,))
                found = cur.fetchone()
        if found is None:
            raise RuntimeError(f"signal_path_sets: no id for {key}")
        field = pgcopy.int4_field(int(found[0]))
        if len(self._path_sets) >= 10_000:
            self._path_sets.clear()
        self._path_sets[paths] = field
        return field

    def _update_vehicles(self, conn: Connection, updates: dict[int, dict[str, Any]]) -> None:
        """SQLite: every vehicle of the batch in one fixed statement through the driver's
        ``executemany``, one row write a vehicle (sqlite-rate: was two, the last position and
        ``last_seen`` apart); the last position only moves forward."""
        if not updates:
            return
        _raw(conn).executemany(
            _VEHICLES_SQLITE,
            [
                (
                    vid,
                    u["last_seen"],
                    None if (online := u.get("online")) is None else bool(online),
                    u.get("last_ts"),
                    u.get("last_lat"),
                    u.get("last_lon"),
                    u.get("last_speed"),
                    u.get("last_heading"),
                )
                for vid, u in updates.items()
            ],
        )

    def _insert(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self.postgres:
            conn.execute(insert(table), rows)
            return
        columns = [c.name for c in table.columns if c.name != "id"]
        json_cols = {c.name for c in table.columns if isinstance(c.type, db.JSON)}
        raw: Any = conn.connection.driver_connection  # psycopg 3's own connection, for COPY
        names = ", ".join(columns)
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):  # table and column names come from our own metadata
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row.get(c)) if c in json_cols and row.get(c) is not None else row.get(c)
                        for c in columns
                    ]
                )


# ---- PostgreSQL: fixed statements over arrays (ingest-speed) ------------------------------------
# One prepared statement per step whatever the batch's size, instead of a SQLAlchemy multi-row
# VALUES compiled anew for every batch (a profile had that compilation at ~10 % of a worker).
_DEDUP_PG = """
WITH ins AS (
    INSERT INTO received (vehicle, boot, seq)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[])
    ON CONFLICT DO NOTHING
    RETURNING vehicle, boot, seq
)
SELECT ins.vehicle, ins.boot, ins.seq FROM ins
LEFT JOIN received_floor f ON f.vehicle = ins.vehicle AND f.boot = ins.boot
WHERE f.floor IS NULL OR ins.seq > f.floor
"""
# every vehicle of the batch in one UPDATE: last_seen always, online when the batch said, the last
# position only forward (never moved back by an old backlog arriving late)
_VEHICLES_PG = """
UPDATE vehicles v SET
    last_seen = u.seen,
    online = COALESCE(u.online, v.online),
    last_ts = CASE WHEN u.ts IS NOT NULL AND (v.last_ts IS NULL OR v.last_ts <= u.ts) THEN u.ts ELSE v.last_ts END,
    last_lat = CASE WHEN u.ts IS NOT NULL AND (v.last_ts IS NULL OR v.last_ts <= u.ts) THEN u.lat ELSE v.last_lat END,
    last_lon = CASE WHEN u.ts IS NOT NULL AND (v.last_ts IS NULL OR v.last_ts <= u.ts) THEN u.lon ELSE v.last_lon END,
    last_speed = CASE WHEN u.ts IS NOT NULL AND (v.last_ts IS NULL OR v.last_ts <= u.ts)
                      THEN u.speed ELSE v.last_speed END,
    last_heading = CASE WHEN u.ts IS NOT NULL AND (v.last_ts IS NULL OR v.last_ts <= u.ts)
                        THEN u.heading ELSE v.last_heading END
FROM unnest(%s::int[], %s::float8[], %s::bool[], %s::float8[], %s::float8[], %s::float8[],
            %s::float8[], %s::float8[]) AS u(id, seen, online, ts, lat, lon, speed, heading)
WHERE v.id = u.id
"""
# (ingest-store: every SET expression reads the row as it was, so the "forward" test needs no
# self-join; the join hashed the whole vehicles table, dead versions too, for every batch)


# pg-tail: a list of paths' id, made if new (two workers may race: the loser reads the winner's,
# in a second statement if the winner committed after this one's snapshot)
_PATH_SET_PG = """
WITH made AS (
    INSERT INTO signal_path_sets (key, paths) VALUES (%s, CAST(%s AS text[]))  -- text: a path over 256 is refused, not cut
    ON CONFLICT (key) DO NOTHING RETURNING id
)
SELECT id FROM made UNION ALL SELECT id FROM signal_path_sets WHERE key = %s
"""


_DEDUP_SQLITE = """
INSERT INTO received (vehicle, boot, seq)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]')
FROM json_each(?) WHERE true
ON CONFLICT DO NOTHING
RETURNING vehicle, boot, seq
"""


# sqlite-marks: the usual batch's dedup, one statement: each (vehicle, boot) whose seqs in the
# batch are one run lo..hi just above its mark, with nothing waiting above the mark, moves the
# mark to hi; the pairs it returns are all new. It writes first, so the transaction takes
# SQLite's write lock at it (no read snapshot before it that a second worker's commit could age).
_MARKS_RUN_SQLITE = """
UPDATE received_marks SET hwm = j.hi, updated = ?1
FROM (SELECT value ->> 0 AS jv, value ->> 1 AS jb, value ->> 2 AS lo, value ->> 3 AS hi FROM json_each(?2)) AS j
WHERE received_marks.vehicle = j.jv AND received_marks.boot = j.jb
  AND received_marks.hwm = j.lo - 1 AND received_marks.above = 0
RETURNING vehicle, boot
"""
# the other pairs: a mark for a boot not seen before (nothing seen: hwm 0), then the marks
_MARKS_NEW_SQLITE = """
INSERT INTO received_marks (vehicle, boot, hwm, above, updated)
SELECT value ->> 0, value ->> 1, 0, 0, ?1 FROM json_each(?2) WHERE true
ON CONFLICT DO NOTHING
"""
_MARKS_OF_SQLITE = """
SELECT m.vehicle, m.boot, m.hwm, m.above FROM json_each(?) AS j
JOIN received_marks AS m ON m.vehicle = j.value ->> 0 AND m.boot = j.value ->> 1
"""
_WAITING_SQLITE = "SELECT seq FROM received WHERE vehicle = ? AND boot = ? AND seq > ? ORDER BY seq"
_ABSORBED_SQLITE = "DELETE FROM received WHERE vehicle = ? AND boot = ? AND seq <= ?"
_MARK_SET_SQLITE = (
    "UPDATE received_marks SET hwm = ?1, above = ?2, updated = CASE WHEN ?1 > hwm THEN ?3 ELSE updated END "
    "WHERE vehicle = ?4 AND boot = ?5"
)


def _first_time_sqlite(
    raw: Any, keys: Iterable[tuple[str, str, int]], now: float
) -> set[tuple[str, str, int]]:
    """The keys not seen before, recorded as seen (SQLite, inside the batch's transaction).

    A boot's seen seqs are its mark (every seq <= ``hwm``) and the ``received`` rows above it
    (seqs that came above a gap: out of order, a spool's replay), ``above`` of them. The usual
    batch, the next seqs of each boot with nothing waiting, is one UPDATE of the marks
    (``_MARKS_RUN_SQLITE``): no ``received`` row written, one small row a boot instead of a key
    a message in a vehicle-first B-tree (each key dirtied a leaf page of its own, written whole
    to the WAL and again by the checkpoint: docs/performance.md, sqlite-marks). Any other pair
    goes the long way, exact whatever the order: its seqs above the mark go into ``received``
    (``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the new ones), and once the seq just above
    the mark is in, the run of rows from there is folded into the mark and deleted. SQLite has one
    writer, and the first statement writes, so nothing changes a mark between its read and its
    write. PostgreSQL does not do this (``_first_time_pg``): its workers share vehicles."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    for v, b, q in sorted(keys):
        by_pair.setdefault((v, b), []).append(q)
    new: set[tuple[str, str, int]] = set()
    runs = [[v, b, s[0], s[-1]] for (v, b), s in by_pair.items() if s[-1] - s[0] + 1 == len(s)]
    if runs:
        for v, b in raw.execute(_MARKS_RUN_SQLITE, (now, json.dumps(runs))).fetchall():
            new.update((v, b, q) for q in by_pair.pop((v, b)))
    if not by_pair:
        return new
    pairs = json.dumps(list(by_pair))
    raw.execute(_MARKS_NEW_SQLITE, (now, pairs))
    marks = {(v, b): (int(h), int(a)) for v, b, h, a in raw.execute(_MARKS_OF_SQLITE, (pairs,))}
    above = [[v, b, q] for (v, b), s in by_pair.items() for q in s if q > marks[(v, b)][0]]
    got: dict[tuple[str, str], set[int]] = {}
    if above:
        for v, b, q in raw.execute(_DEDUP_SQLITE, (json.dumps(above),)).fetchall():
            got.setdefault((v, b), set()).add(int(q))
    sets = []
    for (v, b), seqs in got.items():
        hwm, waiting = marks[(v, b)]
        top = hwm
        if hwm + 1 in seqs:  # the gap just above the mark filled: fold the run from there in
            for (q,) in raw.execute(_WAITING_SQLITE, (v, b, hwm)):
                if q != top + 1:
                    break
                top = q
            raw.execute(_ABSORBED_SQLITE, (v, b, top))
        sets.append((top, waiting + len(seqs) - (top - hwm), now, v, b))
        new.update((v, b, q) for q in seqs)
    if sets:
        raw.executemany(_MARK_SET_SQLITE, sets)
    return new


# every vehicle of a SQLite batch in one row write: last_seen always, online when the batch said,
# the last position only forward (?4 is the batch's newest fix, NULL when it had none); every SET
# expression reads the row as it was
_VEHICLES_SQLITE = (
    "UPDATE vehicles SET last_seen = ?2, online = coalesce(?3, online), "
    "last_ts = CASE WHEN ?4 IS NOT NULL AND (last_ts IS NULL OR last_ts <= ?4) THEN ?4 ELSE last_ts END, "
    "last_lat = CASE WHEN ?4 IS NOT NULL AND (last_ts IS NULL OR last_ts <= ?4) THEN ?5 ELSE last_lat END, "
    "last_lon = CASE WHEN ?4 IS NOT NULL AND (last_ts IS NULL OR last_ts <= ?4) THEN ?6 ELSE last_lon END, "
    "last_speed = CASE WHEN ?4 IS NOT NULL AND (last_ts IS NULL OR last_ts <= ?4) THEN ?7 ELSE last_speed END, "
    "last_heading = CASE WHEN ?4 IS NOT NULL AND (last_ts IS NULL OR last_ts <= ?4) THEN ?8 ELSE last_heading END "
    "WHERE id = ?1"
)


def _raw(conn: Connection) -> Any:
    """The driver's own connection under SQLAlchemy's (psycopg 3 or sqlite3), in the same transaction."""
    return conn.connection.driver_connection


def _first_time_pg(conn: Connection, keys: list[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Insert the batch's keys (sorted, so two workers lock them in one order) into ``received``
    and return the ones that were new and above their boot's pruned floor: one round trip."""
    retention.hold_dedup(conn, shared=True)  # its own statement: the dedup's snapshot comes after it
    vehicles, boots, seqs = zip(*keys, strict=True) if keys else ((), (), ())
    raw = _raw(conn)
    pgcopy.binary_params(raw)
    with raw.cursor() as cur:  # the arrays as binary parameters (pg-worker: see pgcopy)
        cur.execute(
            _DEDUP_PG,
            (
                pgcopy.text_param(vehicles),
                pgcopy.text_param(boots),
                pgcopy.param(_int8_param, seqs, pgarrays.int_array),
            ),
            prepare=True,
        )
        return set(cur.fetchall())


def _int8_param(values: Sequence[int]) -> bytes:
    return pgcopy.int_param(values, pgcopy.INT8)


def _update_vehicles_pg(conn: Connection, updates: dict[int, dict[str, Any]]) -> None:
    if not updates:
        return
    ids = sorted(updates)  # one lock order for every worker
    rows = [updates[vid] for vid in ids]
    floats = pgcopy.float8_param, pgarrays.float_array
    raw = _raw(conn)
    pgcopy.binary_params(raw)
    with raw.cursor() as cur:  # the arrays as binary parameters (pg-worker: see pgcopy)
        cur.execute(
            _VEHICLES_PG,
            (
                pgcopy.int_param(ids),
                pgcopy.param(floats[0], [u["last_seen"] for u in rows], floats[1]),
                pgcopy.bool_param([u.get("online") for u in rows]),
                *(
                    pgcopy.param(floats[0], [u.get(k) for u in rows], floats[1])
                    for k in ("last_ts", "last_lat", "last_lon", "last_speed", "last_heading")
                ),
            ),
            prepare=True,
        )


# COPY (FORMAT binary), written by hand (pg-tail: see anycar.fleet.pgcopy; before, COPY text lines,
# which ingest-speed wrote by hand because psycopg's ``write_row`` was a third of the commit's
# Python time at 10 rows a message)
_POSITION_COLUMNS = ("vehicle_id", "ts", "lat", "lon", "speed", "heading", "source")
_position_head = struct.Struct(">hiiididid").pack  # 7 fields: vehicle_id, ts, lat, lon (never NULL)
_signal_head = struct.Struct(">hiiid").pack  # 6 fields: vehicle_id, ts (then the four arrays)


def _position_row(row: dict[str, Any]) -> bytes:
    """One positions tuple (lat and lon are never NULL: see positions_of)."""
    return (
        _position_head(7, 4, row["vehicle_id"], 8, row["ts"], 8, row["lat"], 8, row["lon"])
        + pgcopy.float8_field(row["speed"])
        + pgcopy.float8_field(row["heading"])
        + pgcopy.text_field(row["source"])
    )


_SIGNAL_COLUMNS = ("vehicle_id", "ts", "paths", "tss", "nums", "vals", "path_set")
_FLOAT_ONLY = {float}
_NO_PATHS = pgcopy.empty_array(pgcopy.VARCHAR)  # the row's paths are its path set's (pg-tail)


class _JsonPaths(dict[tuple[str, ...], str]):
    """SQLite: a message's paths -> the JSON text ``json.dumps`` writes for them (a fleet's
    messages carry the same few lists of paths again and again; bounded)."""

    def remember(self, names: tuple[str, ...]) -> str:
        found = json.dumps(list(names))
        if len(self) < 10_000:
            self[names] = found
        return found


_SQLITE_PATHS = _JsonPaths()


def _json_text(value: Any) -> str | None:
    """An element of ``vals``: the value as JSON text (numbers, the common case, first, bare);
    None is SQL NULL, as the per-value table stored a JSON null."""
    kind = type(value)
    if kind is float:
        return repr(value)  # what json.dumps writes for a finite float
    if value is None:
        return None
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    return json.dumps(value)


def _copy_binary(conn: Connection, table: str, columns: Sequence[str], rows: list[bytes]) -> None:
    """COPY ``rows`` (binary tuples in ``columns`` order) into ``table`` (our own names)."""
    with (
        _raw(conn).cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT binary)") as copy,
    ):
        copy.write(pgcopy.stream(rows))
