"""Writing and reading values: only a signal's provider writes it, and only valid values land."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.broker import SignalBroker
from anycar.errors import AlreadyClaimed, InvalidValue, NotProvider, UnknownPath
from anycar.model import Catalog

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def test_provider_writes_and_everyone_reads(broker: SignalBroker) -> None:
    assert broker.get(SPEED) is None
    can = broker.register_provider("can", [SPEED, SOC])
    dp = can.publish(SPEED, 42)
    assert dp.value == 42.0 and type(dp.value) is float and dp.timestamp > 0
    assert broker.get(SPEED) == dp
    assert broker.provider_of(SPEED) == "can"


def test_only_the_claiming_provider_may_write(broker: SignalBroker) -> None:
    broker.register_provider("can", [SPEED])
    intruder = broker.register_provider("intruder")
    with pytest.raises(NotProvider, match="provided by provider 'can'"):
        intruder.publish(SPEED, 10)
    with pytest.raises(NotProvider, match="unclaimed"):
        intruder.publish(SOC, 10)
    assert broker.get(SPEED) is None


def test_a_second_claim_is_refused_and_claims_are_all_or_nothing(broker: SignalBroker) -> None:
    broker.register_provider("can", [SPEED])
    other = broker.register_provider("other")
    with pytest.raises(AlreadyClaimed):
        other.claim([SOC, SPEED])
    assert broker.provider_of(SOC) is None
    with pytest.raises(AlreadyClaimed):
        broker.register_provider("can")


def test_closing_a_provider_frees_its_claims(broker: SignalBroker) -> None:
    can = broker.register_provider("can", ["Vehicle.Cabin.Door"])
    can.close()
    assert broker.provider_of("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen") is None
    broker.register_provider("can", ["Vehicle.Cabin.Door"])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (SPEED, math.nan, "not a finite number"),
        (SPEED, math.inf, "not a finite number"),
        (SPEED, "fast", "expected float"),
        (SOC, 101.0, "outside"),
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", 1, "expected boolean"),
        ("Vehicle.VehicleIdentification.VIN", "NOT-A-VIN", "pattern"),
        ("Vehicle.VehicleIdentification.Brand", "x" * 5000, "exceeds"),
    ],
)
def test_bad_values_are_refused_precisely(
    broker: SignalBroker, path: str, value: object, message: str
) -> None:
    p = broker.register_provider("p", [path])
    with pytest.raises(InvalidValue, match=message) as info:
        p.publish(path, value)
    assert info.value.path == path
    assert broker.get(path) is None


def test_a_batch_keeps_its_good_entries(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED, SOC])
    errors = p.publish_many([(SPEED, 10), (SOC, 500), ("Vehicle.Nope", 1)])
    assert set(errors) == {SOC, "Vehicle.Nope"}
    assert isinstance(errors["Vehicle.Nope"], UnknownPath)
    assert broker.get(SPEED).value == 10.0  # type: ignore[union-attr]
    assert broker.stats()["rejected"] == 2


def test_unavailable_is_a_value_of_none(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    p.publish(SPEED, 5)
    p.mark_unavailable()
    dp = broker.get(SPEED)
    assert dp is not None and dp.value is None


def test_unknown_paths_on_read(broker: SignalBroker) -> None:
    with pytest.raises(UnknownPath):
        broker.get("Vehicle.Warp")
    assert set(broker.get_many(["Vehicle.Cabin.Door.*.*.IsOpen"])) == {
        f"Vehicle.Cabin.Door.Row{r}.{s}.IsOpen" for r in (1, 2) for s in ("DriverSide", "PassengerSide")
    }


SHARED = Catalog.load_default()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)), max_size=30
    )
)
def test_random_writes_leave_only_valid_values(values: list[object]) -> None:
    broker = SignalBroker(SHARED)
    p = broker.register_provider("p", [SOC])
    last = None
    for v in values:
        if v is None:
            continue
        with contextlib.suppress(InvalidValue):
            last = p.publish(SOC, v).value
        dp = broker.get(SOC)
        assert (dp.value if dp else None) == last
        assert last is None or (isinstance(last, float) and 0 <= last <= 100)
    p.close()
