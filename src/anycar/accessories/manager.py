"""The accessory manager: connect, attest, commission, fit, run, remove.

It is what the hub's composition root wires: ``AccessoryManager(broker, db_path, mounts, trust,
policy=...)`` with ``await start()`` / ``await stop()``; ``start`` also opens the accessory
WebSocket server (``url``). Accessories become broker providers of their own signals; the
policy engine decides restrictions and shedding and the manager tells the accessories.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from ssl import SSLContext
from typing import Any

from anycar.accessories import running
from anycar.accessories.commissioning import PairingGuard, ProofLedger
from anycar.accessories.draw import draw_w
from anycar.accessories.errors import (
    AccessoryNotFound,
    AttestationError,
    FitRefused,
    ManifestError,
    PairingError,
    ProtocolError,
    VendorKeyNotFound,
)
from anycar.accessories.fitting import MountBoard
from anycar.accessories.manifest import Binding, Manifest, parse_manifest
from anycar.accessories.mounts import MountPlan, MountPoint
from anycar.accessories.protocol import PROTOCOL_VERSION, auth_proof, proofs_match
from anycar.accessories.registry import AccessoryRecord, Registry
from anycar.accessories.session import Session
from anycar.accessories.trust import TrustRegistry, VendorKey
from anycar.broker import Provider, SignalBroker
from anycar.errors import AnycarError, ConfigError
from anycar.policy.engine import LoadStatus, PolicyEngine
from anycar.policy.errors import PermissionDenied
from anycar.policy.power import Priority
from anycar.policy.privileges import Grant, Privilege
from anycar.supervisor import Supervised, log_task_failure

_INSTANCE = re.compile(r"^[A-Z][A-Za-z0-9_]{0,40}$")
MAX_CONTENDERS = 4  # connections waiting for the same accessory's code at once


@dataclass
class Fitted:
    """A commissioned accessory in this hub run."""

    record: AccessoryRecord
    manifest: Manifest
    binding: Binding
    mount: MountPoint
    provider: Provider
    session: Session | None = None
    status: str = "UNAVAILABLE"
    silent: bool = False
    load: LoadStatus | None = None
    by_path: dict[str, str] = field(default_factory=dict)
    firmware: str = ""  # set by a firmware update in this hub run

    @property
    def firmware_version(self) -> str:
        """What it runs: what it said in its hello or was updated to, else its manifest's."""
        if self.session is not None and self.session.firmware:
            return self.session.firmware
        return self.firmware or self.manifest.firmware_version

    @property
    def instance(self) -> str:
        return self.record.instance


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits; defaults suit a real car, tests shrink them."""

    heartbeat_interval_s: float = 2.0
    heartbeat_timeout_s: float = 6.0
    hello_timeout_s: float = 10.0
    messages_per_s: float = 50.0
    burst: float = 100.0


class AccessoryManager:
    def __init__(
        self,
        broker: SignalBroker,
        db_path: str | Path | None,
        mounts: MountPlan,
        trust: TrustRegistry | None = None,
        *,
        policy: PolicyEngine | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        pairing: PairingGuard | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        self.broker = broker
        self.db_path = db_path
        self.mounts = mounts
        self.trust = trust if trust is not None else TrustRegistry(db_path)
        self._own_trust = trust is None
        self.policy = (
            policy
            if policy is not None
            else PolicyEngine(broker, db_path=db_path, driving=mounts.driving, power=mounts.power)
        )
        self._own_policy = policy is None
        self.registry = Registry(db_path)
        self.board = MountBoard(mounts)
        self.limits = limits if limits is not None else Limits()
        self.pairing = pairing if pairing is not None else PairingGuard(db_path)
        self.host = host
        self.port = port
        self.ssl = ssl
        self.fitted: dict[str, Fitted] = {}
        self.pending: dict[str, Session] = {}  # the newest waiting connection per accessory
        self.contenders: dict[str, list[Session]] = {}  # every waiting connection per accessory
        self.proofs = ProofLedger()
        self.sessions: set[Session] = set()
        self._status: Provider | None = None
        self._monitor: Supervised | None = None
        self._trust_watch: Supervised | None = None
        self._server: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.trust.on_revoke(self._on_revoke)

    @property
    def events(self) -> Any:
        return self.policy.events

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore commissioned accessories, start the policy (if owned) and the server."""
        from anycar.accessories.server import AccessoryServer

        if self._own_policy:
            await self.policy.start()
        self._status = self.broker.register_provider("accessory-hub")
        for rec in self.registry.all():
            try:
                self._activate(rec, restoring=True)
            except AnycarError as exc:
                self.events.log("refusal", rec.instance, f"could not restore {rec.instance}: {exc}")
                continue
            try:
                self.trust.attest(rec.manifest)
            except AttestationError as exc:
                self.events.log(
                    "attestation_failed",
                    rec.instance,
                    f"{rec.instance} is fitted but cannot reconnect: {exc}",
                )
        self._drop_orphan_grants()
        self._server = AccessoryServer(self, self.host, self.port, self.ssl)
        await self._server.start()
        self.port = self._server.port
        self._monitor = self.policy.supervisor.spawn(
            "accessory-heartbeats", lambda: running.watch_heartbeats(self)
        )
        # another process (the CLI) may revoke a key while the hub runs: look every 0.25 s
        self._trust_watch = self.policy.supervisor.spawn("trust-watch", self.trust.watch)

    async def stop(self) -> None:
        if self._monitor is not None:
            await self._monitor.stop()
            self._monitor = None
        if self._trust_watch is not None:
            await self._trust_watch.stop()
            self._trust_watch = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        for fitted in self.fitted.values():
            fitted.provider.close()
            self.policy.unregister_load(fitted.instance)
        self.fitted.clear()
        if self._status is not None:
            self._status.close()
            self._status = None
        if self._own_policy:
            await self.policy.stop()
            self.policy.close()
        self.registry.close()
        self.pairing.close()
        if self._own_trust:
            self.trust.close()

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl is not None else 'ws'}://{self.host}:{self.port}"

    # -- hello: attestation and recognition -------------------------------------------------
    async def hello(self, session: Session, msg: dict[str, Any]) -> dict[str, Any]:
        """Attest the manifest; a known accessory must prove its token, a new one waits.

        The signature is checked on the raw manifest first (bounded in size and depth): nothing
        of it (patterns, overlay, signals) is parsed or resolved before a trusted key vouched."""
        raw = msg["manifest"]
        try:
            key = self.trust.attest(raw)
        except (AttestationError, ManifestError) as exc:
            self.events.log(
                "attestation_failed", session.peer, f"{session.peer}: {exc}", serial=msg["serial"]
            )
            raise
        try:
            manifest = parse_manifest(raw, source="hello.manifest", catalog=self.broker.catalog)
        except ManifestError as exc:
            self.events.log("attestation_failed", session.peer, f"invalid manifest: {exc}", field=exc.field)
            raise
        session.manifest = manifest
        session.serial = msg["serial"]
        session.firmware = str(msg.get("firmware") or "")
        session.key_id = key.key_id
        session.accessory = f"{manifest.product_key}:{session.serial}"
        session.pairing_proof = msg.get("pairing_proof")
        rec = self.registry.by_accessory(session.accessory)
        auth = msg.get("auth")
        if rec is None or (not rec.confirmed and not auth):
            # new, or commissioned but its token never arrived: it waits for its pairing code
            proof = session.pairing_proof
            if proof is not None and not self.proofs.first_use(proof, id(session)):
                self.events.log(
                    "attestation_failed", session.accessory, f"replayed hello for {session.accessory} refused"
                )
                raise AttestationError(
                    "replayed hello: this pairing proof answered another connection's challenge"
                )
            self._contend(session)
            return {
                "type": "welcome",
                "state": "awaiting_commissioning",
                "accessory": session.accessory,
                "heartbeat_interval_s": self.limits.heartbeat_interval_s,
            }
        if not auth or not proofs_match(auth_proof(rec.token, session.nonce), auth):
            self.events.log(
                "attestation_failed", rec.instance, f"{session.accessory} failed reconnection auth"
            )
            raise AttestationError(
                f"{session.accessory} is commissioned as {rec.instance}; 'auth' proof is wrong or missing"
            )
        if not rec.confirmed:
            self._confirm(rec)
        fitted = self.fitted.get(rec.instance)
        if fitted is None:
            raise AttestationError(
                f"{rec.instance} is commissioned but could not be restored; remove and re-commission it"
            )
        if fitted.session is not None and fitted.session is not session:
            old_session = fitted.session
            fitted.session = None
            old_session.fail_pending("replaced by a new connection")
            await old_session.close("replaced by a new connection")
        session.instance = rec.instance
        fitted.session = session
        fitted.silent = False
        self.set_status(fitted)
        self.events.log("available", rec.instance, f"{rec.instance} connected")
        return {
            "type": "welcome",
            "state": "running",
            "accessory": session.accessory,
            "instance": rec.instance,
            "paths": fitted.binding.paths,
            "heartbeat_interval_s": self.limits.heartbeat_interval_s,
        }

    async def after_welcome(self, session: Session) -> None:
        if session.instance is not None:
            await self._tell_state(self.fitted[session.instance])

    # -- commissioning ----------------------------------------------------------------------
    def waiting(self) -> list[dict[str, Any]]:
        """Accessories connected, attested and waiting for their pairing code."""
        return [
            {"accessory": key, "peer": s.peer, **(s.manifest.summary() if s.manifest else {})}
            for key, s in self.pending.items()
        ]

    async def commission(
        self,
        accessory: str,
        code: str,
        mount_id: str,
        *,
        instance: str | None = None,
        privilege: Privilege | str = Privilege.OPERATE,
        actuates: list[str] | None = None,
        reads: list[str] | None = None,
        priority: Priority | str | None = None,
    ) -> AccessoryRecord:
        """Check the pairing code the accessory shows, fit it at ``mount_id`` and start it.

        Registry row and grant row are one transaction, written before the token is sent: a
        crash before the commit leaves nothing, one after it leaves an unconfirmed record that
        a retried commissioning (the accessory says hello without a token) completes."""
        session = self._paired_session(accessory, code)
        manifest = session.manifest
        assert manifest is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        priv = Privilege.parse(privilege)
        if priv is Privilege.ADMINISTER:
            raise PermissionDenied("an accessory can be granted at most Manage")
        earlier = self.registry.by_accessory(accessory)  # unconfirmed: its token never arrived
        name = instance or (earlier.instance if earlier is not None else self._next_instance(manifest))
        if not _INSTANCE.match(name):
            raise ConfigError(f"instance name {name!r} must be a VSS name starting with a capital letter")
        mine = earlier.instance if earlier is not None else None
        if name != mine and (name in self.fitted or self.registry.get(name) is not None):
            raise ConfigError(f"instance name {name!r} is already in use")
        if mine is not None and mine in self.fitted:
            self._unfit(self.fitted.pop(mine))  # fitted again below, from the new record
        try:
            self.board.check(name, mount_id, manifest.mount_types, manifest.power)
        except FitRefused as exc:
            self.events.log("fit_refused", accessory, str(exc), mount=mount_id, free=exc.free)
            raise
        wanted = list(actuates) if actuates is not None else list(manifest.actuates)
        granted, refused = self.policy.access.filter_actuates(wanted, self.broker.catalog)
        for pattern, why in refused.items():
            self.policy.refuse(name, f"grant of {pattern} refused: {why}", pattern=pattern)
        rec = AccessoryRecord(
            instance=name,
            accessory=accessory,
            manifest=manifest.data,
            key_id=session.key_id,
            mount_id=mount_id,
            # a manifest cannot make itself unsheddable: "safety" needs the owner's say-so
            priority=(
                Priority.parse(priority)
                if priority is not None
                else max(manifest.priority, Priority.ESSENTIAL)
            ).label,
            privilege=priv.label,
            token=secrets.token_hex(32),
            reads=list(reads) if reads is not None else list(manifest.reads),
            actuates=granted if priv >= Privilege.OPERATE else [],
            commissioned_at=time.time(),
            confirmed=False,
        )
        fitted: Fitted | None = None
        try:
            with self.registry.transaction():
                fitted = self._activate(rec, manifest=manifest)  # writes the grant row
                if mine is not None and mine != name:
                    self.registry.drop(mine)
                    self.policy.grants.drop(mine)
                self.registry.put(rec)
        except BaseException:
            self.registry.restore(name, earlier if mine == name else None)
            if fitted is not None:
                self.fitted.pop(name, None)
                self._unfit(fitted)
            with contextlib.suppress(sqlite3.Error):  # the row went with the rollback; memory too
                self.policy.grants.drop(name)
            raise
        self._drop_contenders(accessory, keep=session)
        self.events.log(  # words for people; the accessory's key stays in the data
            "commissioned",
            name,
            f"{manifest.product_name} commissioned as {name} ({priv.label})",
            accessory=accessory,
        )
        session.last_seen = time.monotonic()  # silence counts from when it is fitted
        session.instance = name
        fitted.session = session
        self.set_status(fitted)
        await session.send(
            {
                "type": "commissioned",
                "instance": name,
                "token": rec.token,
                "mount": fitted.mount.to_dict(),
                "paths": fitted.binding.paths,
                "privilege": priv.label,
                "reads": rec.reads,
                "actuates": rec.actuates,
            }
        )
        await self._tell_state(fitted)
        return rec

    def _paired_session(self, accessory: str, code: str) -> Session:
        """The waiting connection whose proof shows ``code``; counts one attempt if none does."""
        candidates = [
            s for s in self.contenders.get(accessory, []) if not s.closed and s.manifest is not None
        ]
        if not candidates:
            waiting = ", ".join(self.pending) or "none"
            raise AccessoryNotFound(
                f"no accessory {accessory!r} is waiting to be commissioned (waiting: {waiting})"
            )
        try:
            self.pairing.ensure_unlocked(accessory)
            for candidate in reversed(candidates):  # newest first
                if self.pairing.matches(
                    code, nonce=candidate.nonce, serial=candidate.serial, proof=candidate.pairing_proof
                ):
                    self.pairing.succeeded(accessory)
                    return candidate
            if all(c.pairing_proof is None for c in candidates):
                raise PairingError(
                    f"{accessory} sent no pairing proof; it must show its code and send the proof"
                )
            self.pairing.failed(accessory)
        except PairingError as exc:
            kind = "locked_out" if exc.locked_until is not None else "pairing_failed"
            self.events.log(kind, accessory, str(exc))
            raise
        except ProtocolError as exc:
            self.events.log("pairing_failed", accessory, str(exc))
            raise
        raise AssertionError("unreachable: failed() raises")

    def _contend(self, session: Session) -> None:
        """Keep ``session`` waiting beside others for the same accessory (a replay or an
        impostor must not push the real one out); the oldest of too many is closed."""
        assert session.accessory is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
        waiting = self.contenders.setdefault(session.accessory, [])
        waiting.append(session)
        while len(waiting) > MAX_CONTENDERS:
            oldest = waiting.pop(0)
            oldest.spawn(oldest.close("too many connections for this accessory"))
        self.pending[session.accessory] = session

    def _drop_contenders(self, accessory: str, keep: Session) -> None:
        for other in self.contenders.pop(accessory, []):
            if other is not keep:
                other.spawn(other.close("another connection was commissioned"))
        self.pending.pop(accessory, None)

    def _confirm(self, rec: AccessoryRecord) -> None:
        """The accessory proved its token: it has it, a hello without one is an impostor now."""
        rec.confirmed = True
        try:
            self.registry.put(rec)
        except sqlite3.Error as exc:  # kept in memory; persisted with the next change
            self.policy.supervisor.report("registry", exc)

    def _drop_orphan_grants(self) -> None:
        """Accessory grants without their accessory (left by a crash before commissioning was one
        transaction) are dropped: a later accessory of that name must not inherit them."""
        for grant in self.policy.grants.all():
            if grant.kind == "accessory" and self.registry.get(grant.subject) is None:
                try:
                    self.policy.grants.drop(grant.subject)
                except sqlite3.Error as exc:
                    self.policy.supervisor.report("grants", exc)
                    return
                self.events.log("removed", grant.subject, f"orphan grant of {grant.subject} dropped")

    def _next_instance(self, manifest: Manifest) -> str:
        families = {t.family for t in manifest.traits}
        word = manifest.traits[0].id if len(manifest.traits) == 1 or len(families) > 1 else families.pop()
        base = "".join(p.capitalize() for p in word.split("_"))
        taken = set(self.fitted) | {r.instance for r in self.registry.all()}
        n = 1
        while f"{base}{n}" in taken:
            n += 1
        return f"{base}{n}"

    def _activate(
        self, rec: AccessoryRecord, manifest: Manifest | None = None, *, restoring: bool = False
    ) -> Fitted:
        """Fit, bind, claim and register one accessory (at commissioning or on restart)."""
        if manifest is None:
            manifest = parse_manifest(
                rec.manifest, source=f"registry:{rec.instance}", catalog=self.broker.catalog
            )
        mount = self.board.check(rec.instance, rec.mount_id, manifest.mount_types, manifest.power)
        stored = set(rec.paths.values())
        binding = manifest.bind(
            rec.instance,
            mount.location,
            self.broker.catalog,
            is_free=(lambda p: p in stored) if stored else (lambda p: self.broker.provider_of(p) is None),
        )
        for path in binding.paths.values():
            self.policy.access.check_provide(rec.instance, path)
        self.broker.catalog.apply_overlay(binding.overlay)
        provider = self.broker.register_provider(
            f"accessory:{rec.instance}",
            list(binding.paths.values()),
            on_actuate=running.actuator_for(self, rec.instance),
        )
        try:
            self.board.fit(rec.instance, rec.mount_id, manifest.mount_types, manifest.power)
            assert self._status is not None  # nosec B101 # narrows an Optional for mypy; an invariant of this object, not a check of outside input
            self._status.claim([binding.status_path])
        except AnycarError:
            provider.close()
            self.board.release(rec.instance)
            raise
        rec.paths = dict(binding.paths)
        fitted = Fitted(
            rec, manifest, binding, mount, provider, by_path={p: n for n, p in binding.paths.items()}
        )
        self.fitted[rec.instance] = fitted
        grant = Grant(
            rec.instance,
            "accessory",
            Privilege.parse(rec.privilege),
            tuple(rec.reads),
            tuple(rec.actuates),
            owns=tuple(binding.paths.values()),
        )
        if restoring:  # the row is there already: a full disk must not keep the car's kit off
            try:
                self.policy.grant(grant)
            except sqlite3.Error as exc:
                self.policy.supervisor.report("grants", exc)
        else:
            self.policy.grant(grant)  # inside the commissioning transaction: a failure undoes it
        fitted.load = self.policy.register_load(
            rec.instance,
            Priority.parse(rec.priority),
            driver_view=mount.driver_view,
            ux_restricted=manifest.ux_restricted,
            listener=functools.partial(self._on_load, rec.instance),
            families=[t.family for t in manifest.traits],
            peak_w=manifest.power.peak_w,
        )
        self.events.log(
            "fitted",
            rec.instance,
            f"{rec.instance} fitted at {mount.id} ({mount.type}, {manifest.power.peak_w:g} W peak)",
        )
        self.set_status(fitted)
        return fitted

    # -- removal ----------------------------------------------------------------------------
    async def remove(self, instance: str, reason: str = "removed by owner") -> None:
        fitted = self.fitted.pop(instance, None)
        if fitted is None:
            raise AccessoryNotFound(
                f"no fitted accessory {instance!r} (fitted: {', '.join(self.fitted) or 'none'})"
            )
        session = fitted.session
        fitted.session = None
        if session is not None:
            session.fail_pending(f"{instance} was removed")
            await session.send({"type": "removed", "reason": reason})
            await session.close("removed")
        self._unfit(fitted, status="REMOVED")
        with self.registry.transaction():
            self.policy.grants.drop(instance)
            self.registry.drop(instance)
        self.events.log(
            "removed",
            instance,
            f"{instance} removed from {fitted.mount.description or fitted.mount.id}: {reason}",
            mount=fitted.mount.id,
        )

    def _unfit(self, fitted: Fitted, status: str | None = None) -> None:
        """Undo ``_activate`` in this run (provider, status signal, mount, load); rows stay."""
        fitted.provider.mark_unavailable()
        fitted.provider.close()
        if self._status is not None:
            if status is not None:
                self._status.publish(fitted.binding.status_path, status)
            self._status.release([fitted.binding.status_path])
        self.board.release(fitted.instance)
        self.policy.unregister_load(fitted.instance)

    # -- messages from a running accessory (see running.py) ---------------------------------
    def seen(self, session: Session) -> None:
        running.seen(self, session)

    async def handle(self, session: Session, msg: dict[str, Any]) -> None:
        await running.handle(self, session, msg)

    # -- disconnection, silence, revocation -------------------------------------------------
    async def disconnected(self, session: Session) -> None:
        self.sessions.discard(session)
        session.fail_pending("accessory went away")
        session.stop_subscriptions()
        if session.accessory is not None:
            waiting = self.contenders.get(session.accessory)
            if waiting is not None and session in waiting:
                waiting.remove(session)
                if not waiting:
                    del self.contenders[session.accessory]
            if self.pending.get(session.accessory) is session:
                if waiting:
                    self.pending[session.accessory] = waiting[-1]
                else:
                    del self.pending[session.accessory]
        if session.instance is None:
            return
        fitted = self.fitted.get(session.instance)
        if fitted is None or fitted.session is not session:
            return
        fitted.session = None
        fitted.provider.mark_unavailable()
        self.set_status(fitted)
        self.events.log("unavailable", fitted.instance, f"{fitted.instance} disconnected")

    def _on_revoke(self, key: VendorKey) -> None:
        self.events.log(
            "trust_revoked", f"vendor:{key.vendor_id}", f"key {key.key_id} revoked: {key.revoke_reason}"
        )
        affected = [s for s in self.sessions if s.key_id == key.key_id]
        if not affected:
            return
        loop = asyncio.get_running_loop()  # sessions only exist while the hub's loop runs
        for session in affected:
            session.fail_pending("vendor key revoked")
            task = loop.create_task(self._drop_revoked(session), name=f"revoke-{session.peer}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(log_task_failure)

    async def _drop_revoked(self, session: Session) -> None:
        await session.send(
            {"type": "error", "code": 401, "reason": "attestation_failed", "message": "vendor key revoked"}
        )
        await session.close("vendor key revoked")

    def revoke_vendor_key(self, key_id: str, reason: str = "revoked by owner") -> tuple[VendorKey, int]:
        """Revoke ``key_id`` now: persisted, hellos under it refused, its sessions ended.
        Returns the key and how many connections are being closed."""
        entry = self.trust.get(key_id)
        if entry is None:
            known = ", ".join(k.key_id for k in self.trust.entries()) or "none"
            raise VendorKeyNotFound(f"no trusted key has id {key_id[:40]!r} (known: {known})")
        affected = sum(1 for s in self.sessions if s.key_id == key_id and not s.closed)
        return self.trust.revoke(key_id, reason), affected if not entry.revoked else 0

    def add_vendor_key(self, vendor_id: int, public_key: str, label: str = "") -> VendorKey:
        key = self.trust.add(vendor_id, public_key, label)
        self.events.log(
            "trust_added", f"vendor:{vendor_id}", f"key {key.key_id} trusted for vendor {vendor_id} {label}"
        )
        return key

    # -- policy decisions -------------------------------------------------------------------
    def _on_load(self, instance: str, status: LoadStatus) -> None:
        fitted = self.fitted.get(instance)
        if fitted is None:
            return
        fitted.load = status
        self.set_status(fitted)
        if fitted.session is not None:
            fitted.session.spawn(self._tell_state(fitted))

    async def _tell_state(self, fitted: Fitted) -> None:
        session, load = fitted.session, fitted.load
        if session is None or load is None:
            return
        await session.send(
            {
                "type": "restrictions",
                "driving_state": str(self.policy.driving_state),
                "restrictions": sorted(load.restrictions),
                "max_string_length": self.policy.driving.max_string_length,
            }
        )
        await session.send(
            {"type": "power", "state": "shed" if load.shed else "on", "reason": load.shed_reason or ""}
        )

    def set_status(self, fitted: Fitted) -> None:
        if fitted.session is None or fitted.silent:
            status = "UNAVAILABLE"
        elif fitted.load is not None and fitted.load.shed:
            status = "SHED"
        else:
            status = "RUNNING"
        fitted.status = status
        if self._status is not None and not self._status.closed:
            self._status.publish(fitted.binding.status_path, status)

    # -- views ------------------------------------------------------------------------------
    def draws_w(self) -> dict[str, float]:
        """What each fitted accessory draws from the 12 V system now (``draw``), by instance."""
        return {
            instance: draw_w(fitted, self.broker.catalog, self._value_of)
            for instance, fitted in self.fitted.items()
        }

    def _value_of(self, path: str) -> Any:
        dp = self.broker.get(path)
        return dp.value if dp is not None else None

    def list(self) -> list[dict[str, Any]]:
        out = []
        for rec in self.registry.all():
            fitted = self.fitted.get(rec.instance)
            row = rec.public()
            row["status"] = fitted.status if fitted else "NOT_RESTORED"
            row["restrictions"] = sorted(fitted.load.restrictions) if fitted and fitted.load else []
            out.append(row)
        return out

    def rate_limited(self, session: Session) -> bool:
        """Whether to drop this message; notifies the accessory and the log at most once a second."""
        if session.bucket.take():
            return False
        now = time.monotonic()
        if now - session.last_rate_notice >= 1.0:
            session.last_rate_notice = now
            session.spawn(
                session.send(
                    {
                        "type": "error",
                        "code": 429,
                        "reason": "rate_limited",
                        "message": f"over {self.limits.messages_per_s:g} messages/s; "
                        f"{session.bucket.dropped} dropped so far",
                    }
                )
            )
        if now - session.last_rate_event >= 5.0:
            session.last_rate_event = now
            who = session.instance or session.accessory or session.peer
            self.events.log("rate_limited", who, f"{who} flooding; {session.bucket.dropped} messages dropped")
        return True


__all__ = ["PROTOCOL_VERSION", "AccessoryManager", "Fitted", "Limits"]
