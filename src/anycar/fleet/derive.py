"""One derivation pass over one vehicle: from its stored stream to trips, stops, geofence
enter/exit events and the cloud's alerts, in one transaction.

Each vehicle has a cursor row (``derive_cursors``): the time its stream has been derived to and
the state there (the trip segmenter's, the rules', which geofences it is in). A pass reads what
was stored after the cursor (``positions`` and ``signal_values``, one index range on
(vehicle, ts)), feeds it in time order, writes what closed, replaces the open trip and stop,
and moves the cursor. The cursor row is locked (``SELECT … FOR UPDATE`` on PostgreSQL), so two
ingest processes never derive one vehicle at once.

Late data (a sample at or before the cursor: a reordered batch, a second worker's batch
committed after a newer one): the trips and stops from the start of the last stop before the
late sample are deleted and derived again from the stored stream, so they come out as if the
data had arrived in order. The cloud rules and the geofences are evaluated again too, from the
rules' state just before the late sample (``anycar.fleet.latealerts``): an alert the late data
raises is stored ``late`` with its sample's time, one it makes false is withdrawn with the
reason, the rest stay as they were (a resent sample raises nothing twice); an offline alert the
late data shows false is withdrawn. A sample later than ``max_late_s`` behind the cursor is
stored and not re-derived.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from anycar.fleet import db, latealerts
from anycar.fleet.alerting import CloudRules
from anycar.fleet.domain_tables import alerts, derive_cursors, geofence_events, stops, trips
from anycar.fleet.geofences import Fence, containing
from anycar.fleet.trips import ORDER, Sample, Segmenter, TripConfig

NEW = -1e12  # a cursor that has derived nothing yet
ORDER.setdefault("sig", 6)
LEAD_S = 600.0  # the stream read before a replay's start, for where the vehicle was and its speed


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    id: int
    tenant_id: int
    wire_id: str
    brand: str


@dataclass(slots=True)
class Derived:
    """What one pass produced, for the live feed and the webhooks."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    geofence_events: list[dict[str, Any]] = field(default_factory=list)
    trips: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[dict[str, Any]] = field(default_factory=list)  # alerts late data made false
    rederived: bool = False
    late_skipped: bool = False
    already_derived: bool = False  # a "late" commit the last passes had read (domain-speed)
    unchanged: bool = False  # nothing after the cursor: nothing written (fleet-domain, session 6)
    samples: int = 0
    cursor_was: float = NEW  # the time the stream had been derived to before this pass


_DC = derive_cursors.c
# the hot path's statements, built once (domain-pass, session 7): building a select per call
# (operators, coercions, the cache key of a fresh tree) cost more CPU than SQLite running it
_LOCK = select(_DC.until_ts, _DC.state).where(_DC.vehicle_id == bindparam("vid")).with_for_update()
_MOVE = (
    update(derive_cursors)
    .where(_DC.vehicle_id == bindparam("vid"))
    .values(
        until_ts=bindparam("until_ts", type_=_DC.until_ts.type),
        state=bindparam("state", type_=_DC.state.type),
        updated=bindparam("updated", type_=_DC.updated.type),
    )
)


def _lock_cursor(conn: Connection, vehicle_id: int) -> Any:
    found = conn.execute(_LOCK, {"vid": vehicle_id}).first()
    if found is not None:
        return found
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        ins(derive_cursors)
        .values(vehicle_id=vehicle_id, until_ts=NEW, state={}, updated=time.time())
        .on_conflict_do_nothing()  # another process made it first: its row is locked below
    )
    return conn.execute(_LOCK, {"vid": vehicle_id}).one()


def _conds(after: Any, inclusive: bool, upto: Any = None) -> tuple[Any, Any]:
    """The positions' and the signal values' conditions of a read after ``after`` (and up to
    ``upto``): one place, so a window's recount reads exactly what its pass read."""
    p, sv = db.positions.c, db.signal_values.c
    if inclusive:
        pc, sc = p.ts >= after, (sv.ts >= after) & (sv.batch_ts >= after)
    else:
        pc, sc = p.ts > after, (sv.ts > after) & (sv.batch_ts > after)
    if upto is not None:
        pc, sc = pc & (p.ts <= upto), sc & (sv.ts <= upto)
    return pc, sc


