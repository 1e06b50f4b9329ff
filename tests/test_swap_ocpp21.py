"""The ``ocpp`` library's BatteryData defect, and the one place that works around it.

If one of the first two tests fails, the library has changed its snake-to-camel conversion:
look at ``anycar.swap.ocpp21.battery_data`` again (the workaround may be dropped then)."""

from __future__ import annotations

import pytest
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, _validate_payload
from ocpp.v21 import call
from ocpp.v21.datatypes import BatteryDataType

from anycar.swap.ocpp21 import battery_data, read_battery

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
