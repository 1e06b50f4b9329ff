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
    TooManySignals,
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
    (TooManySignals, grpc.StatusCode.RESOURCE_EXHAUSTED),
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

    def signal(self, grants: Grants, signal_id: Any, action: Action) -> Signal:
        """A ``types.SignalID`` (by id or path) -> the signal, if ``grants`` allow ``action`` on it.

        An unknown path or id is NOT_FOUND only for a caller whose rights could cover it; anyone
        else gets PERMISSION_DENIED, as for a signal it may not touch. A SignalID that names
        nothing, or a path over 1,000 characters, is ``InvalidRequest``.
        """
        which = signal_id.WhichOneof("signal")
        if which == "id":
            return self.by_id(grants, signal_id.id, action)
        if which == "path":
            return grants.signal(self.catalog, checked_path(signal_id.path), action)
        raise InvalidRequest("No SignalId provided: the SignalID has neither id nor path")

    def by_id(self, grants: Grants, signal_id: int, action: Action) -> Signal:
        try:
            sig = self.catalog.by_id(signal_id)
        except UnknownPath:
            raise self.by_id_error(grants, signal_id, action) from None
        grants.check(action, sig.path)
        return sig

    @staticmethod
    def by_id_error(grants: Grants, signal_id: int, action: Action) -> AnycarError:
        """An unknown id: NOT_FOUND for a caller holding ``action`` on everything, else 403."""
        if grants.unlimited(action):
            return UnknownPath(f"#{signal_id}", "no signal has this id")
        return Forbidden(f"{grants.subject or 'this client'} may not {action} signal #{signal_id}")

    def resolve(self, grants: Grants, patterns: list[str], action: Action) -> list[Signal]:
        """Every signal the patterns cover, all of them allowed for ``action`` or an error."""
        out = grants.resolve_all(self.catalog, [checked_path(p) for p in patterns], action)
        return out


def checked_path(path: str) -> str:
    """``path`` unless it is longer than the databroker takes (then ``InvalidRequest``)."""
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidRequest(f"The provided path is too long ({len(path)} > {MAX_PATH_LENGTH} characters)")
    return path
