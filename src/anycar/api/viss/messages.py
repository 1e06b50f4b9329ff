"""Parsing VISS v2 request messages, and the shapes of responses.

Requests (WebSocket, one JSON object per text message)::

    {"action": "get", "path": "Vehicle.Speed", "requestId": "1"}
    {"action": "get", "path": "Vehicle.Cabin.Door", "filter": {"type": "paths", "parameter": ["*.*.IsOpen"]},
     "requestId": "2", "authorization": "<JWT>"}
    {"action": "set", "path": "Vehicle.Cabin.Light.IsDomeOn", "value": "true", "requestId": "3"}
    {"action": "subscribe", "path": "Vehicle.Speed", "filter": {"type": "change",
     "parameter": {"logic-op": "ne", "diff": "0"}}, "requestId": "4"}
    {"action": "unsubscribe", "subscriptionId": "1", "requestId": "5"}

Everything from the outside is checked here: any other shape is a ``bad_request`` that says
which field is wrong, so the rest of the server only sees well-formed requests. A path holds
no wildcard (the spec's rule; several nodes are addressed with the ``paths`` filter).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from anycar import decoding
from anycar.api.viss.errors import VissError

ACTIONS = ("get", "set", "subscribe", "unsubscribe")
MAX_ID_LENGTH = 128
MAX_PATH_LENGTH = 1024


@dataclass(frozen=True)
class Request:
    action: str
    request_id: str
    path: str = ""
    value: Any = None
    filters: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    subscription_id: str = ""
    authorization: str | None = None


def loads(text: str | bytes, max_bytes: int, what: str = "message") -> Any:
    """Bounded, strict JSON (``anycar.decoding``) with the failure as a VISS ``bad_request``."""
    try:
        return decoding.loads(text, max_bytes=max_bytes, what=what)
    except decoding.DecodingError as exc:
        raise VissError("bad_request", str(exc)) from None


def peek(text: str | bytes) -> tuple[str | None, str | None]:
    """The action and requestId of a message, if they can be read at all (for error replies)."""
    try:
        data = decoding.loads(text)
    except decoding.DecodingError:
        return _scan_ids(text)
    if not isinstance(data, dict):
        return None, None
    action, rid = data.get("action"), data.get("requestId")
    return (
        action if isinstance(action, str) and action in ACTIONS else None,
        _id_text(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None,
    )


_ACTION_FIELD = re.compile(r'"action"\s*:\s*"(get|set|subscribe|unsubscribe)"')
_ID_FIELD = re.compile(r'"requestId"\s*:\s*(?:"([A-Za-z0-9_.:-]{1,128})"|(\d{1,20})\b)')


def _scan_ids(text: str | bytes) -> tuple[str | None, str | None]:
    """For a message that does not decode (too deep, not UTF-8...): the action and a plain
    requestId found in its text, so that the error reply still says which request it answers."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    action, rid = _ACTION_FIELD.search(text), _ID_FIELD.search(text)
    return (action.group(1) if action else None, (rid.group(1) or rid.group(2)) if rid else None)


def _id_text(value: Any) -> str:
    return str(value)[:MAX_ID_LENGTH]


