"""How long a tenant's history is kept, and keeping the dedup table small.

**Retention** is a setting per tenant (``tenant_retention.days``; no row: kept forever). Positions,
signal values and events older than a tenant's days are deleted, per vehicle, as index ranges on
(vehicle_id, ts) (on PostgreSQL the ``ts <`` bound also prunes the scan to the old partitions),
and so are the dead letters whose topic named one of its vehicles (by their ``received`` time).
When every tenant has a setting, the day partitions older than the longest one are dropped
whole first (free, no dead rows), so the deletes only touch the days between the shortest and
the longest retention; the dead letters that name no known vehicle (they belong to no tenant)
go once they are older than that longest retention too.

**Dedup pruning**: ``received`` holds one row per (vehicle, boot, seq) ever stored. The prune
moves a per-(vehicle, boot) floor up to the highest seq below which every number arrived
(gapless, so exact: anything at or below it was stored) and deletes the rows under it; the
store refuses a key at or below its floor. A gap that stays open longer than ``give_up_s`` (the
hub lost or dropped that message) is given up: the floor jumps to the highest seq seen, and a
message of that gap arriving later still is dropped as a duplicate (the one cost in
correctness). A boot whose floor has not moved for ``forget_s`` (the hub restarted long ago) is
forgotten: a resend from it would be stored twice, which the hub's bounded spool makes
unlikely.

On SQLite the store keeps the floor itself, as a mark (``received_marks``, sqlite-marks): one row
a (vehicle, boot) moved by each commit, ``received`` holding only the seqs that came above a gap.
The prune there gives up the gaps whose mark has not moved for ``give_up_s`` and forgets the marks
idle for ``forget_s`` with nothing waiting, by the commits' clock (``updated`` is when the mark
last moved); ``received_floor`` is PostgreSQL's alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, exists, func, select, text, tuple_, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db, partitions

DAY = 86_400.0
GIVE_UP_S = 7 * DAY
FORGET_S = 30 * DAY
CHUNK = 500  # vehicles per DELETE statement
# The prune holds this exclusively; a commit takes it shared before its dedup statement. Without
# it a resend could be stored twice: its INSERT waits on the key the prune is deleting, goes in
# once the prune commits, and the same statement's snapshot still shows the old floor.
DEDUP_LOCK = 0x616E_7964  # pg_advisory_xact_lock key ("anyd")


def hold_dedup(conn: Connection, *, shared: bool) -> None:
    """Take the dedup prune's lock for the rest of ``conn``'s transaction (PostgreSQL)."""
    db.hold_advisory_lock(conn, DEDUP_LOCK, shared=shared)


R, F = db.received.c, db.received_floor.c


# what a tenant's retention removes, and the time column it goes by
_KEPT = (
    (db.positions, "ts"),
    (db.signal_batches, "ts"),  # a row goes when its newest value is older
    (db.events, "ts"),
    (db.dead_letters, "received"),
)


class RetentionError(ValueError):
    pass


def set_days(engine: Engine, tenant_id: int, days: float | None) -> None:
    """Keep the tenant's positions, signal values, events and dead letters ``days`` days (None: forever)."""
    if days is not None and not (0 < days <= 36_500):
        raise RetentionError(f"retention: days must be in (0, 36500], not {days}")
    t = db.tenant_retention
    with engine.begin() as conn:
        conn.execute(delete(t).where(t.c.tenant_id == tenant_id))
        if days is not None:
            conn.execute(t.insert().values(tenant_id=tenant_id, days=float(days)))


def settings(engine: Engine) -> dict[int, float | None]:
    """Every tenant with its days (None: kept forever)."""
    t = db.tenant_retention
    with engine.connect() as conn:
        rows = conn.execute(
            select(db.tenants.c.id, t.c.days).outerjoin(t, t.c.tenant_id == db.tenants.c.id)
        ).all()
    return {r.id: r.days for r in rows}


def apply(engine: Engine, now: float) -> dict[str, Any]:
    """Remove what each tenant no longer keeps; returns what was dropped and deleted."""
    per_tenant = settings(engine)
    out: dict[str, Any] = {"dropped": [], "deleted": 0}
    kept = list(per_tenant.values())
    if kept and all(d is not None for d in kept):
        longest = max(d for d in kept if d is not None)
        out["dropped"] = partitions.drop_before(engine, now - longest * DAY)
        dl = db.dead_letters.c
        with engine.begin() as conn:  # no tenant's: kept as long as the longest-kept tenant's
            result = conn.execute(
                delete(db.dead_letters).where(dl.vehicle_id.is_(None), dl.received < now - longest * DAY)
            )
            out["deleted"] += max(result.rowcount or 0, 0)
    for tenant_id, days in per_tenant.items():
        if days is None:
            continue
        cutoff = now - days * DAY
        with engine.connect() as conn:
            ids = list(
                conn.execute(select(db.vehicles.c.id).where(db.vehicles.c.tenant_id == tenant_id)).scalars()
            )
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            with engine.begin() as conn:
                for table, ts in _KEPT:
                    result = conn.execute(
                        delete(table).where(table.c.vehicle_id.in_(chunk), table.c[ts] < cutoff)
                    )
                    out["deleted"] += max(result.rowcount or 0, 0)
    return out


def _delete_under_floor(conn: Connection) -> int:
    under = exists().where(and_(F.vehicle == R.vehicle, F.boot == R.boot, R.seq <= F.floor))
    return max(conn.execute(delete(db.received).where(under)).rowcount or 0, 0)


