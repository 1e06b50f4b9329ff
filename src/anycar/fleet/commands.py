"""Commands to vehicles: made by a user (or a rollout), kept in the database as ``pending``,
signed and published by the sender (``sent``), answered by the hub on ``command-results``
(``accepted``, ``partial``, ``rejected``, ``refused``, ``duplicate``, ``rate_limited``,
``invalid``), or ``expired`` when no answer came before the command's expiry; a rollout's
commands not yet sent when it is aborted are ``cancelled``.

A command is checked against the wire schema when it is made (so a bad one is a 400 for the
user, never a refusal from the hub later) and signed only when it is sent: its expiry counts
from then, so a command held back by a paused rollout does not go stale while it waits. Every
read is scoped to one tenant through its vehicle.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from anycar.fleet import db
from anycar.wire import WireError
from anycar.wire import messages as msg
from anycar.wire.schema import COMMAND_ACTIONS, check_message

PENDING, SENT, EXPIRED, CANCELLED = "pending", "sent", "expired", "cancelled"
OPEN = (PENDING, SENT)
SUCCEEDED = frozenset({"accepted"})
FAILED = frozenset({"partial", "rejected", "refused", "expired", "duplicate", "rate_limited", "invalid"})
# a campaign sent down (not a command action: it travels on its own channel) and what its ack says
CAMPAIGN = "campaign"
STATUSES = (PENDING, SENT, "accepted", *sorted(FAILED - {"expired"}), EXPIRED, CANCELLED, "stale", "removed")
MAX_TTL_S = 3600.0
USER_ACTIONS = tuple(
    a for a in COMMAND_ACTIONS if a not in ("firmware", "route")
)  # firmware goes by rollouts; route by an accepted plan (delivery-exec)
C = db.commands.c
V = db.vehicles.c
_PLACEHOLDER_SIGNATURE = {"algorithm": "Ed25519", "key_id": "0" * 16, "value": "A" * 88}


class CommandError(ValueError):
    """A command that cannot be made; ``status`` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400, reason: str = "bad_command") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def check_action(vehicle: str, action: str, body: Any) -> None:
    """Refuse (``CommandError``, naming the field) what the hub would refuse as invalid."""
    if action not in COMMAND_ACTIONS:
        raise CommandError(f"action: {action!r} is not one of {', '.join(COMMAND_ACTIONS)}")
    now = time.time()
    doc = msg.command_of(vehicle, "check", action, body, ts=now, expires=now + 1)
    doc["signature"] = _PLACEHOLDER_SIGNATURE  # the schema wants one; the real one comes at send time
    try:
        check_message(doc)
    except WireError as exc:
        raise CommandError(str(exc)) from None


def check_campaign(vehicle: str, document: Any) -> None:
    """Refuse a campaign document the hub would refuse by its schema (the catalog it checks itself)."""
    if not isinstance(document, dict):
        raise CommandError("campaign: a campaign document (id, version, signals, collect ...)")
    doc = msg.campaign(vehicle, document, ts=time.time())
    doc["signature"] = _PLACEHOLDER_SIGNATURE
    try:
        check_message(doc)
    except WireError as exc:
        raise CommandError(str(exc)) from None


def new_campaign(engine: Engine, tenant_id: int, vehicle: str, document: Any, **kw: Any) -> dict[str, Any]:
    """A campaign (or ``remove: true`` of one) for one vehicle, signed and sent like a command and
    answered by the hub's ``campaign-ack`` (accepted, refused, stale, removed)."""
    kw.setdefault("ttl_s", 600.0)
    with engine.begin() as conn:
        command_id = create(conn, tenant_id, vehicle, CAMPAIGN, document, **kw)
    found = get(engine, tenant_id, command_id)
    if found is None:
        raise CommandError("the campaign vanished", 500, "internal")
    return found


def apply_ack(conn: Connection, vehicle_id: int, doc: dict[str, Any], now: float) -> None:
    """A hub's ``campaign-ack``, in the ingest's transaction: the outcome of the open campaign of
    that id and version sent to this vehicle (acks of campaigns from files or elsewhere match none)."""
    rows = conn.execute(
        select(C.id, C.body).where(C.vehicle_id == vehicle_id, C.action == CAMPAIGN, C.answered.is_(None))
    ).all()
    for row in rows:
        body = row.body if isinstance(row.body, dict) else {}
        if body.get("id") == doc.get("campaign") and body.get("version") == doc.get("version"):
            conn.execute(
                update(db.commands)
                .where(C.id == row.id)
                .values(status=doc["status"], reason=doc.get("reason") or None, answered=now)
            )
            return


