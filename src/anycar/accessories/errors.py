"""Errors of the accessories room; each says what was refused, where, and what would pass."""

from __future__ import annotations

from typing import Any

from anycar.errors import AnycarError


class ManifestError(AnycarError):
    """A manifest breaks the schema, the trait catalog or the VSS overlay rules.

    ``field`` is the exact place, as a path like ``power.peak_w`` or ``vss.Intensity.unit``.
    """

    code = 400
    reason = "invalid_manifest"

    def __init__(self, message: str, *, field: str = "", problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.field = field
        self.problems = problems if problems is not None else [(field, message)]


class AttestationError(AnycarError):
    """The manifest's signature is missing, forged, unknown or revoked."""

    code = 401
    reason = "attestation_failed"


class PairingError(AnycarError):
    """A wrong pairing code, or a pairing attempt while locked out."""

    code = 401
    reason = "pairing_failed"

    def __init__(self, message: str, *, locked_until: float | None = None, attempts_left: int = 0):
        super().__init__(message)
        self.locked_until = locked_until
        self.attempts_left = attempts_left


class FitRefused(AnycarError):
    """The mount type does not fit or the mount/rail power budget does not allow it.

    ``free`` lists what is free (mounts with type and watts, rails with watts left).
    """

    code = 409
    reason = "fit_refused"

    def __init__(self, message: str, *, free: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.free = free or {}


class ProtocolError(AnycarError):
    """A malformed accessory protocol message; ``field`` names the offending field."""

    code = 400
    reason = "bad_message"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class VendorKeyNotFound(AnycarError):
    """No trusted (or revoked) vendor key has this id."""

    code = 404
    reason = "not_found"


class AccessoryNotFound(AnycarError):
    code = 404
    reason = "not_found"
