"""Actuation: a request for an actuator to take a value, and what became of it.

The requester always learns the outcome. The actuator's current value changes only when its
provider reports the new value, as in KUKSA; acceptance means the provider took the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ActuationStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    NO_PROVIDER = "no_provider"


@dataclass(frozen=True, slots=True)
class ActuationRequest:
    """What a provider's handler receives."""

    path: str
    value: Any
    requester: str | None = None


@dataclass(frozen=True, slots=True)
class ActuationResult:
    path: str
    status: ActuationStatus
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is ActuationStatus.ACCEPTED


class ActuationRejected(Exception):
    """Raised by a provider's handler to refuse a request, with the reason the requester sees."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