def _string(data: dict[str, Any], key: str, *, required: bool = True, limit: int = MAX_PATH_LENGTH) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise VissError("bad_request", f"field {key!r} is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise VissError("bad_request", f"field {key!r} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise VissError("bad_request", f"field {key!r} is empty")
    if len(text) > limit:
        raise VissError("bad_request", f"field {key!r} of {len(text)} characters exceeds {limit}")
    return text


def normalize_path(path: str) -> str:
    """VISS allows '/' as well as '.' between nodes (HTTP URLs use '/')."""
    return path.strip("/").replace("/", ".")


def parse_request(text: str | bytes, max_bytes: int = 65_536) -> Request:
    """One request, or ``VissError`` saying what is wrong with it."""
    data = loads(text, max_bytes)
    if not isinstance(data, dict):
        raise VissError("bad_request", f"message must be a JSON object, got {type(data).__name__}")
    return parse_object(data)


def parse_object(data: dict[str, Any]) -> Request:
    action = data.get("action")
    if not isinstance(action, str):
        raise VissError("bad_request", "field 'action' is missing or not a string")
    if action not in ACTIONS:
        raise VissError(
            "bad_request", f"unknown action {action[:40]!r}; expected one of {', '.join(ACTIONS)}"
        )
    request_id = _string(data, "requestId", limit=MAX_ID_LENGTH)
    authorization = data.get("authorization")
    if authorization is not None and not isinstance(authorization, str):
        raise VissError("invalid_token", "field 'authorization' must be a string holding the token")
    if action == "unsubscribe":
        return Request(
            action,
            request_id,
            subscription_id=_string(data, "subscriptionId", limit=MAX_ID_LENGTH),
            authorization=authorization,
        )
    path = normalize_path(_string(data, "path"))
    if not path:
        raise VissError("bad_request", "field 'path' is empty")
    if "*" in path:
        # VISS v2 Core, "Path URI Component": the path MUST not contain wildcards
        raise VissError("bad_request", "field 'path' must not contain wildcards ('*'); use the paths filter")
    filters = _filters(data.get("filter"))
    value = None
    if action == "set":
        if "value" not in data:
            raise VissError("bad_request", "a set request needs a 'value'")
        value = data["value"]
        _check_value(value)
        if filters:
            raise VissError("bad_request", "a set request takes no filter")
    return Request(action, request_id, path=path, value=value, filters=filters, authorization=authorization)


def _filters(raw: Any) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > 8:
        raise VissError("bad_request", "field 'filter' must hold 1 to 8 filter objects")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise VissError("bad_request", f"filter [{i}] must be an object")
        kind = item.get("type", item.get("variant", item.get("op-type")))
        if not isinstance(kind, str):
            raise VissError("bad_request", f"filter [{i}] needs a 'type' string")
        parameter = item.get("parameter", item.get("value", item.get("op-value")))
        out.append({"type": kind, "parameter": parameter})
    return tuple(out)


def _check_value(value: Any, depth: int = 0) -> None:
    if isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VissError("invalid_data", "value must be finite")
        return
    if isinstance(value, list) and depth == 0:
        for item in value:
            _check_value(item, 1)
        return
    raise VissError(
        "invalid_data", f"value must be a string, number, boolean or flat list, got {type(value).__name__}"
    )


# -- responses ----------------------------------------------------------------------------------
_SECOND_TEXT: dict[int, str] = {}
_LAST: list[Any] = [None, ""]  # the last timestamp formatted and its text


def iso(ts: float) -> str:
    """VISS timestamps: ISO 8601, UTC, trailing Z, microseconds.

    Called for every datapoint sent, so the text of the whole second is cached, and the last
    text is kept: the datapoints of one provider message usually share their timestamp.
    """
    last = _LAST
    if ts == last[0]:
        text: str = last[1]
        return text
    second = int(ts)
    # rounded, not cut: a stamp sent as whole microseconds (a kuksa.val.v2 provider's seconds
    # and nanos) comes out as the same microsecond, whatever the float in between made of it
    micros = round((ts - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    prefix = _SECOND_TEXT.get(second)
    if prefix is None:
        if len(_SECOND_TEXT) > 64:
            _SECOND_TEXT.clear()
        prefix = _SECOND_TEXT[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    text = f"{prefix}.{micros:06d}Z"
    last[0], last[1] = ts, text
    return text


def now_iso() -> str:
    return iso(time.time())


def error_response(
    error: VissError, action: str | None = None, request_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action is not None:
        out["action"] = action
    if request_id is not None:
        out["requestId"] = request_id
    out.update(extra)
    out["error"] = error.to_json()
    out["ts"] = now_iso()
    return out
