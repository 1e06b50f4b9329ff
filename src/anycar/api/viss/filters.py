"""VISS v2 filters turned into what the broker understands.

- ``paths``: ``parameter`` is one relative path or a list; each is appended to the request's
  path (``Vehicle.Cabin.Door`` + ``*.*.IsOpen``), wildcards allowed.
- ``timebased``: ``{"period": "500"}`` (ms): a notification every period with the current values.
- ``change``: ``{"logic-op": "ne", "diff": "0"}``: only when the value changed that way.
- ``range``: ``{"boundary-op": "gt", "boundary": "49"}``, or two of them in a list, the first
  holding ``"combination-op": "AND"`` (the default) or ``"OR"``.
- operators (change and range): ``eq ne gt gte lt lte``; ``ge``/``le`` and a range's
  ``logic-op`` (instead of ``boundary-op``) are taken as aliases, as earlier drafts spelled them.
- ``static-metadata`` (also ``metadata``): a get returns the metadata of the node asked for,
  keyed by its name; ``parameter`` ``""`` gives every key, a key name or a list of names only those.
- ``dynamic-metadata``: ``"server_capabilities"`` on ``Vehicle``: the filters and transports
  this server serves (the other dynamic metadata keys are refused).
- ``history``: ``"PT10M"`` (ISO 8601 duration): a get returns the recorded values of that
  period, oldest first, without the current value (the hub keeps the last values of each
  signal, see ``history.py``).
- ``curvelog``: ``{"maxerr": "0.5", "bufsize": "100"}``: numeric signals only; every
  ``bufsize`` updates of a signal, the points needed to redraw its curve within ``maxerr``.

Refusals use the 2024 reasons: a malformed filter is ``bad_request``, one that is well formed
but asks for what cannot be (an unknown dynamic metadata key, a duration out of range) is
``invalid_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anycar.api.viss.errors import VissError
from anycar.api.viss.history import parse_duration
from anycar.broker import ChangeCondition, InvalidFilter, RangeCondition, SubscriptionFilter

MIN_PERIOD_MS = 10
MAX_PERIOD_MS = 86_400_000
MAX_CURVELOG_BUFFER = 10_000
SERVER_CAPABILITIES = "server_capabilities"
# VISS operator -> the broker's; ge/le are the earlier spellings of gte/lte
OPERATORS = {"eq": "eq", "ne": "ne", "gt": "gt", "gte": "ge", "lt": "lt", "lte": "le", "ge": "ge", "le": "le"}
COMBINATIONS = {"AND": "and", "OR": "or"}
# what this server serves, for dynamic-metadata server_capabilities (names as the spec's tables spell them)
FILTERS_SERVED = (
    "timebased",
    "change",
    "paths",
    "range",
    "curvelog",
    "history",
    "static_metadata",
    "dynamic_metadata",
)


@dataclass
class Query:
    patterns: list[str]
    metadata: bool = False
    metadata_keys: tuple[str, ...] = ()  # static-metadata: only these keys (empty: all)
    dynamic: str | None = None  # dynamic-metadata: the key asked for
    period_s: float | None = None
    change: ChangeCondition | None = None
    ranges: list[RangeCondition] = field(default_factory=list)
    range_combine: str = "and"
    history_s: float | None = None
    curvelog: tuple[float, int] | None = None  # (maxerr, bufsize)

    def subscription_filter(self) -> SubscriptionFilter | None:
        if self.change is None and not self.ranges:
            return None
        return SubscriptionFilter(
            change=self.change, ranges=tuple(self.ranges), range_combine=self.range_combine
        )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise VissError("bad_request", f"{what} must be a number, got a boolean")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise VissError("bad_request", f"{what} must be a number, got {value!r:.40}") from None


def _condition_args(param: Any, op_key: str, bound_key: str, what: str) -> tuple[str, float]:
    """(broker operator, bound) of a change or range condition object."""
    if not isinstance(param, dict):
        raise VissError(
            "bad_request", f"{what} filter parameter must be an object with {op_key} and {bound_key}"
        )
    op = param.get(op_key, param.get("logic-op"))
    if not isinstance(op, str):
        raise VissError("bad_request", f"{what} filter needs a {op_key!r} string")
    if op not in OPERATORS:
        raise VissError("bad_request", f"{what} {op_key} {op[:20]!r} is not one of eq, ne, gt, gte, lt, lte")
    return OPERATORS[op], _number(param.get(bound_key), f"{what} '{bound_key}'")


def _ranges(param: Any) -> tuple[list[RangeCondition], str]:
    """One boundary object, or two in a list whose first may hold ``combination-op``."""
    items = param if isinstance(param, list) else [param]
    if not 1 <= len(items) <= 2:
        raise VissError("bad_request", "range filter takes one boundary object or a list of two")
    conditions = []
    for item in items:
        op, bound = _condition_args(item, "boundary-op", "boundary", "range")
        conditions.append(RangeCondition(op, bound))
    combination = items[0].get("combination-op", "AND")
    if not isinstance(combination, str) or combination.upper() not in COMBINATIONS:
        raise VissError("bad_request", "range combination-op must be 'AND' or 'OR'")
    return conditions, COMBINATIONS[combination.upper()]


def _metadata_keys(param: Any) -> tuple[str, ...]:
    """static-metadata's parameter: "" (every key), a key name, or a list of names."""
    keys = param if isinstance(param, list) else [param]
    if param is None or not all(isinstance(k, str) and len(k) <= 64 for k in keys) or len(keys) > 32:
        raise VissError(
            "bad_request", 'static-metadata parameter must be "", a metadata key name or a list of them'
        )
    return tuple(k for k in keys if k)


def _dynamic_key(param: Any) -> str:
    key = param[0] if isinstance(param, list) and len(param) == 1 else param
    if not isinstance(key, str):
        raise VissError("bad_request", "dynamic-metadata parameter must name one dynamic metadata key")
    if key != SERVER_CAPABILITIES:
        raise VissError(
            "invalid_data",
            f"dynamic metadata {key[:40]!r} is not kept here; this server serves {SERVER_CAPABILITIES!r}",
        )
    return key


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
                        "invalid_data",
                        f"period {period:g} ms is outside {MIN_PERIOD_MS}..{MAX_PERIOD_MS} ms",
                    )
                query.period_s = period / 1000
            elif kind == "change":
                op, diff = _condition_args(param, "logic-op", "diff", "change")
                query.change = ChangeCondition(op, diff)
            elif kind == "range":
                query.ranges, query.range_combine = _ranges(param)
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
                    raise VissError("invalid_data", str(exc)) from None
            elif kind in ("static-metadata", "metadata"):
                query.metadata = True
                query.metadata_keys = _metadata_keys(param)
            elif kind == "dynamic-metadata":
                query.dynamic = _dynamic_key(param)
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
    if action == "subscribe" and (query.metadata or query.history_s is not None or query.dynamic):
        raise VissError("bad_request", "static-metadata, dynamic-metadata and history apply to get only")
    if query.dynamic == SERVER_CAPABILITIES and (path != "Vehicle" or len(filters) > 1):
        raise VissError(
            "bad_request", "server_capabilities is asked of the path 'Vehicle', with no other filter"
        )
    return query
