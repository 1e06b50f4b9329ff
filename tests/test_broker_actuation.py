"""Actuation: forwarded to the one provider, the requester always learns the outcome."""

from __future__ import annotations

import asyncio

import pytest

from anycar.broker import ActuationRejected, ActuationRequest, ActuationStatus, SignalBroker
from anycar.errors import InvalidValue, UnknownPath, WrongSignalType

WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
LIGHT = "Vehicle.Cabin.Light.IsDomeOn"


async def test_accepted_request_reaches_the_provider_and_value_changes_only_when_reported(
    broker: SignalBroker,
) -> None:
    seen: list[ActuationRequest] = []
    provider = broker.register_provider("body", [WINDOW], on_actuate=seen.append)
    result = await broker.actuate(WINDOW, 50, requester="app")
    assert result.ok and result.status is ActuationStatus.ACCEPTED
    assert seen == [ActuationRequest(WINDOW, 50, "app")]
    assert broker.get(WINDOW) is None  # not until the provider says so
    provider.publish(WINDOW, 50)
    assert broker.get(WINDOW).value == 50  # type: ignore[union-attr]


async def test_rejection_carries_the_providers_reason(broker: SignalBroker) -> None:
    def refuse(req: ActuationRequest) -> None:
        raise ActuationRejected("child lock engaged")

    broker.register_provider("body", [WINDOW], on_actuate=refuse)
    result = await broker.actuate(WINDOW, 10)
    assert (result.status, result.reason) == (ActuationStatus.REJECTED, "child lock engaged")


async def test_no_provider(broker: SignalBroker) -> None:
    result = await broker.actuate(LIGHT, True)
    assert result.status is ActuationStatus.NO_PROVIDER
    broker.register_provider("sensor-only", [LIGHT])  # claimed but serves no actuation
    assert (await broker.actuate(LIGHT, True)).status is ActuationStatus.NO_PROVIDER


async def test_a_provider_that_never_answers_times_out(broker: SignalBroker) -> None:
    async def never(req: ActuationRequest) -> None:
        await asyncio.Event().wait()

    broker.register_provider("sleepy", [LIGHT], on_actuate=never)
    result = await broker.actuate(LIGHT, True, timeout=0.05)
    assert result.status is ActuationStatus.TIMED_OUT and "0.05" in result.reason
    assert broker.stats()["actuations"]["timed_out"] == 1


async def test_a_provider_that_goes_away_mid_request(broker: SignalBroker) -> None:
    async def vanish(req: ActuationRequest) -> None:
        provider.close()
        raise ConnectionError("stream closed")

    provider = broker.register_provider("flaky", [LIGHT], on_actuate=vanish)
    result = await broker.actuate(LIGHT, True)
    assert result.status is ActuationStatus.NO_PROVIDER


async def test_a_provider_bug_is_a_rejection_not_a_crash(broker: SignalBroker) -> None:
    def buggy(req: ActuationRequest) -> None:
        raise KeyError("oops")

    broker.register_provider("buggy", [LIGHT], on_actuate=buggy)
    result = await broker.actuate(LIGHT, False)
    assert result.status is ActuationStatus.REJECTED and "provider error" in result.reason


async def test_wrong_requests_raise_before_reaching_anyone(broker: SignalBroker) -> None:
    calls: list[ActuationRequest] = []
    broker.register_provider("body", [WINDOW, "Vehicle.Speed"], on_actuate=calls.append)
    with pytest.raises(WrongSignalType, match="only actuators"):
        await broker.actuate("Vehicle.Speed", 10)
    with pytest.raises(InvalidValue, match="outside"):
        await broker.actuate(WINDOW, 101)
    with pytest.raises(UnknownPath):
        await broker.actuate("Vehicle.Cabin.Teleporter", True)
    assert calls == []


async def test_batch_is_checked_whole_then_forwarded(broker: SignalBroker) -> None:
    calls: list[ActuationRequest] = []
    broker.register_provider("body", [WINDOW], on_actuate=calls.append)
    with pytest.raises(InvalidValue):
        await broker.actuate_many({WINDOW: 10, LIGHT: "bright"})
    assert calls == []
    results = await broker.actuate_many({WINDOW: 10, LIGHT: True})
    assert [r.status for r in results] == [ActuationStatus.ACCEPTED, ActuationStatus.NO_PROVIDER]
