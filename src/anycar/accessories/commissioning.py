"""Commissioning guard: pairing codes are checked against the proof the accessory sent, and
repeated wrong codes lock the accessory out for a while (doubling each time), as Matter
commissioners and HomeKit do against guessing.

The lock-out is kept in the hub's SQLite file (table ``pairing_attempts``, wall-clock times),
so a restart does not hand a guesser a fresh set of attempts. An attempt is counted only when
the owner's code was compared with a proof made for a challenge of this hub that no other
connection presented: a replayed hello is refused at hello (see ``ProofLedger``) and never
costs the owner an attempt.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from anycar.accessories.errors import PairingError
from anycar.accessories.protocol import normalize_code, pairing_proof, proofs_match
from anycar.policy.db import open_db

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pairing_attempts (
    accessory TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    lockouts INTEGER NOT NULL,
    locked_until REAL NOT NULL
);
"""


@dataclass
class _Attempts:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0


class PairingGuard:
    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        max_attempts: int = 5,
        lockout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s
        self._clock = clock
        self._state: dict[str, _Attempts] = {}
        self._db: sqlite3.Connection | None = open_db(db_path, SCHEMA) if db_path is not None else None
        if self._db is not None:
            for r in self._db.execute("SELECT * FROM pairing_attempts"):
                self._state[r["accessory"]] = _Attempts(r["failures"], r["lockouts"], r["locked_until"])

    def locked_for(self, accessory: str) -> float:
        st = self._state.get(accessory)
        return max(0.0, st.locked_until - self._clock()) if st is not None else 0.0

    def ensure_unlocked(self, accessory: str) -> None:
        st = self._state.get(accessory)
        now = self._clock()
        if st is not None and st.locked_until > now:
            raise PairingError(
                f"{accessory} is locked out for {st.locked_until - now:.0f} s after "
                f"{self.max_attempts} wrong pairing codes",
                locked_until=st.locked_until,
            )

    @staticmethod
    def matches(code: str, *, nonce: str, serial: str, proof: str | None) -> bool:
        """Whether ``proof`` shows the accessory knows ``code`` (for this session's ``nonce``)."""
        return proof is not None and proofs_match(pairing_proof(normalize_code(code), nonce, serial), proof)

    def check(self, accessory: str, code: str, *, nonce: str, serial: str, proof: str | None) -> None:
        """Pass, or raise ``PairingError`` (wrong code, or locked out, with seconds left)."""
        self.ensure_unlocked(accessory)
        if proof is None:
            raise PairingError(f"{accessory} sent no pairing proof; it must show its code and send the proof")
        if self.matches(code, nonce=nonce, serial=serial, proof=proof):
            self.succeeded(accessory)
            return
        self.failed(accessory)

    def succeeded(self, accessory: str) -> None:
        if self._state.pop(accessory, None) is not None and self._db is not None:
            self._db.execute("DELETE FROM pairing_attempts WHERE accessory = ?", (accessory,))

    def failed(self, accessory: str) -> None:
        """Count one wrong code (persisted before the owner hears of it) and raise."""
        st = self._state.setdefault(accessory, _Attempts())
        now = self._clock()
        st.failures += 1
        locked = st.failures >= self.max_attempts
        if locked:
            st.lockouts += 1
            st.failures = 0
            st.locked_until = now + self.lockout_s * (2 ** (st.lockouts - 1))
        if self._db is not None:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO pairing_attempts (accessory, failures, lockouts, locked_until) "
                    "VALUES (?, ?, ?, ?)",
                    (accessory, st.failures, st.lockouts, st.locked_until),
                )
            except sqlite3.Error as exc:  # the count holds in memory; the owner still hears it
                log.warning("pairing attempts of %s not persisted: %s", accessory, exc)
        if locked:
            raise PairingError(
                f"wrong pairing code for {accessory}; locked out for {st.locked_until - now:.0f} s",
                locked_until=st.locked_until,
            )
        left = self.max_attempts - st.failures
        raise PairingError(f"wrong pairing code for {accessory}; {left} attempt(s) left", attempts_left=left)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class ProofLedger:
    """Pairing proofs already presented, newest kept: a proof is an HMAC over one challenge's
    nonce, so the same proof on a second connection can only be a replay."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[str, int] = OrderedDict()

    def first_use(self, proof: str, session_id: int) -> bool:
        """Record ``proof`` for ``session_id``; ``False`` if another session presented it before."""
        owner = self._seen.get(proof)
        if owner is not None:
            return owner == session_id
        self._seen[proof] = session_id
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True
