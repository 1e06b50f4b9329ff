"""VISS v2 errors: the spec's table of numbers, reasons and messages, and how anycar's errors map.

Each error object on the wire is ``{"number": 404, "reason": "invalid_path", "message": "..."}``.
The message is the spec's text followed by what exactly was wrong, so a developer can act on it.
"""

from __future__ import annotations

from typing import Any

from anycar.api.auth import Forbidden, TokenError, TokenExpired, TokenInvalid, TokenMissing
from anycar.broker import ActuationResult, ActuationStatus, InvalidFilter
from anycar.errors import (
    AlreadyClaimed,
    AnycarError,
    InvalidPattern,
    InvalidValue,
    NotProvider,
    UnknownPath,
    WrongSignalType,
)

# reason -> (number, the spec's message)
TABLE: dict[str, tuple[int, str]] = {
    "bad_request": (
        400,
        "The server is unable to fulfil the client request because the request is malformed.",
    ),
    "filter_invalid": (400, "Filter requested on non-primitive type."),
    "invalid_duration": (400, "Time duration is invalid."),
    "invalid_value": (400, "The requested set value is invalid."),
    "token_expired": (401, "Access token has expired."),
    "token_invalid": (401, "Access token is invalid."),
    "token_missing": (401, "Access token is missing."),
    "too_many_attempts": (401, "The client has failed to authenticate too many times."),
    "read_only": (401, "The desired signal cannot be set since it is a read only signal."),
    "user_forbidden": (
        403,
        "The user is not permitted to access the requested resource. Retrying does not help.",
    ),
    "user_unknown": (403, "The user is unknown. Retrying does not help."),
    "invalid_path": (404, "The specified data path does not exist."),
    "private_path": (
        404,
        "The specified data path is private and the request is not authorized to access signals on this path.",
    ),
    "unavailable_data": (404, "The requested data was not found."),
    "invalid_subscription_id": (404, "The specified subscription was not found."),
    "insufficient_privileges": (406, "The privileges represented by the access token are not sufficient."),
    "not_acceptable": (406, "The server is unable to generate content that is acceptable to the client"),
    "too_many_requests": (429, "The client has sent the server too many requests in a given amount of time."),
    "bad_gateway": (
        502,
        "The server was acting as a gateway or proxy and received an invalid response from an upstream server.",
    ),
    "service_unavailable": (
        503,
        "The server is currently unable to handle the request due to a temporary overload or scheduled "
        "maintenance (which may be alleviated after some delay).",
    ),
    "gateway_timeout": (
        504,
        "The server did not receive a timely response from an upstream server it needed to access in "
        "order to complete the request.",
    ),
    "internal_server_error": (500, "The server encountered an unexpected condition."),
}


class VissError(Exception):
    """An error to send back; ``reason`` must be a key of ``TABLE``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in TABLE:
            raise ValueError(f"unknown VISS error reason {reason!r}")
        self.number, spec_message = TABLE[reason]
        self.reason = reason
        self.detail = detail
        self.message = f"{spec_message} {detail}".strip() if detail else spec_message
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "reason": self.reason, "message": self.message}


def from_anycar(exc: AnycarError, *, setting: bool = False) -> VissError:
    """The VISS error for an anycar error raised while serving a request."""
    detail = str(exc)
    if isinstance(exc, TokenExpired):
        return VissError("token_expired", detail)
    if isinstance(exc, TokenMissing):
        return VissError("token_missing", detail)
    if isinstance(exc, (TokenInvalid, TokenError)):
        return VissError("token_invalid", detail)
    if isinstance(exc, (Forbidden, NotProvider, AlreadyClaimed)):
        return VissError("user_forbidden", detail)
    if isinstance(exc, UnknownPath):
        return VissError("invalid_path", detail)
    if isinstance(exc, WrongSignalType):
        return VissError("read_only" if setting else "bad_request", detail)
    if isinstance(exc, InvalidValue):
        return VissError("invalid_value", detail)
    if isinstance(exc, InvalidFilter):
        return VissError("filter_invalid" if "non-primitive" in detail else "bad_request", detail)
    if isinstance(exc, InvalidPattern):
        return VissError("bad_request", detail)
    return VissError("bad_request", detail)


def from_actuation(result: ActuationResult) -> VissError:
    """A set that did not take: no provider, refused by the provider, or no answer in time."""
    detail = f"{result.path}: {result.reason}" if result.reason else result.path
    if result.status is ActuationStatus.NO_PROVIDER:
        return VissError("service_unavailable", detail)
    if result.status is ActuationStatus.TIMED_OUT:
        return VissError("gateway_timeout", detail)
    return VissError("invalid_value", f"refused by the provider: {detail}")
