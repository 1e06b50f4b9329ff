"""The one place where anycar bends the ``ocpp`` package (2.1.0) to OCA's OCPP 2.1 schemas.

1. ``BatteryDataType``: the library's snake-to-camel conversion turns ``soc`` / ``soh`` into
   ``SoC`` / ``soh``, but OCA's schema wants ``soC`` / ``soH``; a BatterySwap built from the
   library's own dataclass therefore fails the library's own validation. ``battery_data`` builds
   the entry under OCA's names (which the conversion leaves alone), ``read_battery`` reads what
   ``camel_to_snake_case`` makes of them (``soc`` / ``soh``). ``tests/test_swap_ocpp21.py``
   fails the day the library's conversion changes, so this can go then.
2. The library answers nothing to an unknown action under 2.1 (its ``_raise_key_error`` only
   knows 1.6 and 2.0.1), maps a missing required field to ``ProtocolError`` (OCPP-J 2.x says
   ``OccurrenceConstraintViolation``), a bad enum or range to ``FormatViolation`` (2.x says
   ``PropertyConstraintViolation``), and drops a frame it cannot parse without a CALLERROR.
   ``Endpoint.route_message`` answers each with the CALLERROR OCPP-J 2.1 names. Validation
   itself stays the library's, against the schemas it ships.
3. The library validates each payload in the default thread pool (``ASYNC_VALIDATION``); a small
   OCPP payload validates in tens of microseconds, less than the hop to a thread and back costs,
   so validation runs in the event loop (``ASYNC_VALIDATION = False``, the library's own switch).
4. The library's validator (jsonschema's ``Draft4Validator``, cached per action, resolving every
   ``$ref`` through ``referencing`` on each call) took 30 µs for a StatusNotification and 210 µs
   for a TransactionEvent, most of the CSMS's CPU per message. Its hook ``_validate_payload`` is
   replaced by ``fast_validate``: the same schema file the library would read, compiled once by
   jsonschema-rs as Draft 4 (the library's dialect, whatever ``$schema`` says) without format
   assertions (the library asserts none), decides whether a payload is valid; a payload it
   refuses goes on to the library's own validator, so the CALLERROR (code and cause) is the one
   the library gives. ``set_mode("library")`` puts the library's validator back (the
   benchmark's "before"); ``tests/test_swap_ocpp21.py`` checks both agree, payload by payload.
5. Per CALL the library converts every key with two regular expressions (camelCase to
   snake_case, and a dozen ``str.replace`` back) and asks ``inspect.signature`` of the handler
   twice; after validation these were the largest costs. The conversions keep the library's own
   functions but remember each key's result (OCPP's field names are a small vocabulary; the memory
   is bounded), and the signature is remembered per handler function. Same results, by
   construction: each key still goes through the library's conversion once. Its
   ``serialize_as_dict`` of each answer (``asdict``'s deep copy, then a second walk) is one walk.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import jsonschema_rs
import ocpp.charge_point
import ocpp.messages
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack
from ocpp.v21 import ChargePoint
from ocpp.v21.enums import Action

ocpp.messages.ASYNC_VALIDATION = False
_LIBRARY_VALIDATE = ocpp.messages._validate_payload
_SCHEMAS = Path(ocpp.messages.__file__).resolve().parent / "v21" / "schemas"
SUBPROTOCOL = "ocpp2.1"
MAX_FRAME = 64 * 1024  # bytes; bigger frames are refused by the WebSocket layer before parsing
_ACTIONS = frozenset(a.value for a in Action)
QUIET = logging.getLogger("anycar.swap.ocpp")  # the library logs every frame at INFO; we keep it quiet
QUIET.setLevel(logging.WARNING)


def battery_data(
    evse_id: int, serial: str, soc: float, soh: float, *, production_date: str | None = None
) -> dict[str, Any]:
    """One BatteryDataType entry under OCA's field names (the workaround for ``soC`` / ``soH``)."""
    entry: dict[str, Any] = {"evseId": evse_id, "serialNumber": serial, "soC": soc, "soH": soh}
    if production_date:
        entry["productionDate"] = production_date
    return entry


