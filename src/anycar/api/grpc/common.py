"""What the gRPC services share: the caller's grants, error -> status mapping, signal look-up."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from kuksa.val.v2 import types_pb2 as t2

from anycar.api.auth import Action, Authorizer, Forbidden, Grants, TokenError
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
from anycar.model import Catalog, Signal

# the KUKSA databroker's MAX_REQUEST_PATH_LENGTH: a longer path is INVALID_ARGUMENT, not NOT_FOUND
MAX_PATH_LENGTH = 1000


class InvalidRequest(AnycarError):
    """A request wrong in its shape (a SignalID with neither id nor path, a path too long, no
    ids at all): INVALID_ARGUMENT, as the databroker answers, whatever the catalog holds."""

    code = 400
    reason = "bad_request"


STATUS_OF: list[tuple[type[AnycarError], grpc.StatusCode]] = [
    (TokenError, grpc.StatusCode.UNAUTHENTICATED),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (NotProvider, grpc.StatusCode.PERMISSION_DENIED),
    (UnknownPath, grpc.StatusCode.NOT_FOUND),
    (AlreadyClaimed, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidPattern, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidValue, grpc.StatusCode.INVALID_ARGUMENT),
    (WrongSignalType, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidFilter, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
]

ACTUATION_STATUS = {
    ActuationStatus.NO_PROVIDER: grpc.StatusCode.UNAVAILABLE,
    ActuationStatus.REJECTED: grpc.StatusCode.ABORTED,
    ActuationStatus.TIMED_OUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_of(exc: AnycarError) -> grpc.StatusCode:
    for kind, code in STATUS_OF:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def error_v2(exc: AnycarError) -> t2.Error:
    """The per-signal error a provider stream reports (PublishValuesResponse.status)."""
    code = status_of(exc)
    kind = {
        grpc.StatusCode.NOT_FOUND: t2.ERROR_CODE_NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED: t2.ERROR_CODE_PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS: t2.ERROR_CODE_PERMISSION_DENIED,
    }.get(code, t2.ERROR_CODE_INVALID_ARGUMENT)
    return t2.Error(code=kind, message=str(exc))


async def abort(context: grpc.aio.ServicerContext, exc: AnycarError) -> NoReturn:
    await context.abort(status_of(exc), str(exc))
    raise AssertionError("unreachable")  # context.abort raises


async def abort_actuation(context: grpc.aio.ServicerContext, result: ActuationResult) -> NoReturn:
    code = ACTUATION_STATUS.get(result.status, grpc.StatusCode.UNKNOWN)
    await context.abort(code, f"{result.path}: {result.status}: {result.reason}")
    raise AssertionError("unreachable")


def token_of(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode()
    return None


class Access:
    """Resolves signals and checks the caller's grants for one request."""

    def __init__(self, authorizer: Authorizer, catalog: Catalog) -> None:
        self.authorizer = authorizer
        self.catalog = catalog

    def grants(self, context: grpc.aio.ServicerContext) -> Grants:
        return self.authorizer.grants(token_of(context))

    def signal(self, signal_id: Any) -> Signal:
        """A ``types.SignalID`` (by id or path) -> the signal; raises ``UnknownPath`` for a
        signal that does not exist, ``InvalidRequest`` for a SignalID that names none."""
        which = signal_id.WhichOneof("signal")
        if which == "id":
            return self.catalog.by_id(signal_id.id)
        if which == "path":
            return self.catalog.get(checked_path(signal_id.path))
        raise InvalidRequest("No SignalId provided: the SignalID has neither id nor path")

    def resolve(self, grants: Grants, patterns: list[str], action: Action) -> list[Signal]:
        """Every signal the patterns cover, all of them allowed for ``action`` or an error."""
        out: list[Signal] = []
        seen: set[int] = set()
        for pattern in patterns:
            for sig in self.catalog.resolve(checked_path(pattern)):
                if sig.id not in seen:
                    grants.check(action, sig.path)
                    seen.add(sig.id)
                    out.append(sig)
        return out


def checked_path(path: str) -> str:
    """``path`` unless it is longer than the databroker takes (then ``InvalidRequest``)."""
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidRequest(f"The provided path is too long ({len(path)} > {MAX_PATH_LENGTH} characters)")
    return path
