"""delivery-exec, the fleet's half of executing the plan in force (issue 15, items 4 and 5).

- **Route push** (``push_routes``): when a plan is accepted, each vehicle's ordered stops go to its
  hub as a signed ``route`` command (through ``anycar.fleet.commands``, sent by the command
  sender), versioned per vehicle so a re-dispatch's route replaces the old one on the hub. The
  route carries what the driver needs (order, kind, place, window, planned time, weight, whether
  a PIN is asked); the PIN itself stays here and reaches the recipient by the first webhook. A
  swap stop planned into the route (``swapstops``) goes with it, in its place, as ``kind: swap``
  with the station, its reservation id and the window the pack is held.
- **Proof of delivery** (``PodJudge``): a ``pod`` message is checked against the hub key pinned
  for the vehicle (first use), stored as signed, and judged: the weight drop against the order's
  weight within the tolerance of ``data/execution.yaml``, the door opened and closed, the place
  within the radius, the PIN against the order's. Any mismatch is an alert (``pod_exception``)
  for the dispatcher; the order becomes delivered or failed; the customer's webhook is told.
- **Live ETA** (``EtaComponent``): a supervised loop recomputes each open stop's ETA from the
  vehicle's last position over the road network (``anycar.roads`` via the planner's matrix
  provider, else the straight-line estimate, marked), and sends ``delivery_eta`` /
  ``delivery_arriving`` webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import commands, db
from anycar.fleet.alerting import alert
from anycar.fleet.domain_tables import alerts
from anycar.fleet.tasks import Periodic, stop_task
from anycar.logistics import retry
from anycar.logistics.execution_tables import deliveries, hub_keys, pod_outbox, pods, route_pushes
from anycar.logistics.matrix import haversine_m
from anycar.wire import WireError, signature

log = logging.getLogger("anycar.logistics.execution")
D, V, OR = deliveries.c, db.vehicles.c, db.orders.c
_STOP_KIND = {"drop": "drop", "pickup": "pickup"}
_ROUTE_PUSH_LOCK = 0x726F7574  # pg_advisory_xact_lock's first key: "rout"


@cache
def settings() -> dict[str, Any]:
    raw = (resources.files("anycar.logistics") / "data" / "execution.yaml").read_text("utf-8")
    return dict(yaml.safe_load(raw))


def pin_digest(order: str, pin: str) -> str:
    import hashlib

    return hashlib.sha256(f"{order}:{pin}".encode()).hexdigest()


def _new_pin(length: int) -> str:
    return "".join(secrets.choice("1234") for _ in range(length))  # typeable on B1..B4


# -- route push --------------------------------------------------------------------------------
def push_routes(
    engine: Engine, tenant_id: int, plan: dict[str, Any], *, changed_only: bool = False
) -> list[dict[str, Any]]:
    """Each route of the accepted ``plan`` as a pending ``route`` command for its vehicle.

    ``changed_only`` (a move or a settled reservation on the plan in force): only the vehicles
    whose route differs from the one last pushed to them get one, the next version, which
    replaces the old on the hub (same plan: what it has done stays done); a vehicle of this plan
    left with no route (its last order moved away) gets an empty one, so it does not drive there."""
    cfg = settings()
    body = plan.get("plan", plan)
    plan_id = int(plan["id"])
    pushed = []
    now = time.time()
    with engine.begin() as conn:
        _lock_route_pushes(conn, tenant_id)
        ids = {r.wire_id: r.id for r in conn.execute(select(V.wire_id, V.id).where(V.tenant_id == tenant_id))}
        weights = {
            r.ref: float(r.weight_kg)
            for r in conn.execute(select(OR.ref, OR.weight_kg).where(OR.tenant_id == tenant_id))
        }
        wanted: dict[str, list[dict[str, Any]]] = {}
        for route in body.get("routes", []):
            wire_id = str(route["vehicle"]).split("#", 1)[0]
            if wire_id in ids:
                wanted[wire_id] = _route_stops(route, weights, cfg)
        if changed_only:
            last = _last_pushes(conn, tenant_id)
            for wire_id, vid in ids.items():  # a route of this plan gone: the vehicle is told
                had = last.get(vid)
                if wire_id not in wanted and had is not None and had[0] == plan_id and had[1]:
                    wanted[wire_id] = []
            wanted = {w: stops for w, stops in wanted.items() if last.get(ids[w]) != (plan_id, stops)}
        for wire_id, stops in wanted.items():
            vid = ids[wire_id]
            for i, stop in enumerate(stops):
                if stop["kind"] != "swap":
                    _keep_delivery(conn, tenant_id, vid, plan_id, i, stop, stop["pin_required"], cfg)
            version = (
                conn.execute(
                    select(func.max(route_pushes.c.version)).where(route_pushes.c.vehicle_id == vid)
                ).scalar()
                or 0
            ) + 1
            doc = {"plan": plan_id, "version": version, "stops": stops}
            try:
                cid = commands.create(conn, tenant_id, wire_id, "route", doc, ttl_s=float(cfg["route_ttl_s"]))
            except (
                commands.CommandError
            ) as exc:  # a plain tracker, a revoked vehicle: its driver uses the phone page
                pushed.append(
                    {
                        "vehicle": wire_id,
                        "version": None,
                        "command": None,
                        "stops": len(stops),
                        "skipped": str(exc),
                    }
                )
                continue
            conn.execute(
                insert(route_pushes).values(
                    tenant_id=tenant_id,
                    vehicle_id=vid,
                    plan_id=plan_id,
                    version=version,
                    command_id=cid,
                    created=now,
                    route=doc,
                )
            )
            pushed.append({"vehicle": wire_id, "version": version, "command": cid, "stops": len(stops)})
    return pushed


def _lock_route_pushes(conn: Connection, tenant_id: int) -> None:
    """One push of the tenant's routes at a time, to the end of the transaction.

    Two pushes at once (a console move and a route keeper pass) would both read the same last
    pushes and newest versions; the second now waits for the first to commit and reads what it
    wrote. On PostgreSQL an advisory lock, not row locks on ``vehicles``, so ingest's updates of
    those rows never wait. On SQLite the file's write lock, taken first (``BEGIN IMMEDIATE``;
    the driver would open the transaction only at the first write, after the reads): one writer
    at a time is all SQLite has, so ingest's commits wait the push's few milliseconds. The
    unique index on (vehicle, version) holds on both."""
    if conn.dialect.name == "postgresql":
        db.hold_advisory_lock(conn, _ROUTE_PUSH_LOCK, tenant_id)
    elif conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection  # sqlite3's own, where the transaction is seen
        if not raw.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _route_stops(
    route: dict[str, Any], weights: dict[str, float], cfg: dict[str, Any]
) -> list[dict[str, Any]]:
    """A plan's route as the route command's stops: what the driver needs, no PIN."""
    stops = []
    for s in (x for x in route["stops"] if _pushed(x)):
        if s["action"] == "swap":  # demo-route: the planned battery swap is a stop of the route
            stops.append(swap_stop(s))
            continue
        ref, kind = str(s["order"]), _STOP_KIND[s["action"]]
        needs_pin = kind in cfg["pin_required"]
        stops.append(
            {
                "order": ref,
                "kind": kind,
                "lat": float(s["lat"]),
                "lon": float(s["lon"]),
                "window": str(s.get("window") or "")[:64],
                "eta": str(s.get("arrival") or "")[:8],
                "weight_kg": weights.get(ref, 0.0),
                "pin_required": needs_pin,
                "pin_length": int(cfg["pin_length"]) if needs_pin else 0,
            }
        )
    return stops


def _last_pushes(conn: Connection, tenant_id: int) -> dict[int, tuple[int, list[dict[str, Any]]]]:
    """Each vehicle's newest pushed route: (plan, stops). A route its vehicle never took — its
    command expired unanswered, or the hub refused it as expired — is left out while that vehicle
    is online, so a ``changed_only`` push sends it again (the vehicle was offline past the
    route's time to live)."""
    r = route_pushes.c
    newest = (
        select(r.vehicle_id, func.max(r.version).label("version"))
        .where(r.tenant_id == tenant_id)
        .group_by(r.vehicle_id)
        .subquery()
    )
    lost = {vehicle for _, vehicle, _ in _lost_routes(conn, tenant_id, time.time())}
    rows = conn.execute(
        select(r.vehicle_id, r.plan_id, r.route).join(
            newest, and_(r.vehicle_id == newest.c.vehicle_id, r.version == newest.c.version)
        )
    ).all()
    return {
        int(x.vehicle_id): (int(x.plan_id), list((x.route or {}).get("stops", [])))
        for x in rows
        if int(x.vehicle_id) not in lost
    }


def _lost_routes(conn: Connection, tenant_id: int | None, now: float) -> list[tuple[int, int, int]]:
    """(tenant, vehicle, plan) of each online vehicle whose newest route is of its tenant's plan in
    force and whose command expired: unanswered past its expiry, or answered ``expired``."""
    r, c, p = route_pushes.c, db.commands.c, db.plans.c
    newest = select(r.vehicle_id, func.max(r.version).label("version")).group_by(r.vehicle_id)
    if tenant_id is not None:
        newest = newest.where(r.tenant_id == tenant_id)
    n = newest.subquery()
    expired = (c.status == commands.EXPIRED) | (
        (c.status == commands.SENT) & (c.expires < now) & c.answered.is_(None)
    )
    rows = conn.execute(
        select(r.tenant_id, r.vehicle_id, r.plan_id)
        .join(n, and_(r.vehicle_id == n.c.vehicle_id, r.version == n.c.version))
        .join(db.commands, c.command_id == r.command_id)
        .join(db.vehicles, V.id == r.vehicle_id)
        .join(db.plans, and_(p.id == r.plan_id, p.tenant_id == r.tenant_id))
        .where(expired, V.online.is_(True), V.revoked.is_(False), p.status == "accepted")
    ).all()
    return [(int(x.tenant_id), int(x.vehicle_id), int(x.plan_id)) for x in rows]


def repush_lost_routes(engine: Engine, now: float | None = None) -> list[dict[str, Any]]:
    """One pass: each plan in force with an online vehicle whose route expired before it reached
    the hub, its routes pushed again where the hub does not have them (``changed_only``)."""
    from anycar.logistics import board

    with engine.connect() as conn:
        lost = _lost_routes(conn, None, time.time() if now is None else now)
    pushed: list[dict[str, Any]] = []
    for tenant_id, plan_id in sorted({(t, p) for t, _, p in lost}):
        found = board.plan(engine, tenant_id, plan_id)
        if found is not None and found["status"] == "accepted":
            pushed += push_routes(engine, tenant_id, found, changed_only=True)
    return pushed


def _pushed(stop: dict[str, Any]) -> bool:
    """A stop the driver makes: an order's drop or pickup, or a planned swap at a station."""
    if stop.get("action") == "swap":
        return bool(stop.get("station"))
    return bool(stop.get("order")) and stop.get("action") in _STOP_KIND


def swap_stop(s: dict[str, Any]) -> dict[str, Any]:
    """A plan's swap stop (``swapstops.plan_stop``) as the route command's ``kind: swap`` stop."""
    out: dict[str, Any] = {
        "kind": "swap",
        "station": str(s["station"])[:64],
        "lat": float(s["lat"]),
        "lon": float(s["lon"]),
        "window": str(s.get("window") or "")[:64],
        "eta": str(s.get("arrival") or "")[:8],
    }
    if isinstance(s.get("reservation"), int):
        out["reservation"] = int(s["reservation"])
    return out


def _keep_delivery(
    conn: Connection,
    tenant_id: int,
    vid: int,
    plan_id: int,
    seq: int,
    stop: dict[str, Any],
    needs_pin: bool,
    cfg: dict[str, Any],
) -> None:
    """The order's execution row: a re-dispatch moves it and keeps its PIN and notifications; a
    stop its vehicle is arriving at stays ``arriving`` while it is that vehicle's next stop (a
    move re-pushes the route: the ETA loop says arriving once and would not say it again)."""
    found = conn.execute(
        select(D.id, D.pin, D.status, D.vehicle_id).where(
            and_(D.tenant_id == tenant_id, D.order_ref == stop["order"])
        )
    ).first()
    values = {
        "vehicle_id": vid,
        "plan_id": plan_id,
        "seq": seq,
        "kind": stop["kind"],
        "lat": stop["lat"],
        "lon": stop["lon"],
        "weight_kg": stop["weight_kg"],
        "window": stop["window"],
        "planned": stop["eta"],
    }
    if found is None:
        pin = _new_pin(int(cfg["pin_length"])) if needs_pin else None
        conn.execute(
            insert(deliveries).values(
                tenant_id=tenant_id, order_ref=stop["order"], pin=pin, status="planned", notified={}, **values
            )
        )
    elif found.status != "delivered":  # failed: pushed again for another attempt (``retry``)
        keep = found.status == "arriving" and found.vehicle_id == vid and seq == 0  # still the next stop
        conn.execute(
            update(deliveries)
            .where(D.id == found.id)
            .values(**values, status="arriving" if keep else "planned")
        )


def route_of(engine: Engine, tenant_id: int, vehicle: str) -> dict[str, Any] | None:
    """The newest route pushed to one of the tenant's vehicles, with its command's status."""
    r = route_pushes.c
    with engine.connect() as conn:
        row = conn.execute(
            select(r.version, r.plan_id, r.command_id, r.created, r.route)
            .join(db.vehicles, V.id == r.vehicle_id)
            .where(and_(r.tenant_id == tenant_id, V.wire_id == vehicle[:64]))
            .order_by(r.version.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    cmd = commands.get(engine, tenant_id, row.command_id)
    return {
        "vehicle": vehicle,
        "version": row.version,
        "plan": row.plan_id,
        "command": row.command_id,
        "command_status": cmd["status"] if cmd else None,
        "pushed": row.created,
        "stops": row.route["stops"],
    }


def delivery_rows(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    """Every order in execution with its live ETA (no PIN: that is the recipient's)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries, V.wire_id)
            .outerjoin(db.vehicles, V.id == D.vehicle_id)
            .where(D.tenant_id == tenant_id)
            .order_by(D.vehicle_id, D.seq)
        ).all()
    return [
        {
            "order": r.order_ref,
            "vehicle": r.wire_id,
            "plan": r.plan_id,
            "seq": r.seq,
            "kind": r.kind,
            "status": r.status,
            "window": r.window,
            "planned": r.planned,
            "weight_kg": r.weight_kg,
            "pin_required": r.pin is not None,
            "eta_ts": r.eta_ts,
            "eta_updated": r.eta_updated,
            "eta_source": r.eta_source,
        }
        for r in rows
    ]


def pod_rows(engine: Engine, tenant_id: int, order: str | None = None) -> list[dict[str, Any]]:
    p = pods.c
    query = select(pods, V.wire_id).join(db.vehicles, V.id == p.vehicle_id).where(p.tenant_id == tenant_id)
    if order is not None:
        query = query.where(p.order_ref == order[:64])
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(p.id)).all()
    return [
        {
            "id": r.id,
            "order": r.order_ref,
            "vehicle": r.wire_id,
            "ts": r.ts,
            "outcome": r.outcome,
            "verified": r.verified,
            "key_id": r.key_id,
            "exceptions": r.exceptions,
            "record": r.record,
            "received": r.received,
        }
        for r in rows
    ]


def delivery_stops(engine: Engine, tenant_id: int, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Per order in execution: its stop (place, weight, kind) and PIN, for judging a proof again."""
    if not refs:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(D.order_ref, D.lat, D.lon, D.weight_kg, D.kind, D.pin).where(
                and_(D.tenant_id == tenant_id, D.order_ref.in_(sorted(set(refs))[:1000]))
            )
        ).all()
    return {
        r.order_ref: {"lat": r.lat, "lon": r.lon, "weight_kg": r.weight_kg, "kind": r.kind, "pin": r.pin}
        for r in rows
    }


# -- proof of delivery ---------------------------------------------------------------------------
def outbox_put(conn: Connection, tenant_id: int, kind: str, item: dict[str, Any]) -> None:
    """A webhook to send once the caller's transaction commits (``PodOutbox`` sends it)."""
    conn.execute(insert(pod_outbox).values(tenant_id=tenant_id, kind=kind, item=item, created=time.time()))


def cap_reached(conn: Connection, tenant_id: int, ref: str, outcome: dict[str, Any], ts: float) -> bool:
    """The event of a failure that reached the retry cap (``retry.decide`` set ``final``): an
    alert for the dispatcher on the order's vehicle (``delivery_final``), sent as the ``alert``
    webhook after the caller's transaction commits. False (nothing raised) below the cap."""
    if not outcome.get("final"):
        return False
    row = conn.execute(
        select(OR.vehicle_id, V.wire_id)
        .select_from(db.orders.outerjoin(db.vehicles, OR.vehicle_id == V.id))
        .where(and_(OR.tenant_id == tenant_id, OR.ref == ref))
    ).first()
    if row is None or row.vehicle_id is None:  # never on a vehicle: the board shows it, no alert
        return False
    message = f"order {ref}: {outcome.get('retry')} (last reason: {outcome.get('reason')})"
    data = {
        "order": ref,
        "attempts": outcome.get("attempts"),
        "max_attempts": outcome.get("max_attempts"),
        "then": outcome["final"],
        "reason": outcome.get("reason"),
    }
    found = {"tenant_id": tenant_id, "vehicle_id": row.vehicle_id,
             **alert(ts, "delivery_final", "warning", message, data, None, None)}  # fmt: skip
    conn.execute(insert(alerts).values(**found))
    outbox_put(conn, tenant_id, "alert", {"vehicle": row.wire_id, **found})
    return True


class PodOutbox:
    """Hands the POD webhooks of committed transactions to the webhook sender, each row once.

    A POD is judged inside the ingest batch's transaction; its webhooks (``delivery_delivered``,
    ``delivery_failed``, the dispatcher's ``alert``) are rows of ``pod_outbox`` in that same
    transaction, so a batch that is rolled back and retried leaves them once, and nothing is
    sent for a POD that was never stored. Each pass claims unsent rows one by one (``sent`` set
    where it was NULL: two fleet processes never both claim a row) and submits them with
    ``pod-ROW`` as the delivery id (``X-Anycar-Delivery``), the same for the sender's HTTP
    retries, so a receiver can drop a repeat. Woken after each ingest commit; polls too. A
    failing pass is logged and counted and the next one runs."""

    name = "pod-outbox"

    def __init__(self, engine: Engine, notifier: Any, interval_s: float = 0.5, batch: int = 200) -> None:
        self.engine, self.notifier, self.interval_s, self.batch = engine, notifier, interval_s, batch
        self.sent = 0
        self.crashes = 0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def drain(self, now: float | None = None) -> int:
        """One pass: claim and submit what is unsent; how many were submitted."""
        o = pod_outbox.c
        done = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(o.id, o.tenant_id, o.kind, o.item)
                .where(o.sent.is_(None))
                .order_by(o.id)
                .limit(self.batch)
            ).all()
            for r in rows:
                claimed = conn.execute(
                    update(pod_outbox)
                    .where(and_(o.id == r.id, o.sent.is_(None)))
                    .values(sent=time.time() if now is None else now)
                ).rowcount
                if claimed:
                    self.notifier.submit(r.tenant_id, r.kind, dict(r.item), delivery_id=f"pod-{r.id}")
                    done += 1
        self.sent += done
        return done

    def wake(self, *_: Any) -> None:
        """Thread-safe (the ingest commits off the event loop): run a pass now."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def start(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="pod-outbox")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._loop = None

    async def _run(self) -> None:
        event = self._wake
        while True:
            try:
                await asyncio.to_thread(self.drain)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.crashes += 1
                log.exception("POD outbox pass failed; the rows stay unsent for the next one")
            if event is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.interval_s)
                event.clear()

    def status(self) -> dict[str, Any]:
        return {"sent": self.sent, "crashes": self.crashes, "interval_s": self.interval_s}


class PodJudge:
    """The ingest store's handler for ``pod`` messages (runs inside the batch's transaction); its
    webhooks go to ``pod_outbox`` in that transaction (``PodOutbox`` sends them after)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """``clock``: the logistics room's "now" (a failure's time, from which its retry runs)."""
        self.counts: dict[str, int] = {}
        self.clock = clock

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def __call__(self, conn: Connection, ref: Any, doc: dict[str, Any]) -> None:
        record, now = doc["record"], time.time()
        verified, key_id, note = self._verify(conn, ref.id, doc, now)
        found = conn.execute(
            select(deliveries).where(and_(D.tenant_id == ref.tenant_id, D.order_ref == record["order"]))
        ).first()
        problems = self.exceptions(record, found, ref.id) if verified else [note]
        conn.execute(
            insert(pods).values(
                tenant_id=ref.tenant_id,
                vehicle_id=ref.id,
                order_ref=record["order"],
                ts=float(record["ts"]),
                outcome=record["outcome"],
                verified=verified,
                key_id=key_id,
                exceptions=problems,
                record=record,
                received=now,
                note=note or None,
            )
        )
        self._count("verified" if verified else "unverified")
        pos = record.get("position") or {}
        if problems:
            self._count("exceptions")
            row = {
                "tenant_id": ref.tenant_id,
                "vehicle_id": ref.id,
                **alert(
                    float(record["ts"]),
                    "pod_exception",
                    "warning",
                    f"order {record['order']}: " + "; ".join(problems),
                    {"order": record["order"], "outcome": record["outcome"], "exceptions": problems},
                    pos.get("lat"),
                    pos.get("lon"),
                ),
            }
            conn.execute(insert(alerts).values(**row))
            outbox_put(conn, ref.tenant_id, "alert", {"vehicle": ref.wire_id, **row})
        if not verified or found is None:
            return
        status = record["outcome"]
        conn.execute(update(deliveries).where(D.id == found.id).values(status=status))
        changes: dict[str, Any] = {"status": status, "updated": now}
        if status == "failed":  # back to dispatch with its reason and when it may be tried again
            fields = conn.execute(
                select(OR.fields).where(and_(OR.tenant_id == ref.tenant_id, OR.ref == record["order"]))
            ).scalar()
            if fields is not None:
                reason = str(record.get("reason") or "no reason given")
                outcome = retry.decide(dict(fields), reason, self.clock(), ref.wire_id)
                changes["fields"] = {**fields, "outcome": outcome}
        conn.execute(
            update(db.orders)
            .where(and_(OR.tenant_id == ref.tenant_id, OR.ref == record["order"]))
            .values(**changes)
        )
        final = (changes.get("fields") or {}).get("outcome") or {}
        cap_reached(conn, ref.tenant_id, record["order"], final, self.clock())
        outbox_put(
            conn,
            ref.tenant_id,
            f"delivery_{status}",
            {
                "order": record["order"],
                "vehicle": ref.wire_id,
                "ts": record["ts"],
                "exceptions": problems,
                **({"reason": record["reason"]} if record.get("reason") else {}),
                **(
                    {"final": final["final"], "attempts": final.get("attempts")} if final.get("final") else {}
                ),
            },
        )

    @staticmethod
    def _verify(conn: Connection, vehicle_id: int, doc: dict[str, Any], now: float) -> tuple[bool, str, str]:
        """(verified, key id, why not): the key is pinned on first use; a record signed by any
        other key later is kept but not trusted (and raised as an exception)."""
        record = doc["record"]
        try:
            public = signature.parse_public_key(doc["public_key"], "public_key")
        except WireError as exc:
            return False, "0" * 16, f"bad hub key: {exc}"
        kid = signature.key_id(public)
        pinned = conn.execute(select(hub_keys).where(hub_keys.c.vehicle_id == vehicle_id)).first()
        if pinned is None:
            conn.execute(
                insert(hub_keys).values(
                    vehicle_id=vehicle_id, key_id=kid, public_key=doc["public_key"], first_seen=now
                )
            )
        elif pinned.key_id != kid:
            return False, kid, f"signed by hub key {kid}, but this vehicle's key is {pinned.key_id}"
        try:
            signature.verify(record, {kid: public})
        except WireError as exc:
            return False, kid, f"signature: {exc}"
        return True, kid, ""

    @staticmethod
    def exceptions(record: dict[str, Any], found: Any, vehicle_id: int) -> list[str]:
        """What does not match the order: every reason, in words."""
        cfg = settings()
        if found is None:
            return [f"order {record['order']} is not in execution"]
        out = []
        if found.vehicle_id != vehicle_id:
            out.append("reported by a vehicle the order is not planned on")
        if record["outcome"] == "failed":
            return out
        door = record["door"]
        if door.get("opened") is None:
            out.append("the cargo door never opened")
        elif door.get("closed") is None:
            out.append("the cargo door was not closed")
        drop = record["weight"].get("drop_kg")
        tol = max(
            float(cfg["weight_tolerance"]["abs_kg"]), float(cfg["weight_tolerance"]["rel"]) * found.weight_kg
        )
        expected = found.weight_kg if found.kind == "drop" else -found.weight_kg
        if drop is None:
            out.append("no weight reading from the cargo load cell")
        elif abs(drop - expected) > tol:
            out.append(f"weight drop {drop:.2f} kg does not match the order's {expected:.2f} kg (±{tol:.2f})")
        pos = record.get("position")
        if pos is None:
            out.append("no position")
        else:
            away = haversine_m((pos["lat"], pos["lon"]), (found.lat, found.lon))
            if away > float(cfg["place_radius_m"]):
                out.append(f"delivered {away:.0f} m from the stop (limit {cfg['place_radius_m']} m)")
        if found.pin is not None:
            digest = record["pin"].get("digest")
            if digest is None:
                out.append("no PIN entered")
            elif not secrets.compare_digest(digest, pin_digest(found.order_ref, found.pin)):
                out.append("wrong PIN")
        return out


# -- live ETA ------------------------------------------------------------------------------------
def _clock_s(text: str | None) -> float | None:
    if not text or ":" not in text:
        return None
    h, m = text.split(":", 1)
    return int(h) * 3600 + int(m) * 60 if h.isdigit() and m.isdigit() else None


def update_etas(engine: Engine, provider: Any, notifier: Any = None, now: float | None = None) -> int:
    """One pass: every open stop's ETA from its vehicle's last position; the webhooks. Returns
    how many stops got an estimate."""
    cfg = settings()["eta"]
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries, V.wire_id, V.last_lat, V.last_lon, OR.fields)
            .join(db.vehicles, V.id == D.vehicle_id)
            .outerjoin(db.orders, and_(OR.tenant_id == D.tenant_id, OR.ref == D.order_ref))
            .where(D.status.in_(["planned", "arriving"]))
            .order_by(D.vehicle_id, D.seq)
        ).all()
    by_vehicle: dict[int, list[Any]] = {}
    for r in rows:
        if r.last_lat is not None and r.last_lon is not None:
            by_vehicle.setdefault(r.vehicle_id, []).append(r)
    done = 0
    for stops in by_vehicle.values():
        first = stops[0]
        points = [(first.last_lat, first.last_lon), *[(s.lat, s.lon) for s in stops]]
        m = provider.matrix(points)
        source = f"{m.source}{' (estimate)' if m.estimate else ''}"[:64]
        t = now
        with engine.begin() as conn:
            for i, s in enumerate(stops):
                t += float(m.seconds[i][i + 1])
                eta = t
                service = float((s.fields or {}).get("service_s") or 0)
                t += service
                notified = dict(s.notified or {})
                changes: dict[str, Any] = {"eta_ts": eta, "eta_updated": now, "eta_source": source}
                item = {
                    "order": s.order_ref,
                    "vehicle": s.wire_id,
                    "eta_ts": round(eta, 1),
                    "window": s.window,
                    "source": source,
                }
                if "eta" not in notified or abs(notified["eta"] - eta) >= float(cfg["notify_change_s"]):
                    first_time = "eta" not in notified
                    notified["eta"] = eta
                    extra = {"pin": s.pin} if first_time and s.pin else {}
                    if notifier is not None:
                        notifier.submit(s.tenant_id, "delivery_eta", {**item, **extra})
                meters = float(m.meters[0][1]) if i == 0 else None
                near = i == 0 and (
                    eta - now <= float(cfg["arriving_s"])
                    or (meters is not None and meters <= float(cfg["arriving_m"]))
                )
                if near and "arriving" not in notified:
                    notified["arriving"] = now
                    changes["status"] = "arriving"
                    if notifier is not None:
                        notifier.submit(s.tenant_id, "delivery_arriving", item)
                changes["notified"] = notified
                conn.execute(update(deliveries).where(D.id == s.id).values(**changes))
                done += 1
    return done


