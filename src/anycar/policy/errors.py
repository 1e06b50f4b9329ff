"""Errors of the policy room: a refusal says what was refused and why."""

from __future__ import annotations

from anycar.errors import AnycarError


class PermissionDenied(AnycarError):
    """A subject tried to read, write or actuate beyond its grant, or a safety-critical signal."""

    code = 403
    reason = "forbidden_request"


class Restricted(AnycarError):
    """A driving-state UX restriction or load shedding forbids this now; it may pass later."""

    code = 409
    reason = "restricted"
