"""Errors shared by every room of anycar.

Each error carries a stable ``code`` (an HTTP-like number, as VISS uses) and a ``reason`` word,
so that every API can translate it into its own wire format without guessing.
"""

from __future__ import annotations


class AnycarError(Exception):
    """Base of every error anycar raises on purpose."""

    code = 400
    reason = "bad_request"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class UnknownPath(AnycarError):
    """A path or pattern names no node of the catalog."""

    code = 404
    reason = "invalid_path"

    def __init__(self, path: str, detail: str = "") -> None:
        msg = f"unknown path {path!r}" + (f": {detail}" if detail else "")
        super().__init__(msg, path=path)


class InvalidPattern(AnycarError):
    """A wildcard pattern is malformed."""

    code = 400
    reason = "bad_request"


class TooManySignals(AnycarError):
    """One request names too many patterns or covers too many signals (``anycar.model.paths``)."""

    code = 400
    reason = "bad_request"


class InvalidValue(AnycarError):
    """A value does not fit the signal's datatype, limits, allowed values or pattern."""

    code = 400
    reason = "bad_request"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"invalid value for {path}: {detail}", path=path)
        self.detail = detail


class WrongSignalType(AnycarError):
    """The operation does not apply to this kind of node (e.g. actuating a sensor)."""

    code = 400
    reason = "bad_request"


class NotProvider(AnycarError):
    """Someone other than the signal's provider tried to write it."""

    code = 403
    reason = "forbidden_request"


class AlreadyClaimed(AnycarError):
    """A provider tried to claim a signal another provider holds."""

    code = 409
    reason = "already_claimed"


class OverlayError(AnycarError):
    """A VSS overlay is malformed; the message names the file, node and field."""

    code = 400
    reason = "bad_request"


class ConfigError(AnycarError):
    """A configuration or data file is malformed; the message names where."""

    code = 400
    reason = "bad_request"