Window = tuple[float, bool, float, int]  # a read's bounds (after, inclusive, up to) and its row count


def _window(raw: Any) -> Window | None:
    if not isinstance(raw, list) or len(raw) != 4:
        return None
    return float(raw[0]), bool(raw[1]), float(raw[2]), int(raw[3])


def _covers(win: Window, ts: float) -> bool:
    lo, inclusive, hi, _ = win
    return (ts > lo or (ts == lo and inclusive)) and ts <= hi


def _window_count(vehicle_id: Any, win: tuple[Any, bool, Any, Any]) -> Any:
    """How many rows the window holds now (the positions' and the signal values' counts)."""
    p, sv = db.positions.c, db.signal_values.c
    pc, sc = _conds(win[0], win[1], win[2])
    return (
        select(func.count()).select_from(db.positions).where(p.vehicle_id == vehicle_id, pc).scalar_subquery()
        + select(func.count())
        .select_from(db.signal_values)
        .where(sv.vehicle_id == vehicle_id, sc)
        .scalar_subquery()
    )


_READS: dict[tuple[bool, bool | None], Any] = {}


def _read_statement(inclusive: bool, check: bool | None) -> Any:
    """The stream read (and, with ``check`` the window's inclusiveness, its count) with its
    values as bound parameters ``vid``, ``after``, ``lo``, ``hi``: six statements, each built
    once (domain-pass)."""
    key = (inclusive, check)
    found = _READS.get(key)
    if found is not None:
        return found
    p, sv = db.positions.c, db.signal_values.c
    vid, after = bindparam("vid", type_=Integer), bindparam("after", type_=Float)
    pc, sc = _conds(after, inclusive)
    parts = [
        select(literal("sig").label("k"), sv.ts, null(), null(), null(), sv.path, sv.num, sv.value).where(
            sv.vehicle_id == vid, sc
        ),
        select(literal("pos"), p.ts, p.lat, p.lon, p.speed, null(), null(), null()).where(
            p.vehicle_id == vid, pc
        ),
    ]
    if check is not None:
        lo, hi = bindparam("lo", type_=Float), bindparam("hi", type_=Float)
        counted = cast(_window_count(vid, (lo, check, hi, None)), Float)
        parts.append(select(literal("n"), counted, null(), null(), null(), null(), null(), null()))
    _READS[key] = union_all(*parts)
    return _READS[key]


def _samples(
    conn: Connection,
    cfg: TripConfig,
    vehicle_id: int,
    after: float,
    inclusive: bool,
    check: Window | None = None,
) -> tuple[list[Sample], int, float, int | None]:
    """The stream after ``after`` in time order, how many rows it was read from, the newest
    row's time and, with ``check``, how many rows that window holds now. Positions, signal
    values and the window's count are read in ONE statement (domain-speed): one snapshot, so a
    batch that commits meanwhile is read whole or not at all (two statements could see its
    signal values and miss its position, and the next pass then had to re-derive), and a late
    commit's check costs no round trip of its own (fleet-domain, session 6)."""
    params: dict[str, Any] = {"vid": vehicle_id, "after": after}
    if check is not None:
        params.update(lo=check[0], hi=check[2])
    statement = _read_statement(inclusive, None if check is None else check[1])
    out: list[Sample] = []
    kinds = {cfg.speed: "speed", cfg.soc: "soc", cfg.energy: "energy", cfg.capacity: "capacity"}
    skip = {"Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"}
    rows, newest, held = 0, after, None
    for k, ts, lat, lon, speed, path, num, value in conn.execute(statement, params):
        if k == "n":
            held = int(ts)
            continue
        rows += 1
        newest = max(newest, ts)
        if k == "pos":
            out.append((ts, "pos", (lat, lon, speed)))
        elif path == cfg.ignition:
            out.append((ts, "ign", str(value) in cfg.ignition_on))
        elif path in kinds:
            if num is not None:
                out.append((ts, kinds[path], num))
        elif path not in skip:
            out.append((ts, "sig", (path, value)))
    out.sort(key=lambda s: (s[0], ORDER[s[1]]))
    return out, rows, newest, held


