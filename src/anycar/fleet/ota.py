"""Firmware for accessories, over the air: a ledger of releases and rollouts across a tenant's fleet.

The ledger works as Matter's DCL does: a vendor's public key is registered once
(``anycar fleet vendor-key add``), each release is a document that key signed (vendor, product,
version, size, SHA-256; ``firmware-release.v1.schema.json``), and the fleet accepts an upload only
if the signature holds, the image is the one signed, and the version is newer than every earlier
release of that product: versions only grow. Hubs check the same signature again against their own
trust registry before they hand the image to the accessory, and the accessory checks the hash.

A rollout takes a release to a percentage of the tenant's matching accessories (same vendor and
product, older firmware, from the inventory the hubs report), chosen by a stable hash so that
raising the percentage only adds to the ones already chosen. At most ``max_in_flight`` of its
commands are out at once; once ``max_failures`` have failed (refused, rejected, expired ...) it
pauses itself, with the reason. Pause, resume and abort by hand; ``progress`` counts each status.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from anycar.fleet import commands as cmds
from anycar.fleet import db
from anycar.wire import WireError, signature
from anycar.wire.firmware import check_release, newer

MAX_IMAGE = 32 * 1024 * 1024
K = db.vendor_keys.c
R = db.firmware_releases.c
RO = db.rollouts.c
A = db.accessories.c
V = db.vehicles.c
C = db.commands.c


class OtaError(ValueError):
    """A release or rollout request that cannot be honoured; ``status`` for the API."""

    def __init__(self, message: str, status: int = 400, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


# ---- vendor keys ---------------------------------------------------------------------------------
def add_vendor_key(engine: Engine, vendor_id: int, public_key: str, label: str = "") -> str:
    """Trust ``public_key`` (base64 of 32 raw bytes) to sign releases of ``vendor_id``; its key id."""
    if not 1 <= vendor_id <= 65535:
        raise OtaError(f"vendor id {vendor_id}: 1..65535 (16 bits, as in Matter)")
    try:
        key = signature.parse_public_key(public_key, "public key")
    except WireError as exc:
        raise OtaError(str(exc)) from None
    kid = signature.key_id(key)
    try:
        with engine.begin() as conn:
            conn.execute(
                db.vendor_keys.insert().values(
                    key_id=kid,
                    vendor_id=vendor_id,
                    public_key=public_key.strip(),
                    label=label[:128],
                    added=time.time(),
                )
            )
    except IntegrityError:
        raise OtaError(f"key {kid} is already registered", 409, "exists") from None
    return kid


def vendor_keys(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(db.vendor_keys).order_by(K.vendor_id, K.added))
        return [dict(r._mapping) for r in rows]


def _keys_of(conn: Connection, vendor_id: int) -> dict[str, Any]:
    rows = conn.execute(select(K.key_id, K.public_key).where(K.vendor_id == vendor_id, K.revoked.is_(None)))
    return {r.key_id: signature.parse_public_key(r.public_key) for r in rows}


# ---- the ledger ----------------------------------------------------------------------------------
def _release_row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "vendor_id": r.vendor_id,
        "product_id": r.product_id,
        "version": r.version,
        "size": r.size,
        "sha256": r.sha256,
        "notes": (r.document or {}).get("notes", ""),
        "key_id": ((r.document or {}).get("signature") or {}).get("key_id"),
        "uploaded": r.uploaded,
        "uploaded_by": r.uploaded_by,
    }


def upload(engine: Engine, document: Any, image: bytes, *, user: str | None = None) -> dict[str, Any]:
    """Add a release to the ledger after checking it whole; the ledger entry as the API shows it."""
    if not isinstance(document, dict):
        raise OtaError("release: a JSON object (the vendor-signed release document)")
    if not image or len(image) > MAX_IMAGE:
        raise OtaError(f"image: 1..{MAX_IMAGE} bytes, got {len(image)}")
    vendor = document.get("vendor_id")
    with engine.begin() as conn:
        keys = _keys_of(conn, vendor) if isinstance(vendor, int) else {}
        try:
            check_release(document, keys)
        except WireError as exc:
            if exc.reason == "signature":
                raise OtaError(f"release: {exc} (vendor {vendor})", 403, "signature") from None
            raise OtaError(str(exc)) from None
        if document["size"] != len(image):
            raise OtaError(f"image: {len(image)} bytes, the release says {document['size']}")
        if hashlib.sha256(image).hexdigest() != document["sha256"]:
            raise OtaError("image: bad hash: SHA-256 differs from the signed release", 400, "bad_hash")
        earlier = conn.execute(
            select(R.version).where(R.vendor_id == vendor, R.product_id == document["product_id"])
        ).scalars()
        for version in earlier:
            if not newer(document["version"], version):
                raise OtaError(
                    f"version {document['version']} is not newer than {version}: versions only grow",
                    409,
                    "not_newer",
                )
        key = conn.execute(
            db.firmware_releases.insert().values(
                vendor_id=vendor,
                product_id=document["product_id"],
                version=document["version"],
                size=len(image),
                sha256=document["sha256"],
                document=document,
                image=image,
                url_token=secrets.token_urlsafe(24),
                uploaded=time.time(),
                uploaded_by=user,
            )
        ).inserted_primary_key
        if key is None:
            raise OtaError("the release was not stored", 500, "internal")
        row = conn.execute(select(db.firmware_releases).where(R.id == key[0])).one()
    return _release_row(row)


def releases(
    engine: Engine, *, vendor_id: int | None = None, product_id: int | None = None
) -> list[dict[str, Any]]:
    q = select(*[c for c in db.firmware_releases.c if c.name != "image"])
    if vendor_id is not None:
        q = q.where(R.vendor_id == vendor_id)
    if product_id is not None:
        q = q.where(R.product_id == product_id)
    with engine.connect() as conn:
        return [_release_row(r) for r in conn.execute(q.order_by(R.vendor_id, R.product_id, R.id))]


def image(engine: Engine, token: str) -> bytes | None:
    """The image behind a release's download token (the URL hubs fetch), if any."""
    if not token or len(token) > 64:
        return None
    with engine.connect() as conn:
        return conn.execute(select(R.image).where(R.url_token == token)).scalar()


