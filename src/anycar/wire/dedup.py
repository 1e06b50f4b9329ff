"""Dropping duplicates by (vehicle, boot, seq), as the fleet does: the spool resends whatever the
broker did not acknowledge, so a receiver may see a message twice and must count it once.

Per (vehicle, boot) it keeps the highest gapless sequence number and the few seen above it, so
memory stays small while the backlog and live data arrive interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Run:
    floor: int = 0  # every seq <= floor was seen
    above: set[int] = field(default_factory=set)


class Deduplicator:
    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], _Run] = {}
        self.duplicates = 0
        self.accepted = 0

    def first_time(self, vehicle: str, boot: str, seq: int) -> bool:
        """True the first time a (vehicle, boot, seq) is offered, False for every repeat.

        ``seq`` 0 (state messages, idempotent) is always new."""
        if seq == 0:
            return True
        run = self._runs.setdefault((vehicle, boot), _Run())
        if seq <= run.floor or seq in run.above:
            self.duplicates += 1
            return False
        run.above.add(seq)
        while run.floor + 1 in run.above:
            run.floor += 1
            run.above.discard(run.floor)
        self.accepted += 1
        return True

    def missing(self, vehicle: str, boot: str) -> int:
        """How many numbers below the highest one seen have not arrived (yet)."""
        run = self._runs.get((vehicle, boot))
        if run is None or not run.above:
            return 0
        return max(run.above) - run.floor - len(run.above)