def _windows(last: Window | None, until: float, this: list[Any]) -> dict[str, list[Any]]:
    """The cursor's windows after a pass that read ``this``: ``win_last`` is this pass's read
    and ``win`` the union of it and the pass before when the two are contiguous, so a commit
    that either of the last two passes read is a count, not a re-derivation (with two workers
    a worker's pass can come after two of the other's; fleet-domain, session 6). Contiguous
    windows count as one: a signal value's ``batch_ts`` is at or after its ``ts``."""
    if last is not None and last[2] == until and this[0] == until and not this[1]:
        return {"win": [last[0], last[1], this[2], last[3] + this[3]], "win_last": this}
    return {"win": this, "win_last": this}


def derive_vehicle(
    conn: Connection,
    v: VehicleInfo,
    from_ts: float,
    cfg: TripConfig,
    rules: dict[str, Any],
    fences: list[Fence],
    *,
    everything: bool = False,
) -> Derived:
    """Derive ``v``'s stream from ``from_ts`` (the earliest sample the last commits added).
    ``everything``: its trips and stops again from its first sample (after trips.yaml changed;
    alerts and geofence events are not raised again)."""
    out = Derived()
    cursor = _lock_cursor(conn, v.id)
    until = out.cursor_was = float(cursor.until_ts)
    state: dict[str, Any] = dict(cursor.state or {})
    seg_state = state.get("seg")
    anchor: float | None = None
    if everything:
        from_ts = NEW
    rewind = until != NEW and from_ts <= until
    if rewind and not everything and until - from_ts > cfg.max_late_s:
        rewind, out.late_skipped = False, True
    win, last_win = _window(state.get("win")), _window(state.get("win_last"))
    read: tuple[list[Sample], int, float, int | None] | None = None
    if rewind and not everything and win is not None and _covers(win, from_ts) and win[2] <= until:
        # the last passes may have read this "late" commit already (the other worker's pass, or
        # this one's after its hook was queued): the rows after the cursor and the count of the
        # windows they read, in one statement; the same count as then: nothing new in them
        read = _samples(conn, cfg, v.id, until, False, check=win)
        if read[3] == win[3]:
            rewind, out.already_derived = False, True
    replay = rewind and not everything  # the rules too, from their state before the late sample
    rules_from, rules_state = until, state.get("rules")  # rules evaluate the samples after this
    ctx: dict[str, Any] = state.get("ctx") or {"lat": None, "lon": None, "speed": None}
    inside: list[int] | None = [i for i in state.get("inside", []) if any(f.id == i for f in fences)]
    seg_from = NEW
    if rewind:
        t, s_ = trips.c, stops.c
        anchor = conn.execute(
            select(func.max(s_.start_ts)).where(s_.vehicle_id == v.id, s_.start_ts <= from_ts)
        ).scalar()
        seg_from = anchor if anchor is not None else NEW
        conn.execute(delete(trips).where(t.vehicle_id == v.id, t.start_ts >= seg_from))
        conn.execute(delete(stops).where(s_.vehicle_id == v.id, s_.start_ts >= seg_from))
        seg_state = None
        out.rederived = True
        read_from = seg_from
        if replay:
            cp_ts, rules_state = latealerts.state_before(conn, v.id, from_ts)
            rules_from = NEW if cp_ts is None else cp_ts
            latealerts.forget_after(conn, v.id, rules_from)
            ctx, inside = {"lat": None, "lon": None, "speed": None}, None  # set by the lead-in
            read_from = min(seg_from, rules_from - LEAD_S) if rules_from != NEW else NEW
        samples, rows, newest, _ = _samples(conn, cfg, v.id, read_from, inclusive=True)
        win_from, win_inclusive = read_from, True
        last_win = None  # the replay's read window stands alone
    else:
        if read is None:
            read = _samples(conn, cfg, v.id, until, inclusive=False)
        samples, rows, newest, _ = read
        win_from, win_inclusive = until, False
        if not rows and not everything:  # nothing after the cursor (the other worker derived it)
            out.unchanged = True
            return out
    out.samples = len(samples)
    seg = Segmenter(cfg, cfg.pack(v.brand), seg_state)
    # the open trip and stop rows as stored (the cursor's state wrote them), unless a rewind
    # deleted them: rewritten below only if they changed (domain-speed)
    stored_open = None if rewind else (seg.open_trip(), seg.open_stop())
    cloud = CloudRules(rules, rules_state)
    by_id = {f.id: f for f in fences}
    last = until
    points: list[tuple[float, dict[str, Any]]] = []  # the rules' state at each change
    changed_at: float | None = None
    for sample in samples:
        ts, what, value = sample
        if what != "sig" and ts >= seg_from:
            seg.feed(sample)
        if ts <= rules_from:  # before the rules' start: it only says where and how fast
            if what == "pos":
                ctx.update(lat=value[0], lon=value[1])
                if value[2] is not None:
                    ctx["speed"] = value[2]
            elif what == "speed":
                ctx["speed"] = value
            continue
        if inside is None:
            lat, lon = ctx["lat"], ctx["lon"]
            inside = [f.id for f in containing(fences, lat, lon)] if lat is not None else []
        if changed_at is not None and ts > changed_at:
            points.append((changed_at, latealerts.snapshot(cloud.s)))
            changed_at = None
        last = max(last, ts)
        if what == "pos":
            lat, lon, speed = value
            ctx.update(lat=lat, lon=lon)
            if speed is not None:
                ctx["speed"] = speed
            now_in = [f.id for f in containing(fences, lat, lon)]
            for fid in now_in:
                if fid not in inside:
                    out.geofence_events.append(_fence_event(v, by_id[fid], ts, "enter", lat, lon))
            for fid in inside:
                if fid not in now_in and fid in by_id:
                    out.geofence_events.append(_fence_event(v, by_id[fid], ts, "exit", lat, lon))
            inside = now_in
        elif what == "speed":
            ctx["speed"] = value
        elif what == "soc":
            cloud.soc(ts, value, ctx)
        elif what == "sig":
            cloud.signal(ts, value[0], value[1], ctx)
        if what in ("pos", "speed") and ctx.get("speed") is not None:
            cloud.speed(ts, ctx["speed"], [by_id[i] for i in inside], ctx)
            cloud.check_doors(ts, ctx)
        if cloud.changed:
            cloud.changed, changed_at = False, ts
    if changed_at is not None:
        points.append((changed_at, latealerts.snapshot(cloud.s)))
    _write(conn, v, seg, out, stored_open)
    raised = cloud.out
    if replay:
        after = None if rules_from == NEW else rules_from
        raised, out.withdrawn = latealerts.reconcile(conn, v.id, after, until, cloud.out)
        _replace_fence_events(conn, v, after, by_id, out)
    now = time.time()
    for a in raised:
        row = {"tenant_id": v.tenant_id, "vehicle_id": v.id, **a, "raised_ts": now}
        row.setdefault("late", False)
        key = conn.execute(insert(alerts).values(**row).returning(alerts.c.id)).scalar_one()
        out.alerts.append({"id": int(key), "vehicle": v.wire_id, **row})
    if out.geofence_events:
        conn.execute(insert(geofence_events), out.geofence_events)
    if not everything:
        latealerts.keep(conn, v.id, points, cfg.max_late_s)
    offline_s = float(rules["offline"]["after_minutes"]) * 60
    if replay:
        out.withdrawn += latealerts.review_offline(conn, v.id, from_ts)
    elif until != NEW and not everything and now - until > offline_s and samples:
        # the cursor is older than the offline limit: this pass's samples (all after the
        # cursor) may fall before an offline alert; only the alerts they fall under are reviewed
        out.withdrawn += latealerts.review_offline(conn, v.id, from_ts, [s[0] for s in samples])
    for w in out.withdrawn:
        w.update(tenant_id=v.tenant_id, vehicle_id=v.id, vehicle=v.wire_id)
    conn.execute(
        _MOVE,
        {
            "vid": v.id,
            "until_ts": max(last, until),
            "state": {
                "seg": seg.s,
                "rules": cloud.s,
                "ctx": ctx,
                "inside": inside or [],
                **_windows(last_win, until, [win_from, win_inclusive, max(newest, last, until), rows]),
            },
            "updated": time.time(),
        },
    )
    for e in out.geofence_events:
        e["vehicle"] = v.wire_id
    return out


