"""VISS v2 filters turned into what the broker understands.

- ``paths``: ``parameter`` is one relative path or a list; each is appended to the request's
  path (``Vehicle.Cabin.Door`` + ``*.*.IsOpen``), wildcards allowed.
- ``timebased``: ``{"period": "500"}`` (ms): a notification every period with the current values.
- ``change``: ``{"logic-op": "ne", "diff": "0"}``: only when the value changed that way.
- ``range``: ``{"logic-op": "gt", "boundary": "50"}`` or a list of them (all must hold).
- ``static-metadata`` (also ``metadata``): a get returns the metadata tree instead of values.
- ``history``: ``"PT10M"`` (ISO 8601 duration): a get returns the recorded values of that
  period, oldest first (the hub keeps the last values of each signal, see ``history.py``).
- ``curvelog``: ``{"maxerr": "0.5", "bufsize": "100"}``: numeric signals only; every
  ``bufsize`` updates of a signal, the points needed to redraw its curve within ``maxerr``.
``dynamic-metadata`` is refused as ``filter_invalid`` with a message that says it is not
supported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.api.viss.errors import VissError
from anycar.api.viss.history import parse_duration
from anycar.broker import ChangeCondition, InvalidFilter, RangeCondition, SubscriptionFilter

MIN_PERIOD_MS = 10
MAX_PERIOD_MS = 86_400_000
UNSUPPORTED = ("dynamic-metadata",)
MAX_CURVELOG_BUFFER = 10_000


@dataclass
class Query:
    patterns: list[str]
    metadata: bool = False
    period_s: float | None = None
    change: ChangeCondition | None = None
    ranges: list[RangeCondition] = field(default_factory=list)
    history_s: float | None = None
    curvelog: tuple[float, int] | None = None  # (maxerr, bufsize)

    def subscription_filter(self) -> SubscriptionFilter | None:
        if self.change is None and not self.ranges:
            return None
        return SubscriptionFilter(change=self.change, ranges=tuple(self.ranges))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise VissError("bad_request", f"{what} must be a number, got a boolean")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise VissError("bad_request", f"{what} must be a number, got {value!r:.40}") from None


def _condition_args(param: Any, bound_key: str, what: str) -> tuple[str, float]:
    if not isinstance(param, dict):
        raise VissError(
            "bad_request", f"{what} filter parameter must be an object with logic-op and {bound_key}"
        )
    op = param.get("logic-op")
    if not isinstance(op, str):
        raise VissError("bad_request", f"{what} filter needs a 'logic-op' string")
    return op, _number(param.get(bound_key), f"{what} '{bound_key}'")


def build_query(path: str, filters: tuple[dict[str, Any], ...], action: str) -> Query:
    query = Query(patterns=[path])
    seen: set[str] = set()
    for item in filters:
        kind, param = item["type"], item["parameter"]
        if kind in seen:
            raise VissError("bad_request", f"filter type {kind!r} given twice")
        seen.add(kind)
        try:
            if kind == "paths":
                rel = param if isinstance(param, list) else [param]
                if not rel or len(rel) > 256 or not all(isinstance(p, str) and p for p in rel):
                    raise VissError("bad_request", "paths filter parameter must be a non-empty list of paths")
                query.patterns = [f"{path}.{p.strip('.').replace('/', '.')}" for p in rel]
            elif kind == "timebased":
                if not isinstance(param, dict) or "period" not in param:
                    raise VissError("bad_request", "timebased filter needs {'period': milliseconds}")
                period = _number(param["period"], "timebased 'period'")
                if not MIN_PERIOD_MS <= period <= MAX_PERIOD_MS:
                    raise VissError(
                        "invalid_duration",
                        f"period {period:g} ms is outside {MIN_PERIOD_MS}..{MAX_PERIOD_MS} ms",
                    )
                query.period_s = period / 1000
            elif kind == "change":
                op, diff = _condition_args(param, "diff", "change")
                query.change = ChangeCondition(op, diff)
            elif kind == "range":
                items = param if isinstance(param, list) else [param]
                if not items or len(items) > 8:
                    raise VissError("bad_request", "range filter takes 1 to 8 conditions")
                for cond in items:
                    op, bound = _condition_args(cond, "boundary", "range")
                    query.ranges.append(RangeCondition(op, bound))
            elif kind == "curvelog":
                if not isinstance(param, dict):
                    raise VissError(
                        "bad_request", "curvelog filter needs {'maxerr': number, 'bufsize': count}"
                    )
                maxerr = _number(param.get("maxerr"), "curvelog 'maxerr'")
                bufsize = _number(param.get("bufsize"), "curvelog 'bufsize'")
                if maxerr < 0 or not 2 <= bufsize <= MAX_CURVELOG_BUFFER or bufsize != int(bufsize):
                    raise VissError(
                        "bad_request",
                        f"curvelog needs maxerr >= 0 and a whole bufsize in 2..{MAX_CURVELOG_BUFFER}",
                    )
                query.curvelog = (maxerr, int(bufsize))
            elif kind == "history":
                try:
                    query.history_s = parse_duration(param)
                except ValueError as exc:
                    raise VissError("invalid_duration", str(exc)) from None
            elif kind in ("static-metadata", "metadata"):
                query.metadata = True
            elif kind in UNSUPPORTED:
                raise VissError("filter_invalid", f"the {kind!r} filter is not supported by this server")
            else:
                raise VissError("bad_request", f"unknown filter type {kind[:40]!r}")
        except InvalidFilter as exc:
            raise VissError("bad_request", str(exc)) from None
    if action == "get" and (
        query.period_s is not None or query.change is not None or query.ranges or query.curvelog is not None
    ):
        raise VissError(
            "bad_request", "timebased, change, range and curvelog filters apply to subscribe only"
        )
    if query.curvelog is not None and query.period_s is not None:
        raise VissError("bad_request", "curvelog and timebased cannot be combined")
    if action == "subscribe" and (query.metadata or query.history_s is not None):
        raise VissError("bad_request", "static-metadata and history apply to get only")
    return query
