"""Alerts on late data: the rules' state at each change, the diff of a replay against what was
raised, and the review of offline alerts against the stream as it now stands.

A hub keeps its messages in a spool while it has no link (a tunnel, a dead zone) and sends them
when it is back, so samples arrive after newer ones were evaluated. The derivation then replays
the cloud rules over the stored stream from the rules' state just before the late sample (kept
in ``rule_checkpoints`` at each change, so nothing is written while nothing changes) and
compares what the replay raises with what is stored after that point:

- an alert the replay raises and the store lacks is inserted, ``late`` if its sample is older
  than what had been evaluated (``ts`` is the sample's time, ``raised_ts`` now);
- one the store has and the replay does not raise is withdrawn, with the reason;
- one both have (same type, subject and time) stays: a resent sample or late and live data
  interleaving raise nothing twice.

An ``offline`` alert ("no message for N minutes") is raised by the clock, not the stream. When
late data arrives, the samples between the last one heard before the alert and the alert's time
are read; if they show the vehicle was heard less than N minutes before the alert, the alert is
withdrawn ("data arrived late: the vehicle was online").

The hubs' own events are not replayed: the hub judged them on its full-rate data in order, and
the cloud maps one event to one alert with no state across events, so arrival order cannot change
them. A late one is raised ``late`` (the stream had been derived past it), a resent one raises
nothing (``anycar.fleet.domain``), and the replay here never withdraws a hub's alert, even of a
type a rule shares (the hub's ``low_soc``).
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import time
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, union_all, update
from sqlalchemy.engine import Connection

from anycar.fleet import db
from anycar.fleet.alerting import RULE_TYPES, subject
from anycar.fleet.domain_tables import alerts, rule_checkpoints

CP = rule_checkpoints.c
A = alerts.c


def fresh_state() -> dict[str, Any]:
    return {"soc_low": False, "speeding": {}, "cargo": {}, "doors": {}}


def state_before(conn: Connection, vehicle_id: int, ts: float) -> tuple[float | None, dict[str, Any]]:
    """The rules' state of the last change before ``ts`` and its time (None: none kept, the
    state a new vehicle starts with)."""
    found = conn.execute(
        select(CP.ts, CP.state).where(CP.vehicle_id == vehicle_id, CP.ts < ts).order_by(CP.ts.desc()).limit(1)
    ).first()
    if found is None:
        return None, fresh_state()
    return float(found.ts), dict(found.state)


def keep(
    conn: Connection, vehicle_id: int, points: list[tuple[float, dict[str, Any]]], keep_s: float
) -> None:
    """Store the states a pass changed to; forget those older than ``keep_s`` before the newest,
    except the last of them (the state in force at that horizon)."""
    if not points:
        return
    conn.execute(delete(rule_checkpoints).where(CP.vehicle_id == vehicle_id, CP.ts >= points[0][0]))
    conn.execute(
        insert(rule_checkpoints), [{"vehicle_id": vehicle_id, "ts": ts, "state": s} for ts, s in points]
    )
    horizon = points[-1][0] - keep_s
    last_old = select(func.max(CP.ts)).where(CP.vehicle_id == vehicle_id, CP.ts < horizon).scalar_subquery()
    conn.execute(delete(rule_checkpoints).where(CP.vehicle_id == vehicle_id, CP.ts < last_old))


def forget_after(conn: Connection, vehicle_id: int, ts: float) -> None:
    """The states after ``ts`` are about to be replayed: they go, the replay writes them again."""
    conn.execute(delete(rule_checkpoints).where(CP.vehicle_id == vehicle_id, CP.ts > ts))


def snapshot(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state)


def _key(a: dict[str, Any]) -> tuple[str, str, float]:
    return a["type"], subject(a), round(float(a["ts"]), 6)


def _hms(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S UTC")


def reconcile(
    conn: Connection, vehicle_id: int, after: float | None, until: float, produced: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The replay's alerts (every rule alert after ``after``) against the stored ones: returns
    (to insert, each marked late if at or before ``until``; withdrawn, as stored rows)."""
    query = select(A.id, A.type, A.ts, A.data, A.message, A.severity, A.lat, A.lon).where(
        A.vehicle_id == vehicle_id, A.type.in_(RULE_TYPES), A.withdrawn_ts.is_(None)
    )
    if after is not None:
        query = query.where(A.ts > after)
    rows = [dict(r._mapping) for r in conn.execute(query)]
    # a hub's own alert of a shared type (its low_soc) is not the rule's episode: never withdrawn
    stored = {_key(r): r for r in rows if (r["data"] or {}).get("source") != "hub"}
    new_keys = {_key(a) for a in produced}
    fresh = []
    for a in produced:
        if _key(a) not in stored:
            fresh.append({**a, "late": a["ts"] <= until})
    gone: list[dict[str, Any]] = []
    now = time.time()
    for key, row in sorted(stored.items(), key=lambda kv: kv[1]["ts"]):
        if key in new_keys:
            continue
        earlier = [
            a for a in produced if a["type"] == row["type"] and subject(a) == key[1] and a["ts"] < row["ts"]
        ]
        if earlier:
            first = min(a["ts"] for a in earlier)
            reason = (
                f"data arrived late: this {row['type'].replace('_', ' ')} began earlier, at {_hms(first)}"
            )
        else:
            reason = f"data arrived late: in time order the condition did not hold at {_hms(row['ts'])}"
        gone.append(withdraw(conn, row, reason, now))
    return fresh, gone


