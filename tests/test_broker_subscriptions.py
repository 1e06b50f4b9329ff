"""Subscriptions: wildcards, current value first, filters, bounded queues that never block."""

from __future__ import annotations

import asyncio
import time

import pytest

from anycar.broker import (
    ChangeCondition,
    InvalidFilter,
    RangeCondition,
    SignalBroker,
    SubscriptionFilter,
)
from anycar.errors import InvalidPattern, UnknownPath
from anycar.model import parse_overlay

SPEED = "Vehicle.Speed"
DOORS = "Vehicle.Cabin.Door.*.*.IsOpen"
DRIVER_DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"


async def test_current_value_comes_first_then_updates(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED, "Vehicle.Cabin.Door"])
    p.publish(SPEED, 10)
    sub = broker.subscribe([SPEED, DOORS])
    assert [(d.path, d.value) for d in await sub.get()] == [(SPEED, 10.0)]
    p.publish(DRIVER_DOOR, True)
    p.publish(SPEED, 12)
    assert [(d.path, d.value) for d in await sub.get()] == [(DRIVER_DOOR, True), (SPEED, 12.0)]


async def test_an_unknown_path_does_not_end_the_others(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED, "Vehicle.Warp.Drive", "Vehicle..Bad"])
    assert set(sub.unknown) == {"Vehicle.Warp.Drive", "Vehicle..Bad"}
    assert isinstance(sub.unknown["Vehicle.Warp.Drive"], UnknownPath)
    assert isinstance(sub.unknown["Vehicle..Bad"], InvalidPattern)
    p.publish(SPEED, 1)
    assert len(await sub.get()) == 1


def test_all_unknown_is_an_error(broker: SignalBroker) -> None:
    with pytest.raises(UnknownPath):
        broker.subscribe(["Vehicle.Warp"])


async def test_unsubscribe_stops_delivery_and_wakes_the_reader(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED])
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    assert await reader == []
    p.publish(SPEED, 3)
    assert sub.pending == 0 and not broker.subscriptions()


async def test_a_subscriber_that_never_reads_blocks_nobody(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    stuck = broker.subscribe([SPEED], queue_size=10, name="stuck")
    live = broker.subscribe([SPEED], name="live")
    for i in range(1000):
        p.publish(SPEED, float(i % 200))
    assert stuck.pending == 10 and stuck.dropped == 990
    assert [d.value for d in stuck.drain()][-1] == float(999 % 200)  # the newest are kept
    assert len(live.drain()) == 1000 and live.dropped == 0
    assert broker.stats()["dropped"] == 990
    assert {s["name"]: s["dropped"] for s in broker.stats()["subscriptions"]} == {"stuck": 990, "live": 0}


async def test_change_filter_delivers_only_real_changes(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED], filter=SubscriptionFilter(change=ChangeCondition("gt", 5)))
    for v in (10, 12, 16, 17, 30, 29):
        p.publish(SPEED, v)
    assert [d.value for d in sub.drain()] == [10.0, 16.0, 30.0]


async def test_change_filter_ne_zero_on_booleans(broker: SignalBroker) -> None:
    p = broker.register_provider("p", ["Vehicle.Cabin.Door"])
    sub = broker.subscribe([DRIVER_DOOR], filter=SubscriptionFilter(change=ChangeCondition("ne", 0)))
    for v in (False, False, True, True, False):
        p.publish(DRIVER_DOOR, v)
    assert [d.value for d in sub.drain()] == [False, True, False]


async def test_range_filter(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    inside = SubscriptionFilter(ranges=(RangeCondition("ge", 50), RangeCondition("le", 100)))
    outside = SubscriptionFilter(
        ranges=(RangeCondition("lt", 50), RangeCondition("gt", 100)), range_combine="or"
    )
    a, b = broker.subscribe([SPEED], filter=inside), broker.subscribe([SPEED], filter=outside)
    for v in (10, 50, 75, 120):
        p.publish(SPEED, v)
    assert [d.value for d in a.drain()] == [50.0, 75.0]
    assert [d.value for d in b.drain()] == [10.0, 120.0]


async def test_min_period_holds_back_and_then_sends_the_latest(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED], filter=SubscriptionFilter(min_period_s=0.1))
    start = time.monotonic()
    for v in range(10):
        p.publish(SPEED, v)
    assert [d.value for d in await sub.get()] == [0.0]
    late = await sub.get(timeout=1)
    assert [d.value for d in late] == [9.0]
    assert time.monotonic() - start >= 0.09


@pytest.mark.parametrize(
    "make",
    [
        lambda: ChangeCondition("approx", 1),
        lambda: RangeCondition("gt", "ten"),
        lambda: RangeCondition("gt", float("nan")),
        lambda: SubscriptionFilter(min_period_s=-1),
        lambda: SubscriptionFilter(range_combine="xor"),
    ],
)
def test_bad_filters_are_refused(make: object) -> None:
    with pytest.raises(InvalidFilter):
        make()  # type: ignore[operator]


async def test_wildcard_subscriptions_pick_up_signals_added_by_overlays(broker: SignalBroker) -> None:
    sub = broker.subscribe(["Vehicle.Cabin.Light.**"])
    broker.catalog.apply_overlay(
        parse_overlay(
            {
                "Vehicle.Cabin.Light.Accessory1.IsOn": {
                    "type": "actuator",
                    "datatype": "boolean",
                    "description": "x",
                }
            }
        )
    )
    p = broker.register_provider("lamp", ["Vehicle.Cabin.Light.Accessory1.IsOn"])
    p.publish("Vehicle.Cabin.Light.Accessory1.IsOn", True)
    assert [d.path for d in sub.drain()] == ["Vehicle.Cabin.Light.Accessory1.IsOn"]


async def test_async_iteration_ends_on_close(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED])
    got: list[float] = []

    async def read() -> None:
        async for batch in sub:
            got.extend(d.value for d in batch)

    task = asyncio.create_task(read())
    for v in (1, 2, 3):
        p.publish(SPEED, v)
        await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(task, 1)
    assert got == [1.0, 2.0, 3.0]
