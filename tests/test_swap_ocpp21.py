"""The ``ocpp`` library's BatteryData defect, and the one place that works around it.

If one of the first two tests fails, the library has changed its snake-to-camel conversion:
look at ``anycar.swap.ocpp21.battery_data`` again (the workaround may be dropped then)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import ocpp.charge_point
import ocpp.messages
import pytest
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, _validate_payload, get_validator
from ocpp.v21 import call
from ocpp.v21.datatypes import BatteryDataType

from anycar.swap.ocpp21 import (
    _LIBRARY_TO_CAMEL,
    _LIBRARY_TO_SNAKE,
    battery_data,
    fast_validate,
    fast_validator,
    read_battery,
    set_mode,
)

TOKEN = {"idToken": "abc", "type": "Central"}


def _frame(payload: object) -> Call:
    """What ``ChargePoint.call`` puts on the wire for ``payload`` (its own three steps)."""
    return Call("1", "BatterySwap", remove_nones(snake_to_camel_case(serialize_as_dict(payload))))


def test_the_library_still_names_batterydata_soc_wrong() -> None:
    wire = snake_to_camel_case({"soc": 50.0, "soh": 90.0})
    assert wire == {"SoC": 50.0, "soh": 90.0}  # OCA's schema says soC / soH


def test_a_batteryswap_from_the_librarys_own_dataclass_fails_its_own_validation() -> None:
    own = call.BatterySwap(
        battery_data=[BatteryDataType(evse_id=1, serial_number="P1", soc=50.0, soh=90.0)],
        event_type="BatteryIn",
        id_token=TOKEN,
        request_id=7,
    )
    with pytest.raises(OCPPError):
        _validate_payload(_frame(own), "2.1")


def test_the_workaround_passes_validation_and_reads_back() -> None:
    ours = call.BatterySwap(
        battery_data=[battery_data(1, "P1", 50.0, 90.0)], event_type="BatteryIn", id_token=TOKEN, request_id=7
    )
    frame = _frame(ours)
    _validate_payload(frame, "2.1")  # raises if not OCA's shape
    assert frame.payload["batteryData"] == [{"evseId": 1, "serialNumber": "P1", "soC": 50.0, "soH": 90.0}]
    handed = camel_to_snake_case(frame.payload)["battery_data"][0]  # what a handler receives
    assert read_battery(handed) == (1, "P1", 50.0, 90.0)


def test_out_of_range_soc_is_refused_by_the_schema() -> None:
    bad = call.BatterySwap(
        battery_data=[battery_data(1, "P1", 150.0, 90.0)],
        event_type="BatteryIn",
        id_token=TOKEN,
        request_id=7,
    )
    with pytest.raises(OCPPError):
        _validate_payload(_frame(bad), "2.1")


# --- the fast path (jsonschema-rs, remembered key conversions) says what the library says -----

NOW = "2026-12-01T10:00:00.000Z"
ID = {"idToken": "abc", "type": "Central"}
SAMPLED = [
    {
        "timestamp": NOW,
        "sampledValue": [
            {"value": 7000.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            {"value": 61.5, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
        ],
    }
]
PROFILE = {
    "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
    "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "startSchedule": NOW,
                          "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000.0}, {"startPeriod": 3600, "limit": 0.0}]}],
}  # fmt: skip
# every message the CSMS and the simulator exchange, as (message type, action, a valid payload)
SAMPLES = [
    (2, "BootNotification", {"chargingStation": {"model": "PM-8", "vendorName": "anycar", "firmwareVersion": "1.0.0", "serialNumber": "s1"}, "reason": "PowerUp"}),
    (2, "Heartbeat", {}),
    (2, "StatusNotification", {"timestamp": NOW, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}),
    (2, "Authorize", {"idToken": ID}),
    (2, "TransactionEvent", {"eventType": "Updated", "timestamp": NOW, "triggerReason": "MeterValuePeriodic", "seqNo": 3,
                             "transactionInfo": {"transactionId": "t1", "chargingState": "Charging"}, "evse": {"id": 1, "connectorId": 1}, "meterValue": SAMPLED}),
    (2, "MeterValues", {"evseId": 2, "meterValue": SAMPLED}),
    (2, "BatterySwap", {"batteryData": [battery_data(1, "P1", 50.0, 90.0)], "eventType": "BatteryIn", "idToken": ID, "requestId": 7}),
    (2, "FirmwareStatusNotification", {"status": "Downloading", "requestId": 1}),
    (2, "ReservationStatusUpdate", {"reservationId": 5, "reservationUpdateStatus": "Expired"}),
    (2, "RequestBatterySwap", {"idToken": ID, "requestId": 7}),
    (2, "ReserveNow", {"id": 5, "expiryDateTime": NOW, "idToken": ID, "evseId": 1}),
    (2, "CancelReservation", {"reservationId": 5}),
    (2, "SetChargingProfile", {"evseId": 1, "chargingProfile": PROFILE}),
    (2, "GetVariables", {"getVariableData": [{"component": {"name": "BatterySwapCtrlr"}, "variable": {"name": "SwapOrder"}}]}),
    (2, "SetVariables", {"setVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "30"}]}),
    (2, "Reset", {"type": "OnIdle"}),
    (3, "BootNotification", {"currentTime": NOW, "interval": 60, "status": "Accepted"}),
    (3, "Heartbeat", {"currentTime": NOW}),
    (3, "Authorize", {"idTokenInfo": {"status": "Accepted"}}),
    (3, "StatusNotification", {}),
    (3, "ReserveNow", {"status": "Occupied"}),
    (3, "CancelReservation", {"status": "Rejected"}),
    (3, "RequestBatterySwap", {"status": "Accepted"}),
    (3, "SetChargingProfile", {"status": "Accepted"}),
    (3, "GetVariables", {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "In-Out", "component": {"name": "BatterySwapCtrlr"}, "variable": {"name": "SwapOrder"}}]}),
    (3, "Reset", {"status": "Accepted"}),
]  # fmt: skip
ODD = ["x", "x" * 600, "💡" * 30, 0, 1, 1.0, 1.5, -1, 2**31, 10**30, True, None, [], {}, [1], {"a": 1}]


def _mutations(doc: Any) -> Iterator[Any]:
    """The payload with each value in turn dropped, replaced by an odd one, or joined by a stranger."""
    if isinstance(doc, dict):
        yield {**doc, "bogus": 1}
        for key, value in doc.items():
            yield {k: v for k, v in doc.items() if k != key}
            for odd in ODD:
                yield {**doc, key: odd}
            for inner in _mutations(value):
                yield {**doc, key: inner}
    elif isinstance(doc, list):
        yield []
        yield doc + doc
        for i, value in enumerate(doc):
            for inner in _mutations(value):
                yield [*doc[:i], inner, *doc[i + 1 :]]


def test_the_fast_validator_agrees_with_the_librarys_on_every_mutation() -> None:
    verdicts = {True: 0, False: 0}
    for kind, action, payload in SAMPLES:
        fast, library = fast_validator(kind, action), get_validator(kind, action, "2.1")
        assert fast is not None, action
        assert fast.is_valid(payload) and library.is_valid(payload), action
        for mutated in _mutations(payload):
            says = library.is_valid(mutated)
            assert fast.is_valid(mutated) == says, (action, kind, mutated)
            verdicts[says] += 1
    assert verdicts[True] > 100 and verdicts[False] > 1000  # both kinds were compared, many times


def test_the_fast_path_is_on_and_gives_the_librarys_callerrors() -> None:
    assert ocpp.messages._validate_payload is fast_validate
    bad = [
        ("StatusNotification", {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1}),
        ("StatusNotification", {"timestamp": NOW, "connectorStatus": "Exploded", "evseId": 1, "connectorId": 1}),
        ("StatusNotification", {"timestamp": NOW, "connectorStatus": "Available", "evseId": "1", "connectorId": 1}),
        ("Heartbeat", {"bogus": 1}),
        ("BatterySwap", {"batteryData": [{"evseId": 1, "serialNumber": "P", "SoC": 5, "soh": 5}], "eventType": "BatteryIn", "idToken": ID, "requestId": 1}),
        ("SwapMyCar", {}),
    ]  # fmt: skip
    for action, payload in bad:
        raised = []
        for mode in ("library", "fast"):
            set_mode(mode)
            try:
                with pytest.raises(OCPPError) as caught:
                    ocpp.messages._validate_payload(Call("1", action, payload), "2.1")
            finally:
                set_mode("fast")
            raised.append((type(caught.value), caught.value.details.get("cause")))
        assert raised[0] == raised[1], action


def test_the_remembered_conversions_and_signatures_are_the_librarys() -> None:
    for _, _, payload in SAMPLES:
        assert ocpp.charge_point.camel_to_snake_case(payload) == _LIBRARY_TO_SNAKE(payload)
        snake = _LIBRARY_TO_SNAKE(payload)
        assert ocpp.charge_point.snake_to_camel_case(snake) == _LIBRARY_TO_CAMEL(snake)

    class Handler:
        def with_id(self, call_unique_id: str, **_: Any) -> None: ...

        def without(self, **_: Any) -> None: ...

    h = Handler()
    for bound in (h.with_id, h.without):
        remembered = ocpp.charge_point.inspect.signature(bound)
        assert ("call_unique_id" in remembered.parameters) == (
            "call_unique_id" in inspect.signature(bound).parameters
        )


def test_the_one_walk_serialize_as_dict_is_the_librarys() -> None:
    from ocpp.v21 import call_result
    from ocpp.v21.datatypes import IdTokenType

    from anycar.swap.ocpp21 import _LIBRARY_AS_DICT

    samples = [
        call_result.BootNotification(current_time=NOW, interval=60, status="Accepted"),
        call_result.Authorize(id_token_info={"status": "Accepted"}),
        call_result.StatusNotification(),
        call.BatterySwap(
            battery_data=[BatteryDataType(evse_id=1, serial_number="P1", soc=50.0, soh=90.0)],
            event_type="BatteryIn", id_token=IdTokenType(id_token="abc", type="Central"), request_id=7,
        ),
        call.ReserveNow(id=5, expiry_date_time=NOW, id_token=ID, evse_id=None),
        call.SetChargingProfile(evse_id=1, charging_profile=PROFILE),
        call_result.GetVariables(get_variable_result=[{"attribute_status": "Accepted", "component": {"name": "C"}, "variable": {"name": "V"}}]),
    ]  # fmt: skip
    for sample in samples:
        ours = ocpp.charge_point.serialize_as_dict(sample)
        assert ours == _LIBRARY_AS_DICT(sample), sample
    nested = samples[5]
    ours = ocpp.charge_point.serialize_as_dict(nested)
    assert ours["charging_profile"] is not PROFILE  # new containers, as asdict makes
