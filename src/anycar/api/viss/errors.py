"""VISS v2 errors: the spec's table of numbers, reasons and messages, and how anycar's errors map.

Each error object on the wire is ``{"number": 404, "reason": "unavailable_data", "message": "..."}``.
The reasons and messages are the 2024 table of VISS v2 Transport (as COVESA keeps it in
``VISSv2.x_TransportExamples.html``, "Status Codes"); 429, 500, 502 and 504, which that table
leaves to HTTP, keep the earlier table's words. The message is the spec's text followed by what
exactly was wrong, so a developer can act on it. Over HTTP a 401 also carries
``WWW-Authenticate`` (RFC 6750), as the spec's "Authorized Read" example shows.
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
    "bad_request": (400, "The request is malformed."),
    "invalid_data": (400, "Data present in the request is invalid."),
    "expired_token": (401, "Access token has expired."),
    "invalid_token": (401, "Access token is invalid."),
    "missing_token": (401, "Access token is missing."),
    "forbidden_request": (403, "The server refuses to carry out the request."),
    "unavailable_data": (404, "The requested data was not found."),
    "too_many_requests": (429, "The client has sent the server too many requests in a given amount of time."),
    "internal_server_error": (500, "The server encountered an unexpected condition."),
    "bad_gateway": (
        502,
        "The server was acting as a gateway or proxy and received an invalid response from an upstream server.",
    ),
    "service_unavailable": (503, "The server is temporarily unable to handle the request."),
    "gateway_timeout": (
        504,
        "The server did not receive a timely response from an upstream server it needed to access in "
        "order to complete the request.",
    ),
}

# the reasons of the earlier (2022/2023) table -> the 2024 reason that replaced them, so code
# written against the earlier names still answers with the current ones
EARLIER: dict[str, str] = {
    "filter_invalid": "invalid_data",
    "invalid_duration": "invalid_data",
    "invalid_value": "invalid_data",
    "token_expired": "expired_token",  # nosec B105 # reason names, not passwords
    "token_invalid": "invalid_token",  # nosec B105 # reason names
    "token_missing": "missing_token",  # nosec B105 # reason names
    "too_many_attempts": "invalid_token",
    "read_only": "forbidden_request",
    "user_forbidden": "forbidden_request",
    "user_unknown": "forbidden_request",
    "device_forbidden": "forbidden_request",
    "device_unknown": "forbidden_request",
    "insufficient_privileges": "forbidden_request",
    "invalid_path": "unavailable_data",
    "private_path": "unavailable_data",
    "invalid_subscription_id": "invalid_data",
    "not_acceptable": "bad_request",
}


class VissError(Exception):
    """An error to send back; ``reason`` must be a key of ``TABLE``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        reason = EARLIER.get(reason, reason)
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
        return VissError("expired_token", detail)
    if isinstance(exc, TokenMissing):
        return VissError("missing_token", detail)
    if isinstance(exc, (TokenInvalid, TokenError)):
        return VissError("invalid_token", detail)
    if isinstance(exc, (Forbidden, NotProvider, AlreadyClaimed)):
        return VissError("forbidden_request", detail)
    if isinstance(exc, UnknownPath):
        return VissError("unavailable_data", detail)
    if isinstance(exc, WrongSignalType):
        # setting a sensor or attribute: the request is well formed, the server will not do it
        return VissError("forbidden_request" if setting else "bad_request", detail)
    if isinstance(exc, InvalidValue):
        return VissError("invalid_data", detail)
    if isinstance(exc, InvalidFilter):
        return VissError("invalid_data" if "non-primitive" in detail else "bad_request", detail)
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
    return VissError("invalid_data", f"refused by the provider: {detail}")


def http_headers(error: VissError, realm: str = "anycar") -> dict[str, str]:
    """Headers an HTTP error response carries: a 401 names the Bearer scheme (RFC 6750 §3),
    with ``error="invalid_token"`` unless the token was simply missing."""
    if error.number != 401:
        return {}
    challenge = f'Bearer realm="{realm}"'
    if error.reason != "missing_token":
        description = (
            "The access token expired" if error.reason == "expired_token" else "The access token is invalid"
        )
        challenge += f', error="invalid_token", error_description="{description}"'
    return {"WWW-Authenticate": challenge}