# ---- rollouts ------------------------------------------------------------------------------------
def _rank(release_id: int, vehicle: str, instance: str) -> str:
    return hashlib.sha256(f"{release_id}:{vehicle}:{instance}".encode()).hexdigest()


def _candidates(conn: Connection, tenant_id: int, release: Any) -> list[tuple[str, str, str]]:
    """(rank, vehicle, instance) of the tenant's accessories this release would upgrade."""
    rows = conn.execute(
        select(V.wire_id, A.instance, A.firmware)
        .join(db.vehicles, V.id == A.vehicle_id)
        .where(
            V.tenant_id == tenant_id,
            V.revoked.is_(False),
            A.vendor_id == release.vendor_id,
            A.product_id == release.product_id,
        )
    )
    out = []
    for r in rows:
        try:
            older = newer(release.version, r.firmware)
        except WireError:
            older = False  # a version we cannot order is left alone
        if older:
            out.append((_rank(release.id, r.wire_id, r.instance), r.wire_id, r.instance))
    return sorted(out)


def _target(conn: Connection, rollout: Any, release: Any) -> int:
    """Make commands for the rollout's share of matching accessories not yet targeted; how many."""
    candidates = _candidates(conn, rollout.tenant_id, release)
    targeted = {
        (r.wire_id, r.accessory)
        for r in conn.execute(
            select(V.wire_id, C.accessory)
            .join(db.vehicles, V.id == C.vehicle_id)
            .where(C.rollout_id == rollout.id)
        )
    }
    total = len({(v, i) for _, v, i in candidates} | targeted)
    share = math.ceil(total * rollout.percent / 100)
    chosen = [c for c in candidates if (c[1], c[2]) not in targeted][: max(0, share - len(targeted))]
    url = f"{rollout.base_url.rstrip('/')}/firmware/{release.url_token}.bin"
    for _, vehicle, instance in chosen:
        cmds.create(
            conn,
            rollout.tenant_id,
            vehicle,
            "firmware",
            {"accessory": instance, "release": release.document, "url": url},
            ttl_s=cmds.MAX_TTL_S,
            rollout_id=rollout.id,
            accessory=instance,
        )
    return len(chosen)


def start(
    engine: Engine,
    tenant_id: int,
    release_id: int,
    *,
    percent: int,
    base_url: str,
    max_failures: int = 3,
    max_in_flight: int = 10,
) -> dict[str, Any]:
    """A running rollout of a release to ``percent`` of the tenant's matching accessories."""
    if not 1 <= percent <= 100:
        raise OtaError(f"percent: {percent} is not in 1..100")
    if not 1 <= max_failures <= 100_000 or not 1 <= max_in_flight <= 10_000:
        raise OtaError("max_failures: 1..100000, max_in_flight: 1..10000")
    if not base_url.startswith(("http://", "https://")) or len(base_url) > 400:
        raise OtaError("base_url: the fleet's http(s):// address as hubs reach it")
    now = time.time()
    with engine.begin() as conn:
        release = conn.execute(select(db.firmware_releases).where(R.id == release_id)).first()
        if release is None:
            raise OtaError(f"no release {release_id}", 404, "not_found")
        key = conn.execute(
            db.rollouts.insert().values(
                tenant_id=tenant_id,
                release_id=release_id,
                percent=percent,
                state="running",
                max_failures=max_failures,
                failed_before=0,
                max_in_flight=max_in_flight,
                base_url=base_url,
                created=now,
                updated=now,
            )
        ).inserted_primary_key
        if key is None:
            raise OtaError("the rollout was not stored", 500, "internal")
        rollout = conn.execute(select(db.rollouts).where(RO.id == key[0])).one()
        _target(conn, rollout, release)
        settle(conn, rollout.id)
    found = progress(engine, tenant_id, int(key[0]))
    if found is None:
        raise OtaError("the rollout vanished", 500, "internal")
    return found