def withdraw(conn: Connection, row: dict[str, Any], reason: str, now: float) -> dict[str, Any]:
    conn.execute(
        update(alerts)
        .where(A.id == row["id"])
        .values(
            withdrawn_ts=now,
            withdrawn_reason=reason[:1000],
            cleared_ts=func.coalesce(A.cleared_ts, now),
        )
    )
    return {**row, "withdrawn_ts": now, "withdrawn_reason": reason}


def _times(conn: Connection, vehicle_id: int, a: float, b: float) -> list[float]:
    """Every stored sample time of the vehicle in ``(a, b]``, ascending."""
    p, sv = db.positions.c, db.signal_values.c
    q = union_all(
        select(p.ts.label("ts")).where(p.vehicle_id == vehicle_id, p.ts > a, p.ts <= b),
        select(sv.ts.label("ts")).where(sv.vehicle_id == vehicle_id, sv.ts > a, sv.ts <= b),
    ).subquery()
    return [float(t) for t in conn.execute(select(q.c.ts).distinct().order_by(q.c.ts)).scalars()]


def review_offline(
    conn: Connection, vehicle_id: int, from_ts: float, new: list[float] | None = None
) -> list[dict[str, Any]]:
    """Withdraw the vehicle's offline alerts that the stream, as it now stands, shows false:
    samples less than the rule's N minutes apart up to the alert's time. ``from_ts``: the
    earliest sample the last commits added (alerts raised before it are not concerned).
    ``new``: the times of the samples the pass read for the first time, ascending; an alert is
    then reviewed only if one of them falls between its last-heard time and its own: the
    others' stream did not change since they were raised or last reviewed, so their verdict
    stands (a pass with an old cursor no longer reads every alert's stretch again)."""
    cond = and_(A.vehicle_id == vehicle_id, A.type == "offline", A.withdrawn_ts.is_(None), A.ts > from_ts)
    if new is not None:
        if not new:
            return []
        cond = and_(cond, A.ts >= new[0])
    rows = conn.execute(select(A.id, A.type, A.ts, A.data, A.message, A.severity, A.lat, A.lon).where(cond))
    out: list[dict[str, Any]] = []
    now = time.time()
    for r in rows:
        row = dict(r._mapping)
        data = row["data"] or {}
        heard = float(data.get("last_seen", row["ts"]))
        limit_s = float(data.get("after_minutes", 10)) * 60
        if new is not None:
            i = bisect.bisect_right(new, heard)
            if i == len(new) or new[i] > row["ts"]:
                continue  # nothing new in (heard, alert]: reviewed with this stretch already
        times = _times(conn, vehicle_id, heard, row["ts"])
        if not times or row["ts"] - times[-1] >= limit_s:
            continue  # silent in the N minutes before the alert: it stands
        longest = max((t1 - t0, t0, t1) for t0, t1 in zip([heard, *times], times, strict=False))
        if longest[0] < limit_s:
            reason = (
                "data arrived late: the vehicle was online "
                f"(its messages were delayed; longest gap {longest[0]:.1f} s)"
            )
        else:
            reason = (
                f"data arrived late: the vehicle was heard at {_hms(times[-1])}, less than "
                f"{limit_s / 60:.0f} min before this alert (it was silent from {_hms(longest[1])} to {_hms(longest[2])})"
            )
        out.append(withdraw(conn, row, reason, now))
    return out