def _replace_fence_events(
    conn: Connection, v: VehicleInfo, after: float | None, by_id: dict[int, Fence], out: Derived
) -> None:
    """After a replay: the enter/exit events it made stand for those stored after ``after``;
    one stored and not made again goes (the late data shows it did not happen then), one made
    and not stored is new (and kept in ``out`` to be announced)."""
    ge = geofence_events.c
    query = select(ge.id, ge.geofence_id, ge.kind, ge.ts).where(ge.vehicle_id == v.id)
    if after is not None:
        query = query.where(ge.ts > after)
    stored = {(r.geofence_id, r.kind, round(r.ts, 6)): r.id for r in conn.execute(query)}
    made = {(e["geofence_id"], e["kind"], round(e["ts"], 6)) for e in out.geofence_events}
    stale = [i for k, i in stored.items() if k not in made and k[0] in by_id]
    if stale:
        conn.execute(delete(geofence_events).where(ge.id.in_(stale)))
    out.geofence_events = [
        e for e in out.geofence_events if (e["geofence_id"], e["kind"], round(e["ts"], 6)) not in stored
    ]


def _fence_event(
    v: VehicleInfo, fence: Fence, ts: float, kind: str, lat: float, lon: float
) -> dict[str, Any]:
    return {
        "tenant_id": v.tenant_id,
        "vehicle_id": v.id,
        "geofence_id": fence.id,
        "geofence_name": fence.name,
        "ts": ts,
        "kind": kind,
        "lat": lat,
        "lon": lon,
    }