def prune_received(
    engine: Engine, now: float, *, give_up_s: float = GIVE_UP_S, forget_s: float = FORGET_S
) -> dict[str, int]:
    """Move every (vehicle, boot)'s floor up and delete the dedup rows under it."""
    out = {"deleted": 0, "floors_moved": 0, "gaps_given_up": 0, "forgotten": 0}
    if engine.dialect.name == "sqlite":
        return _prune_marks(engine, now, give_up_s=give_up_s, forget_s=forget_s, out=out)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            partitions.lock(conn)
            hold_dedup(conn, shared=False)
        out["deleted"] += _delete_under_floor(conn)  # resends that raced an earlier prune
        # a floor of 0 for every boot not seen before: it starts the give-up clock
        conn.execute(
            db.received_floor.insert().from_select(
                ["vehicle", "boot", "floor", "updated"],
                select(R.vehicle, R.boot, text("0"), text(repr(float(now))))
                .where(~exists().where(and_(F.vehicle == R.vehicle, F.boot == R.boot)))
                .group_by(R.vehicle, R.boot),
            )
        )
        # the gapless run just above each floor: seq - row_number() is constant along a run
        ranked = (
            select(
                R.vehicle,
                R.boot,
                R.seq,
                F.floor,
                (R.seq - func.row_number().over(partition_by=(R.vehicle, R.boot), order_by=R.seq)).label("k"),
            )
            .join(db.received_floor, and_(F.vehicle == R.vehicle, F.boot == R.boot))
            .subquery()
        )
        runs = conn.execute(
            select(ranked.c.vehicle, ranked.c.boot, func.max(ranked.c.seq).label("top"))
            .where(ranked.c.k == ranked.c.floor)
            .group_by(ranked.c.vehicle, ranked.c.boot)
        ).all()
        for r in runs:
            conn.execute(
                update(db.received_floor)
                .where(F.vehicle == r.vehicle, F.boot == r.boot)
                .values(floor=r.top, updated=now)
            )
        out["floors_moved"] = len(runs)
        # gaps open for longer than give_up_s: the floor jumps over them
        stale = conn.execute(
            select(R.vehicle, R.boot, func.max(R.seq).label("top"))
            .join(db.received_floor, and_(F.vehicle == R.vehicle, F.boot == R.boot))
            .where(F.updated < now - give_up_s)
            .group_by(R.vehicle, R.boot)
        ).all()
        for r in stale:
            conn.execute(
                update(db.received_floor)
                .where(F.vehicle == r.vehicle, F.boot == r.boot)
                .values(floor=r.top, updated=now)
            )
        out["gaps_given_up"] = len(stale)
        out["deleted"] += _delete_under_floor(conn)
        left = exists().where(and_(F.vehicle == R.vehicle, F.boot == R.boot))
        out["forgotten"] = max(
            conn.execute(delete(db.received_floor).where(F.updated < now - forget_s, ~left)).rowcount or 0,
            0,
        )
    return out


# SQLite (sqlite-marks): a gap open for give_up_s is given up: the mark jumps to the boot's
# highest seq waiting above it. The first statement writes (SQLite's write lock, then no commit
# moves a mark until this transaction ends).
_GIVE_UP_SQLITE = """
UPDATE received_marks SET above = 0, updated = :now,
    hwm = max(hwm, coalesce((SELECT max(r.seq) FROM received r
                             WHERE r.vehicle = received_marks.vehicle AND r.boot = received_marks.boot), hwm))
WHERE above > 0 AND updated < :cut
"""
_UNDER_MARKS_SQLITE = """
DELETE FROM received WHERE seq <= (SELECT m.hwm FROM received_marks m
                                   WHERE m.vehicle = received.vehicle AND m.boot = received.boot)
"""


def _prune_marks(
    engine: Engine, now: float, *, give_up_s: float, forget_s: float, out: dict[str, int]
) -> dict[str, int]:
    """SQLite's prune: the commits move the marks (``floors_moved`` stays 0); this gives up
    the gaps whose mark has not moved for ``give_up_s``, deletes what is then under the marks,
    and forgets the marks idle for ``forget_s`` with nothing above them."""
    with engine.begin() as conn:
        out["gaps_given_up"] = max(
            conn.execute(text(_GIVE_UP_SQLITE), {"now": now, "cut": now - give_up_s}).rowcount or 0, 0
        )
        out["deleted"] = max(conn.execute(text(_UNDER_MARKS_SQLITE)).rowcount or 0, 0)
        m = db.received_marks.c
        out["forgotten"] = max(
            conn.execute(delete(db.received_marks).where(m.updated < now - forget_s, m.above == 0)).rowcount
            or 0,
            0,
        )
    return out


def received_count(engine: Engine) -> int:
    """The rows of ``received`` (on SQLite: the seqs waiting above a gap)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(db.received)).scalar() or 0)


def seen_count(engine: Engine) -> int:
    """How many (vehicle, boot, seq) keys the dedup holds as seen or given up (seqs count from
    1): the ``received`` rows and every seq at or under a boot's floor (SQLite: its mark). With no
    prune, the messages stored with a seq (the bench's zero-loss count)."""
    floors = db.received_marks if engine.dialect.name == "sqlite" else db.received_floor
    under = floors.c.hwm if engine.dialect.name == "sqlite" else floors.c.floor
    with engine.connect() as conn:
        rows = int(conn.execute(select(func.count()).select_from(db.received)).scalar() or 0)
        return rows + int(conn.execute(select(func.coalesce(func.sum(under), 0))).scalar() or 0)


def floors_of(conn: Connection, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The dedup floor of each (vehicle, boot) that has one (the store refuses seq <= floor)."""
    if not pairs:
        return {}
    rows = conn.execute(
        select(F.vehicle, F.boot, F.floor).where(tuple_(F.vehicle, F.boot).in_(sorted(pairs)))
    )
    return {(r.vehicle, r.boot): int(r.floor) for r in rows}