class EtaComponent(Periodic):
    """The live ETA loop as a fleet component; a crash is logged, counted and the loop restarts."""

    name = "delivery-eta"
    log = log
    failure = "delivery ETA pass failed; restarting"

    def __init__(
        self, engine: Engine, provider: Any, notifier: Any = None, interval_s: float | None = None
    ) -> None:
        super().__init__(settings()["eta"]["interval_s"] if interval_s is None else interval_s)
        self.engine, self.provider, self.notifier = engine, provider, notifier

    async def run_once(self) -> None:
        await asyncio.to_thread(update_etas, self.engine, self.provider, self.notifier)

    def status(self) -> dict[str, Any]:
        return {"passes": self.passes, "crashes": self.crashes, "interval_s": self.interval_s}


class RouteKeeper(Periodic):
    """``repush_lost_routes`` every ``interval_s`` (a fleet component): a hub offline past its
    route's time to live gets the route again once it is back, not only at the next accept or
    move. A failing pass is logged and counted and the next one runs."""

    name = "route-keeper"
    log = log
    failure = "re-pushing expired routes failed; the next pass tries again"

    def __init__(
        self, engine: Engine, wake: Callable[[], Any] | None = None, interval_s: float | None = None
    ) -> None:
        super().__init__(settings()["route_repush_s"] if interval_s is None else interval_s)
        self.engine, self.wake = engine, wake
        self.repushed = 0

    async def run_once(self) -> None:
        pushed = await asyncio.to_thread(repush_lost_routes, self.engine)
        sent = [p for p in pushed if p["command"]]
        self.repushed += len(sent)
        for p in sent:
            log.info(
                "route %s v%s pushed again to %s (the last one expired)",
                p["command"],
                p["version"],
                p["vehicle"],
            )
        if sent and self.wake is not None:
            self.wake()

    def status(self) -> dict[str, Any]:
        return {"passes": self.passes, "repushed": self.repushed, "crashes": self.crashes}
