"""Commands from the fleet: checked, then carried out by the broker, each answered on
``command-results`` with the broker's outcome or the reason it was refused.

In order, cheapest first: a rate limit (a flood costs the hub almost nothing), the size and the
decoding (bounded, linear), the fleet's Ed25519 signature, the schema, the vehicle, the expiry,
a duplicate id (remembered on disk until the command expires, so a replay after a restart is
refused too), then the fleet's grant in the policy for every path: Operate at most, so a
safety-critical actuator is never moved from afar, whatever the grant names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from anycar.broker import SignalBroker
from anycar.errors import AnycarError
from anycar.policy import PolicyEngine
from anycar.policy.privileges import Privilege
from anycar.ratelimit import TokenBucket
from anycar.uplink.config import CommandSettings
from anycar.uplink.spool import Spool
from anycar.wire import WireError, decode, signature
from anycar.wire.schema import check_message

FLEET_SUBJECT = "fleet"
SEEN_SCHEMA = "CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, expires REAL NOT NULL)"
Answer = Callable[[str | None, str, str, list[dict[str, Any]]], None]


@dataclass
class CommandHandler:
    broker: SignalBroker
    policy: PolicyEngine | None
    spool: Spool
    settings: CommandSettings
    vehicle: str
    trusted: Mapping[str, Ed25519PublicKey]
    answer: Answer
    clock: Callable[[], float] = time.time
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.settings.rate_per_s, self.settings.burst)
        # Answers to refused floods are rate-limited too, so a flood cannot fill the spool.
        self.answers = TokenBucket(max(1.0, self.settings.rate_per_s), max(5, self.settings.burst))
        self.spool.db.execute(SEEN_SCHEMA)
        if self.policy is not None:
            self.policy.grant_app(FLEET_SUBJECT, Privilege.OPERATE, actuates=self.settings.actuates)

    def _refuse(self, command: str | None, status: str, reason: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.answers.take():
            self.answer(command, status, reason, [])

    async def handle(self, payload: bytes) -> None:
        if not self.bucket.take():
            self._refuse(None, "rate_limited", f"more than {self.settings.rate_per_s:g} commands/s")
            return
        try:
            doc = decode(payload, validate=False)
            signature.verify(doc, self.trusted)
            check_message(doc)  # the schema, once it is known who sent it
            if doc["kind"] != "command":
                raise WireError(f"a {doc['kind']} message on the commands topic", reason="schema")
        except WireError as exc:
            self._refuse(None, "invalid", str(exc))
            return
        cid = doc["id"]
        now = self.clock()
        if doc["vehicle"] != self.vehicle:
            self._refuse(cid, "refused", f"command is for vehicle {doc['vehicle']}, this is {self.vehicle}")
            return
        if doc["expires"] <= now:
            self._refuse(cid, "expired", f"expired {now - doc['expires']:.1f} s ago")
            return
        if doc["expires"] - now > self.settings.max_ttl_s:
            self._refuse(cid, "refused", f"expires more than {self.settings.max_ttl_s:g} s ahead")
            return
        db = self.spool.db
        db.execute("DELETE FROM commands_seen WHERE expires < ?", (now,))
        if db.execute("SELECT 1 FROM commands_seen WHERE id = ?", (cid,)).fetchone():
            self._refuse(cid, "duplicate", f"command {cid} was already received")
            return
        db.execute("INSERT INTO commands_seen (id, expires) VALUES (?, ?)", (cid, doc["expires"]))
        await self._carry_out(cid, doc["actuate"])

    async def _carry_out(self, cid: str, actuate: dict[str, Any]) -> None:
        if self.policy is None:
            self._refuse(
                cid, "refused", "this hub has no policy engine (no --brand): remote commands are off"
            )
            return
        refused: list[dict[str, Any]] = []
        allowed: dict[str, Any] = {}
        for path, value in actuate.items():
            branch = self.policy.access.safety_branch(path)
            if branch is not None:
                reason = f"{path} is in the safety-critical branch {branch}: never set remotely"
                self.policy.refuse(FLEET_SUBJECT, reason, path=path, action="actuate", command=cid)
                refused.append({"path": path, "status": "refused", "reason": reason})
                continue
            try:
                self.policy.check_actuate(FLEET_SUBJECT, path)
                self.broker.check_actuation(path, value)
            except AnycarError as exc:
                refused.append({"path": path, "status": "refused", "reason": str(exc)})
                continue
            allowed[path] = value
        if refused:  # all or nothing: a half-done command is worse than a clear refusal
            self.counts["refused"] = self.counts.get("refused", 0) + 1
            others = [{"path": p, "status": "refused", "reason": "not attempted"} for p in allowed]
            self.answer(cid, "refused", refused[0]["reason"], refused + others)
            return
        outcomes = await self.broker.actuate_many(allowed, requester=FLEET_SUBJECT)
        results = [
            {"path": r.path, "status": str(r.status), **({"reason": r.reason} if r.reason else {})}
            for r in outcomes
        ]
        ok = sum(1 for r in outcomes if r.ok)
        status = "accepted" if ok == len(outcomes) else "partial" if ok else "rejected"
        self.counts[status] = self.counts.get(status, 0) + 1
        self.answer(
            cid, status, "" if status == "accepted" else next(r.reason for r in outcomes if not r.ok), results
        )
