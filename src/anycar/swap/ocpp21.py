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
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

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
from ocpp.messages import Call, CallError, MessageType, unpack
from ocpp.v21 import ChargePoint
from ocpp.v21.enums import Action

ocpp.messages.ASYNC_VALIDATION = False
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


__all__ = ["MAX_FRAME", "SUBPROTOCOL", "Call", "Endpoint", "battery_data", "read_battery"]