_OPEN_COLS = {
    trips: [c.name for c in trips.c if c.name not in ("id", "tenant_id", "vehicle_id")],
    stops: [c.name for c in stops.c if c.name not in ("id", "tenant_id", "vehicle_id")],
}
_DROP_OPEN = {
    t: delete(t).where(and_(t.c.vehicle_id == bindparam("vid"), t.c.open.is_(True))) for t in (trips, stops)
}
_INSERT = {t: insert(t) for t in (trips, stops)}
# the open row rewritten in place (one statement, not a delete and an insert; domain-pass)
_REWRITE_OPEN = {
    t: update(t)
    .where(and_(t.c.vehicle_id == bindparam("vid"), t.c.open.is_(True)))
    .values({name: bindparam("n_" + name, type_=t.c[name].type) for name in cols})
    for t, cols in _OPEN_COLS.items()
}


def _replace_open(
    conn: Connection,
    table: Any,
    ids: dict[str, Any],
    was: dict[str, Any] | bool | None,
    now: dict[str, Any] | None,
    rows: list[dict[str, Any]],
) -> None:
    """The vehicle's open row of ``table`` made ``now`` (None: none) where it was ``was`` (as
    stored; True: not known): unchanged, nothing; an open row for an open row, one UPDATE; else
    the delete, and ``now`` added to the ``rows`` to insert."""
    if now == was:
        return
    if isinstance(was, dict) and now is not None:
        params = {"vid": ids["vehicle_id"], **{"n_" + k: now[k] for k in _OPEN_COLS[table]}}
        if conn.execute(_REWRITE_OPEN[table], params).rowcount == 1:
            return
    if was is not None:
        conn.execute(_DROP_OPEN[table], {"vid": ids["vehicle_id"]})
    if now:
        rows.append({**ids, **now})


def _write(
    conn: Connection,
    v: VehicleInfo,
    seg: Segmenter,
    out: Derived,
    stored_open: tuple[dict[str, Any] | None, dict[str, Any] | None] | None,
) -> None:
    """Closed trips and stops inserted; the open trip and stop replaced, each only when it
    differs from ``stored_open`` (what is stored, None: not known); a pass that only extends a
    stop or feeds a standing vehicle writes nothing here."""
    ids = {"tenant_id": v.tenant_id, "vehicle_id": v.id}
    was_trip, was_stop = stored_open if stored_open is not None else (True, True)
    trip_rows = [{**ids, **row} for row in seg.closed_trips]
    _replace_open(conn, trips, ids, was_trip, seg.open_trip(), trip_rows)
    stop_rows = [{**ids, **row} for row in seg.closed_stops]
    _replace_open(conn, stops, ids, was_stop, seg.open_stop(), stop_rows)
    if trip_rows:
        conn.execute(_INSERT[trips], trip_rows)
    if stop_rows:
        conn.execute(_INSERT[stops], stop_rows)
    out.trips = [{"vehicle": v.wire_id, **row} for row in seg.closed_trips]
    for row in out.trips:
        row["tenant_id"] = v.tenant_id