def read_battery(entry: dict[str, Any]) -> tuple[int, str, float, float]:
    """(evse id, serial, SoC, SoH) from a BatteryDataType as the library hands it to a handler."""
    return int(entry["evse_id"]), str(entry["serial_number"]), float(entry["soc"]), float(entry["soh"])


@functools.cache
def fast_validator(message_type_id: int, action: str) -> Any:
    """The jsonschema-rs validator of the schema file the library reads for this OCPP 2.1 message
    (``None`` when there is none: the library then answers NotImplemented, as before)."""
    kind = {MessageType.Call: "Request", MessageType.CallResult: "Response"}.get(message_type_id)
    if kind is None or not action.isalnum():
        return None
    path = _SCHEMAS / f"{action}{kind}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    return jsonschema_rs.Draft4Validator(schema, validate_formats=False)


def fast_validate(message: Any, ocpp_version: str) -> None:
    """The library's validation hook, answered by jsonschema-rs when the payload is valid; anything
    else (invalid, another version, a payload jsonschema-rs cannot read) is the library's to judge."""
    if ocpp_version == "2.1" and type(message) in (Call, CallResult) and isinstance(message.action, str):
        validator = fast_validator(message.message_type_id, message.action)
        if validator is not None:
            try:
                if validator.is_valid(message.payload):
                    return
            except (ValueError, TypeError, OverflowError):  # e.g. a Decimal or an int beyond 64 bits
                pass
    _LIBRARY_VALIDATE(message, ocpp_version)


_LIBRARY_TO_SNAKE = ocpp.charge_point.camel_to_snake_case
_LIBRARY_TO_CAMEL = ocpp.charge_point.snake_to_camel_case


@functools.lru_cache(maxsize=8192)
def _snake_key(key: str) -> str:
    return next(iter(_LIBRARY_TO_SNAKE({key: None})))


@functools.lru_cache(maxsize=8192)
def _camel_key(key: str) -> str:
    return next(iter(_LIBRARY_TO_CAMEL({key: None})))


def camel_to_snake_case(data: Any) -> Any:
    """The library's camelCase → snake_case of every key, each distinct key converted once."""
    if isinstance(data, dict):
        return {_snake_key(k): camel_to_snake_case(v) for k, v in data.items()}
    if isinstance(data, list):
        return [camel_to_snake_case(v) for v in data]
    return data


def snake_to_camel_case(data: Any) -> Any:
    """The library's snake_case → camelCase of every key, each distinct key converted once."""
    if isinstance(data, dict):
        return {_camel_key(k): snake_to_camel_case(v) for k, v in data.items()}
    if isinstance(data, list):
        return [snake_to_camel_case(v) for v in data]
    return data


_LIBRARY_AS_DICT = ocpp.charge_point.serialize_as_dict


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return serialize_as_dict(value)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return copy.deepcopy(value) if not isinstance(value, str | int | float | bool | None) else value


def serialize_as_dict(dataclass: Any) -> dict[str, Any]:
    """The library's ``serialize_as_dict`` (``dataclasses.asdict``, then each nested dataclass
    again) in one walk: the same dict, new containers, without deep-copying strings and numbers."""
    return {f.name: _plain(getattr(dataclass, f.name)) for f in dataclasses.fields(dataclass)}


@functools.lru_cache(maxsize=1024)
def _function_signature(function: Any) -> inspect.Signature:
    return inspect.signature(function)


class _Inspect:
    """What ``ocpp.charge_point`` uses of ``inspect``, with each handler's signature remembered
    (a bound method's parameters are its function's, less ``self``: the library only asks
    whether ``call_unique_id`` is one of them)."""

    isawaitable = staticmethod(inspect.isawaitable)

    @staticmethod
    def signature(handler: Any) -> inspect.Signature:
        function = getattr(handler, "__func__", None)
        if function is None:
            return inspect.signature(handler)
        return _function_signature(function)


