"""Commissioning guard: pairing codes are checked against the proof the accessory sent, and
repeated wrong codes lock the accessory out for a while (doubling each time), as Matter
commissioners and HomeKit do against guessing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from anycar.accessories.errors import PairingError
from anycar.accessories.protocol import normalize_code, pairing_proof, proofs_match


@dataclass
class _Attempts:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0


class PairingGuard:
    def __init__(
        self,
        *,
        max_attempts: int = 5,
        lockout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_attempts = max_attempts
        self.lockout_s = lockout_s
        self._clock = clock
        self._state: dict[str, _Attempts] = {}

    def locked_for(self, accessory: str) -> float:
        st = self._state.get(accessory)
        return max(0.0, st.locked_until - self._clock()) if st is not None else 0.0

    def check(self, accessory: str, code: str, *, nonce: str, serial: str, proof: str | None) -> None:
        """Pass, or raise ``PairingError`` (wrong code, or locked out, with seconds left)."""
        st = self._state.setdefault(accessory, _Attempts())
        now = self._clock()
        if st.locked_until > now:
            raise PairingError(
                f"{accessory} is locked out for {st.locked_until - now:.0f} s after "
                f"{self.max_attempts} wrong pairing codes",
                locked_until=st.locked_until,
            )
        if proof is None:
            raise PairingError(f"{accessory} sent no pairing proof; it must show its code and send the proof")
        if proofs_match(pairing_proof(normalize_code(code), nonce, serial), proof):
            self._state.pop(accessory, None)
            return
        st.failures += 1
        if st.failures >= self.max_attempts:
            st.lockouts += 1
            st.failures = 0
            st.locked_until = now + self.lockout_s * (2 ** (st.lockouts - 1))
            raise PairingError(
                f"wrong pairing code for {accessory}; locked out for {st.locked_until - now:.0f} s",
                locked_until=st.locked_until,
            )
        left = self.max_attempts - st.failures
        raise PairingError(f"wrong pairing code for {accessory}; {left} attempt(s) left", attempts_left=left)
