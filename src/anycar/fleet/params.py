"""What every fleet route shares for a bad request: the error it raises, the JSON body it answers
with, and query parameters read with their bounds, so a bad one is the same one-line 400 on
every route."""

from __future__ import annotations

from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

D = TypeVar("D")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def error(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "reason": reason, "message": message}}, status_code=status)


def query_int(request: Request, name: str, default: D, low: int, high: int) -> int | D:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: {raw[:40]!r} is not an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name}: {value} is not in {low}..{high}")
    return value


def query_float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: {raw[:40]!r} is not a number") from None
    if value != value or abs(value) > 1e12:  # NaN, inf, or a time no fleet has
        raise ApiError(400, "bad_parameter", f"{name}: out of range")
    return value