def create(
    conn: Connection,
    tenant_id: int,
    vehicle: str,
    action: str,
    body: Any,
    *,
    ttl_s: float = 30.0,
    user: str | None = None,
    rollout_id: int | None = None,
    accessory: str | None = None,
) -> str:
    """A pending command (or campaign) for one of the tenant's vehicles; returns its id."""
    row = conn.execute(
        select(V.id, V.kind, V.revoked).where(V.tenant_id == tenant_id, V.wire_id == vehicle[:64])
    ).first()
    if row is None:
        raise CommandError("no such vehicle", 404, "not_found")
    if row.kind != "hub":
        raise CommandError(f"vehicle {vehicle} is a plain tracker: it has no hub to command", 409, "no_hub")
    if row.revoked:
        raise CommandError(f"vehicle {vehicle} is revoked", 409, "revoked")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise CommandError(f"ttl_s: {ttl_s:g} is not in 1..{MAX_TTL_S:g} seconds")
    if action == CAMPAIGN:
        check_campaign(vehicle, body)
    else:
        check_action(vehicle, action, body)
    command_id = f"c-{secrets.token_hex(10)}"
    conn.execute(
        db.commands.insert().values(
            tenant_id=tenant_id,
            vehicle_id=row.id,
            command_id=command_id,
            action=action,
            body=body,
            status=PENDING,
            ttl_s=float(ttl_s),
            created=time.time(),
            user_name=user,
            rollout_id=rollout_id,
            accessory=accessory,
        )
    )
    return command_id


def new_command(
    engine: Engine, tenant_id: int, vehicle: str, action: str, body: Any, **kw: Any
) -> dict[str, Any]:
    """``create`` in its own transaction; returns the command as the API shows it."""
    if action not in USER_ACTIONS:
        raise CommandError(
            f"action: {action!r} is not one of {', '.join(USER_ACTIONS)} (firmware: a rollout)"
        )
    with engine.begin() as conn:
        command_id = create(conn, tenant_id, vehicle, action, body, **kw)
    found = get(engine, tenant_id, command_id)
    if found is None:  # we just wrote it in this tenant
        raise CommandError("the command vanished", 500, "internal")
    return found


def _row(r: Any, now: float) -> dict[str, Any]:
    status = r.status
    if status == SENT and r.expires is not None and r.expires < now:
        status = EXPIRED  # the sender writes it down too; reads never show a stale "sent"
    body = r.body
    if r.action == "firmware" and isinstance(body, dict):
        release = body.get("release") or {}
        body = {"accessory": body.get("accessory"), "version": release.get("version")}
    return {
        "id": r.command_id,
        "vehicle": r.wire_id,
        "action": r.action,
        "body": body,
        "status": status,
        "reason": r.reason,
        "results": r.results or [],
        "created": r.created,
        "sent": r.sent,
        "expires": r.expires,
        "answered": r.answered,
        "user": r.user_name,
        "rollout": r.rollout_id,
    }


def _select() -> Any:
    return select(db.commands, V.wire_id).join(db.vehicles, V.id == C.vehicle_id)


def get(engine: Engine, tenant_id: int, command_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        r = conn.execute(_select().where(C.tenant_id == tenant_id, C.command_id == command_id[:128])).first()
    return _row(r, time.time()) if r is not None else None


def listing(
    engine: Engine,
    tenant_id: int,
    *,
    vehicle: str | None = None,
    status: str | None = None,
    rollout: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. ``status`` filters on what is stored (``expired`` includes stale ``sent``)."""
    now = time.time()
    q = _select().where(C.tenant_id == tenant_id)
    if vehicle is not None:
        q = q.where(V.wire_id == vehicle[:64])
    if rollout is not None:
        q = q.where(C.rollout_id == rollout)
    if status == EXPIRED:
        q = q.where((C.status == EXPIRED) | ((C.status == SENT) & (C.expires < now)))
    elif status == SENT:
        q = q.where(C.status == SENT, C.expires >= now)
    elif status is not None:
        q = q.where(C.status == status)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(C.created.desc(), C.id.desc()).limit(limit))
        return [_row(r, now) for r in rows]


def apply_result(conn: Connection, vehicle_id: int, doc: dict[str, Any], now: float) -> int | None:
    """A hub's ``command-result``, in the ingest's transaction: the command's outcome (the first
    answer wins: a resent command's ``duplicate`` does not undo it). Returns its rollout, if any."""
    command_id = doc.get("command")
    if not command_id:
        return None
    row = conn.execute(
        select(C.id, C.rollout_id, C.answered).where(C.command_id == command_id, C.vehicle_id == vehicle_id)
    ).first()
    if row is None or row.answered is not None:
        return None
    conn.execute(
        update(db.commands)
        .where(C.id == row.id)
        .values(
            status=doc["status"], reason=doc.get("reason") or None, results=doc.get("results"), answered=now
        )
    )
    return int(row.rollout_id) if row.rollout_id is not None else None


def expire_overdue(conn: Connection, now: float) -> list[int]:
    """Mark sent commands past their expiry with no answer as expired; the rollouts they touch."""
    rows = conn.execute(
        select(C.id, C.rollout_id).where(C.status == SENT, C.expires < now, C.answered.is_(None))
    ).all()
    if rows:
        conn.execute(
            update(db.commands)
            .where(C.id.in_([r.id for r in rows]))
            .values(status=EXPIRED, reason="no answer before the command expired")
        )
    return sorted({int(r.rollout_id) for r in rows if r.rollout_id is not None})
