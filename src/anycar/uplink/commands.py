"""Commands from the fleet: checked, then carried out by the handler of their one action, each
answered on ``command-results`` with the outcome or the reason it was refused.

Actions (``anycar.wire.schema.COMMAND_ACTIONS``): ``actuate`` is carried out here by the broker;
the others (``scene``, ``fleet_event``, ``firmware``, and whatever comes later) are handed to the
``ActionHandler`` that the uplink registered for them (the automations, the accessory manager).
An action nobody registered is refused with the reason.

In order, cheapest first: a rate limit (a flood costs the hub almost nothing; a command over it
is answered ``rate_limited`` under its own id while the answers' bucket allows), the size and the
decoding (bounded, linear), the fleet's Ed25519 signature, the schema, the vehicle, the expiry,
a duplicate id (remembered on disk until the command expires, so a replay after a restart is
refused too), then the fleet's grant in the policy for every path: Operate at most, so a
safety-critical actuator is never moved from afar, whatever the grant names.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
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
from anycar.wire.schema import check_message, command_action

FLEET_SUBJECT = "fleet"
SEEN_SCHEMA = "CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, expires REAL NOT NULL)"
Answer = Callable[..., None]  # (command, status, reason, results, action=...)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action's handler says: a ``command-result`` status, why, and per-item results."""

    status: str
    reason: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


# An action's handler: (command id, the action's body) -> its outcome.
ActionHandler = Callable[[str, Any], Awaitable[Outcome]]


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
    actions: dict[str, ActionHandler] = field(default_factory=dict)
    # why an action has no handler here, for the refusal (e.g. "this hub runs no automations")
    missing: dict[str, str] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

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

    def _refuse_over_rate(self, payload: bytes) -> None:
        """A command over the rate: answered ``rate_limited`` with its id (so the fleet shows it
        refused, not ``expired``). Its id is read, and the fleet's signature checked so nobody
        else can name a command, only while the answers' own bucket has room: a flood costs at
        most one signature check per answer it gets."""
        self.counts["rate_limited"] = self.counts.get("rate_limited", 0) + 1
        if not self.answers.take():
            return
        cid: str | None = None
        try:
            doc = decode(payload, validate=False)
            signature.verify(doc, self.trusted)
            named = doc.get("id")
            if doc.get("kind") == "command" and doc.get("vehicle") == self.vehicle and isinstance(named, str):
                cid = named[:128]
        except WireError:
            pass  # not a command of the fleet's: answered without an id
        self.answer(cid, "rate_limited", f"more than {self.settings.rate_per_s:g} commands/s", [])

    async def handle(self, payload: bytes) -> None:
        if not self.bucket.take():
            self._refuse_over_rate(payload)
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
        action = command_action(doc)
        if action == "actuate":
            self._finish(cid, action, await self._carry_out(cid, doc[action]))
            return
        handler = self.actions.get(action)
        if handler is None:
            why = self.missing.get(action, f"this hub does not carry out {action} commands")
            self._finish(cid, action, Outcome("refused", why))
            return
        # the others may take long (a firmware download): they must not hold up the downlink
        task = asyncio.create_task(self._run(handler, cid, action, doc[action]), name=f"command-{cid}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, handler: ActionHandler, cid: str, action: str, body: Any) -> None:
        try:
            outcome = await handler(cid, body)
        except AnycarError as exc:
            outcome = Outcome("refused", str(exc))
        except Exception as exc:  # a handler's bug is answered, never silent, and the hub goes on
            outcome = Outcome("rejected", f"{action} failed: {type(exc).__name__}: {str(exc)[:300]}")
        self._finish(cid, action, outcome)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _finish(self, cid: str, action: str, outcome: Outcome) -> None:
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        self.answer(cid, outcome.status, outcome.reason, outcome.results, action=action)

    def register(self, action: str, handler: ActionHandler | None, missing: str = "") -> None:
        """Who carries out ``action``; ``None`` with ``missing`` says why nobody here can."""
        if handler is None:
            self.actions.pop(action, None)
            self.missing[action] = missing
        else:
            self.actions[action] = handler
            self.missing.pop(action, None)

    async def _carry_out(self, cid: str, actuate: dict[str, Any]) -> Outcome:
        if self.policy is None:
            return Outcome("refused", "this hub has no policy engine (no --brand): remote commands are off")
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
            others = [{"path": p, "status": "refused", "reason": "not attempted"} for p in allowed]
            return Outcome("refused", refused[0]["reason"], refused + others)
        outcomes = await self.broker.actuate_many(allowed, requester=FLEET_SUBJECT)
        results = [
            {"path": r.path, "status": str(r.status), **({"reason": r.reason} if r.reason else {})}
            for r in outcomes
        ]
        ok = sum(1 for r in outcomes if r.ok)
        status = "accepted" if ok == len(outcomes) else "partial" if ok else "rejected"
        return Outcome(
            status, "" if status == "accepted" else next(r.reason for r in outcomes if not r.ok), results
        )
