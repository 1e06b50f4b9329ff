"""A batch of values goes to each subscriber in one step: the same updates, in the same order,
with the same drops and refusals as writing them one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.broker import ChangeCondition, SignalBroker, SubscriptionFilter
from anycar.errors import InvalidValue, NotProvider, UnknownPath
from anycar.model import Catalog

SPEED = "Vehicle.Speed"
LOW = "Vehicle.ADAS.ESC.RoadFriction.LowerBound"  # percent, 0..100
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
PATHS = [SPEED, LOW, DOOR, WINDOW]
VALUES: dict[str, Any] = {
    SPEED: [0.0, 50.5, 120.0],
    LOW: [0.0, 10.0, 250.0],
    DOOR: [True, False],
    WINDOW: [0, 40, 100],
}
CATALOG = Catalog.load_default()


def _updates(sub: Any) -> list[tuple[str, Any]]:
    return [(d.path, d.value) for d in sub.drain()]


async def test_each_subscriber_gets_its_own_signals_of_a_batch_in_order(broker: SignalBroker) -> None:
    p = broker.register_provider("p", PATHS)
    speed_only = broker.subscribe([SPEED], send_current=False)
    doors = broker.subscribe(["Vehicle.Cabin.Door.Row1.DriverSide.**"], send_current=False)
    everything = broker.subscribe(PATHS, send_current=False)
    batch = [(DOOR, True), (SPEED, 10.0), (WINDOW, 40), (SPEED, 11.0), (DOOR, False)]
    assert p.publish_many(batch, 1.0) == {}
    assert _updates(speed_only) == [(SPEED, 10.0), (SPEED, 11.0)]
    assert _updates(doors) == [(DOOR, True), (WINDOW, 40), (DOOR, False)]
    assert _updates(everything) == batch
    assert broker.get(SPEED) is not None and broker.get(SPEED).value == 11.0  # type: ignore[union-attr]


async def test_a_batch_larger_than_the_queue_keeps_the_newest_and_counts_the_rest(
    broker: SignalBroker,
) -> None:
    p = broker.register_provider("p", [SPEED])
    sub = broker.subscribe([SPEED], queue_size=3, send_current=False)
    waiting = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    p.publish_many([(SPEED, float(v)) for v in range(8)])
    assert [d.value for d in await asyncio.wait_for(waiting, 5)] == [5.0, 6.0, 7.0]
    assert sub.dropped == 5 and sub.delivered == 3


async def test_a_filtered_subscriber_sees_a_batch_as_separate_writes(broker: SignalBroker) -> None:
    p = broker.register_provider("p", [SPEED])
    changes = broker.subscribe(
        [SPEED], filter=SubscriptionFilter(change=ChangeCondition("ne", 0)), send_current=False
    )
    p.publish_many([(SPEED, 1.0), (SPEED, 1.0), (SPEED, 2.0), (SPEED, 2.0), (SPEED, 1.0)])
    assert [d.value for d in changes.drain()] == [1.0, 2.0, 1.0]


def test_refusals_by_signal_are_those_by_path(broker: SignalBroker) -> None:
    mine = broker.register_provider("mine", [SPEED, LOW])
    broker.register_provider("other", [DOOR])
    sub = broker.subscribe([SPEED, LOW, DOOR], send_current=False)
    sig = broker.catalog.get
    errors = mine.publish_signals([(sig(SPEED), 30.0), (sig(LOW), 250.0), (sig(DOOR), True)])
    assert isinstance(errors[LOW], InvalidValue) and isinstance(errors[DOOR], NotProvider)
    assert set(errors) == {LOW, DOOR} and mine.rejected == 2 and mine.published == 1
    by_path = mine.publish_many([(SPEED, 31.0), ("Vehicle.NoSuchThing", 1.0), (LOW, 250.0)])
    assert isinstance(by_path["Vehicle.NoSuchThing"], UnknownPath) and set(by_path) == {
        "Vehicle.NoSuchThing",
        LOW,
    }
    assert broker.rejected == 4 and [d.value for d in sub.drain()] == [30.0, 31.0]


batches = st.lists(
    st.lists(
        st.sampled_from(PATHS).flatmap(lambda p: st.tuples(st.just(p), st.sampled_from(VALUES[p]))),
        max_size=12,
    ),
    max_size=6,
)
patterns = st.lists(
    st.lists(st.sampled_from(PATHS), min_size=1, max_size=4, unique=True), min_size=1, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(batches=batches, subscribers=patterns, queue=st.integers(1, 20))
def test_batched_delivery_equals_writing_one_value_at_a_time(
    batches: list[list[tuple[str, Any]]], subscribers: list[list[str]], queue: int
) -> None:
    async def run(batched: bool) -> tuple[list[list[tuple[str, Any]]], list[int], dict[str, str]]:
        broker = SignalBroker(CATALOG)
        p = broker.register_provider("p", PATHS)
        subs = [broker.subscribe(s, queue_size=queue, send_current=False) for s in subscribers]
        refused: dict[str, str] = {}
        for batch in batches:
            if batched:
                refused.update({k: type(v).__name__ for k, v in p.publish_many(batch, 1.0).items()})
            else:
                for item in batch:
                    refused.update({k: type(v).__name__ for k, v in p.publish_many([item], 1.0).items()})
        return [_updates(s) for s in subs], [s.dropped for s in subs], refused

    assert asyncio.run(run(True)) == asyncio.run(run(False))


def test_counts_of_a_message_that_refuses_a_signal_twice_given_as_a_generator(broker: SignalBroker) -> None:
    mine = broker.register_provider("mine", [SPEED, LOW])
    broker.register_provider("other", [DOOR])
    sig = broker.catalog.get
    items = [(sig(SPEED), 1.0), (sig(LOW), 250.0), (sig(LOW), 300.0), (sig(DOOR), True), (sig(SPEED), None)]
    errors = mine.publish_signals(item for item in items)
    assert set(errors) == {LOW, DOOR} and "300" in str(errors[LOW])
    assert (mine.published, broker.updates) == (2, 2)  # SPEED twice; a refused value is not counted
    assert (mine.rejected, broker.rejected) == (2, 2)  # one per entry of the returned map, as before
    assert broker.get(SPEED) is not None and broker.get(SPEED).value is None  # type: ignore[union-attr]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(PATHS), min_size=1, max_size=4)), max_size=10)
)
def test_signals_with_the_same_subscribers_share_one_set_and_a_closed_one_is_let_go(
    steps: list[tuple[bool, list[str]]],
) -> None:
    """Subscribe and close in any order: each signal's subscribers are the live subscriptions
    that cover it, in the order they subscribed; equal sets are one object; no set of the
    broker's table holds a closed subscription."""
    broker = SignalBroker(CATALOG)
    live: list[Any] = []
    for close, paths in steps:
        if close and live:
            live.pop(len(paths) % len(live)).close()
        else:
            live.append(broker.subscribe(paths, send_current=False))
        sets = {q: broker._subscribers[CATALOG.get(q).id] for q in PATHS}
        for q, subs in sets.items():
            assert subs == tuple(s for s in live if q in s.patterns)
            assert all(subs is other for other in sets.values() if other == subs)
        assert all(not s.closed for subs in broker._subscriber_sets for s in subs)