def _rollout(conn: Connection, tenant_id: int, rollout_id: int) -> Any:
    row = conn.execute(select(db.rollouts).where(RO.id == rollout_id, RO.tenant_id == tenant_id)).first()
    if row is None:
        raise OtaError(f"no rollout {rollout_id}", 404, "not_found")
    return row


def change(
    engine: Engine, tenant_id: int, rollout_id: int, what: str, percent: int | None = None
) -> dict[str, Any]:
    """``pause``, ``resume``, ``abort`` or ``widen`` (to ``percent``) a rollout of the tenant."""
    now = time.time()
    with engine.begin() as conn:
        rollout = _rollout(conn, tenant_id, rollout_id)
        if rollout.state in ("aborted", "done") and what != "widen":
            raise OtaError(f"rollout {rollout_id} is {rollout.state}", 409, "finished")
        values: dict[str, Any] = {"updated": now}
        if what == "pause":
            values.update(state="paused", reason="paused by hand")
        elif what == "resume":  # another max_failures may fail before it pauses again
            failed = sum(n for s, n in _counts(conn, rollout_id).items() if s in cmds.FAILED)
            values.update(state="running", reason=None, failed_before=failed)
        elif what == "abort":
            values.update(state="aborted", reason="aborted by hand")
            conn.execute(
                update(db.commands)
                .where(C.rollout_id == rollout_id, C.status == cmds.PENDING)
                .values(status=cmds.CANCELLED, reason="rollout aborted", answered=now)
            )
        elif what == "widen":
            if percent is None or not rollout.percent <= percent <= 100:
                raise OtaError(f"percent: {percent} must be {rollout.percent}..100 (a rollout only widens)")
            if rollout.state == "aborted":
                raise OtaError(f"rollout {rollout_id} is aborted", 409, "finished")
            values.update(percent=percent, state="running" if rollout.state == "done" else rollout.state)
        else:
            raise OtaError(f"{what!r}: pause, resume, abort or widen")
        conn.execute(update(db.rollouts).where(RO.id == rollout_id).values(**values))
        if what == "widen":
            release = conn.execute(select(db.firmware_releases).where(R.id == rollout.release_id)).one()
            _target(conn, conn.execute(select(db.rollouts).where(RO.id == rollout_id)).one(), release)
        if what in ("resume", "widen"):
            settle(conn, rollout_id)
    found = progress(engine, tenant_id, rollout_id)
    if found is None:
        raise OtaError(f"no rollout {rollout_id}", 404, "not_found")
    return found


def _counts(conn: Connection, rollout_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(C.status, func.count()).where(C.rollout_id == rollout_id).group_by(C.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def settle(conn: Connection, rollout_id: int) -> None:
    """After an outcome (or a change): pause on too many failures, finish when nothing is open."""
    rollout = conn.execute(select(db.rollouts).where(RO.id == rollout_id)).first()
    if rollout is None or rollout.state != "running":
        return
    counts = _counts(conn, rollout_id)
    failed = sum(n for s, n in counts.items() if s in cmds.FAILED)
    now = time.time()
    if failed - rollout.failed_before >= rollout.max_failures:
        conn.execute(
            update(db.rollouts)
            .where(RO.id == rollout_id)
            .values(
                state="paused",
                reason=f"paused automatically: {failed - rollout.failed_before} failed "
                f"(threshold {rollout.max_failures})",
                updated=now,
            )
        )
    elif not any(counts.get(s, 0) for s in cmds.OPEN):
        conn.execute(update(db.rollouts).where(RO.id == rollout_id).values(state="done", updated=now))


def progress(engine: Engine, tenant_id: int, rollout_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        try:
            rollout = _rollout(conn, tenant_id, rollout_id)
        except OtaError:
            return None
        release = conn.execute(
            select(*[c for c in db.firmware_releases.c if c.name != "image"]).where(
                R.id == rollout.release_id
            )
        ).one()
        counts = _counts(conn, rollout_id)
    return _rollout_row(rollout, release, counts)


def _rollout_row(rollout: Any, release: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "release": _release_row(release),
        "percent": rollout.percent,
        "state": rollout.state,
        "reason": rollout.reason,
        "max_failures": rollout.max_failures,
        "max_in_flight": rollout.max_in_flight,
        "created": rollout.created,
        "updated": rollout.updated,
        "targets": sum(counts.values()),
        "by_status": counts,
        "succeeded": sum(n for s, n in counts.items() if s in cmds.SUCCEEDED),
        "failed": sum(n for s, n in counts.items() if s in cmds.FAILED),
        "in_flight": counts.get(cmds.SENT, 0),
        "waiting": counts.get(cmds.PENDING, 0),
    }


def listing(engine: Engine, tenant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        ids = (
            conn.execute(select(RO.id).where(RO.tenant_id == tenant_id).order_by(RO.id.desc()))
            .scalars()
            .all()
        )
    return [p for p in (progress(engine, tenant_id, int(i)) for i in ids) if p is not None]