def set_mode(mode: str) -> None:
    """``fast``: items 4 and 5 above (the default); ``library``: the library's validation, key
    conversions and ``inspect`` as shipped (the benchmark's "before"). Validation is on in both."""
    if mode not in ("fast", "library"):
        raise ValueError(f"mode: fast or library, not {mode!r}")
    fast = mode == "fast"
    ocpp.messages._validate_payload = fast_validate if fast else _LIBRARY_VALIDATE
    ocpp.charge_point.camel_to_snake_case = camel_to_snake_case if fast else _LIBRARY_TO_SNAKE
    ocpp.charge_point.snake_to_camel_case = snake_to_camel_case if fast else _LIBRARY_TO_CAMEL
    ocpp.charge_point.inspect = _Inspect if fast else inspect
    ocpp.charge_point.serialize_as_dict = serialize_as_dict if fast else _LIBRARY_AS_DICT


set_mode("fast")


def _spec_error(exc: OCPPError) -> OCPPError:
    """The CALLERROR code OCPP-J 2.1 uses for a schema failure the library named otherwise."""
    cause = str((exc.details or {}).get("cause", exc.description))
    if isinstance(exc, ProtocolError) and "is a required property" in cause:
        return OccurrenceConstraintViolationError(details={"cause": cause})
    if isinstance(exc, FormatViolationError) and (
        "is not one of" in cause or "is less than" in cause or "is greater than" in cause
    ):
        return PropertyConstraintViolationError(details={"cause": cause})
    if isinstance(exc, FormatViolationError | TypeConstraintViolationError):
        # the library puts the whole message object into details; keep only the cause (JSON-safe)
        return type(exc)(details={"cause": cause})
    return exc


class Endpoint(ChargePoint):
    """An OCPP 2.1 endpoint (either side) that answers every bad frame with the right CALLERROR."""

    def __init__(
        self, ident: str, connection: Any, response_timeout: float = 30, handled: list[float] | None = None
    ) -> None:
        super().__init__(ident, connection, response_timeout=response_timeout, logger=QUIET)
        self.handled = handled  # if given: seconds from taking a CALL off the socket to its answer sent

    async def route_message(self, raw_msg: Any) -> None:
        # one frame at a time per connection, then the other connections' turn: a station that
        # floods (its frames already buffered) must not hold the event loop for all of them
        await asyncio.sleep(0)
        try:
            msg = unpack(raw_msg)
        except OCPPError as exc:
            await self._send(
                CallError(_unique_id(raw_msg), "RpcFrameworkError", str(exc.description), {}).to_json()
            )
            return
        if msg.message_type_id != MessageType.Call:
            self._response_queue.put_nowait(msg)
            return
        if not isinstance(msg.payload, dict) or not isinstance(msg.action, str):
            await self._send(
                msg.create_call_error(
                    FormatViolationError(details={"cause": "payload must be an object"})
                ).to_json()
            )
            return
        if msg.action not in self.route_map:
            error: OCPPError = (
                NotImplementedError(details={"cause": f"{msg.action} is not handled here"})
                if msg.action in _ACTIONS
                else NotSupportedError(details={"cause": f"{msg.action} is not an OCPP 2.1 action"})
            )
            await self._send(msg.create_call_error(error).to_json())
            return
        started = time.perf_counter()
        try:
            await self._handle_call(msg)
            if self.handled is not None and len(self.handled) < 10_000_000:
                self.handled.append(time.perf_counter() - started)
        except OCPPError as exc:
            await self._send(msg.create_call_error(_spec_error(exc)).to_json())
        except TypeError as exc:  # a valid payload our handler's signature does not take
            await self._send(
                msg.create_call_error(FormatViolationError(details={"cause": str(exc)[:200]})).to_json()
            )


def _unique_id(raw: Any) -> str:
    """The message id of a frame that could not be unpacked, or ``-1`` as OCPP-J says."""
    try:
        doc = json.loads(raw)
    except (ValueError, TypeError):
        return "-1"
    if isinstance(doc, list) and len(doc) > 1 and isinstance(doc[1], str) and len(doc[1]) <= 36:
        return doc[1]
    return "-1"


__all__ = [
    "MAX_FRAME",
    "SUBPROTOCOL",
    "Call",
    "Endpoint",
    "battery_data",
    "fast_validate",
    "read_battery",
    "set_mode",
]
