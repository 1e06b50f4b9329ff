"""A subscriber's queue bounded in time: updates that waited longer than ``max_age_s`` are
dropped and counted (``expired``) when a later update of the same signal is queued, the rest
delivered in order; a signal's newest value is never lost; sizes and counts always add up."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.broker import SignalBroker
from anycar.broker import subscription as subscription_module
from anycar.broker.datapoint import Datapoint
from anycar.broker.subscription import Subscription
from anycar.model import Catalog
from apis_support import hub_config, running_hub


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


PATHS = ("Vehicle.Speed", "Vehicle.Speed", "Vehicle.CurrentLocation.Latitude")


def dp(i: int) -> Datapoint:
    return Datapoint(PATHS[i % len(PATHS)], float(i), 0.0)


# one step: ("one", n) offer n values one at a time, ("many", n) offer n values as one batch,
# ("wait", s) let s seconds pass, ("take", k) drain at most k (0: all)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("one"), st.integers(1, 4)),
        st.tuples(st.just("many"), st.integers(0, 6)),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.01, 0.04, 0.06, 0.2])),
        st.tuples(st.just("take"), st.integers(0, 5)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, size=st.integers(1, 8))
def test_expiry_matches_a_model_of_queued_times(steps: list[tuple[str, float]], size: int) -> None:
    """Against a plain model (each update with the time it was queued; full queue drops the
    oldest; a drain first drops what waited longer than the bound and has a later update of the
    same signal queued): the same updates come out, in the same order, and delivered + dropped +
    expired + queued = offered."""
    clock = Clock()
    original = subscription_module.time
    subscription_module.time = clock  # type: ignore[assignment]
    try:
        sub = Subscription(["Vehicle.Speed"], queue_size=size, max_age_s=0.05)
        model: list[tuple[int, str, float]] = []
        out: list[float] = []
        expected: list[float] = []
        dropped = expired = offered = 0
        for kind, n in steps:
            if kind in ("one", "many"):
                items = [dp(offered + i) for i in range(int(n))]
                offered += len(items)
                if kind == "one":
                    for item in items:
                        sub.offer(item)
                else:
                    sub.offer_many(items)
                for item in items:
                    model.append((int(item.value), item.path, clock.now))
                    if len(model) > size:
                        model.pop(0)
                        dropped += 1
            elif kind == "wait":
                clock.now += n
            else:
                oldest = clock.now - 0.05
                superseded = [
                    i
                    for i, (_, path, at) in enumerate(model)
                    if at < oldest and any(p == path for _, p, _ in model[i + 1 :])
                ]
                for i in reversed(superseded):
                    del model[i]
                expired += len(superseded)
                k = int(n) or len(model)
                expected.extend(float(v) for v, _, _ in model[:k])
                del model[:k]
                out.extend(d.value for d in sub.drain(int(n) or None))
        assert out == expected
        assert (sub.dropped, sub.expired) == (dropped, expired)
        assert sub.delivered + sub.dropped + sub.expired + sub.pending == offered
        assert len(sub._marks) <= size  # the bookkeeping is bounded by the queue size
    finally:
        subscription_module.time = original


async def test_a_slow_subscriber_gets_recent_values_and_the_stale_ones_are_counted() -> None:
    broker = SignalBroker(Catalog.load_default())
    provider = broker.register_provider("p", ["Vehicle.Speed"])
    sub = broker.subscribe(["Vehicle.Speed"], send_current=False, max_age_s=0.05)
    for v in range(5):
        provider.publish("Vehicle.Speed", float(v))
    await asyncio.sleep(0.1)  # the subscriber was busy: those five are too old now
    provider.publish("Vehicle.Speed", 9.0)
    batch = await sub.get(timeout=1)
    assert [d.value for d in batch] == [9.0]
    assert sub.expired == 5 and sub.dropped == 0
    assert broker.stats()["expired"] == 5 and sub.stats()["max_age_ms"] == 50
    # a signal's newest value is never expired, however late: it is what the signal is now
    provider.publish("Vehicle.Speed", 10.0)
    await asyncio.sleep(0.1)
    assert [d.value for d in await sub.get(timeout=0.05)] == [10.0] and sub.expired == 5
    assert await sub.get(timeout=0.05) == [] and not sub.closed  # nothing else: it waits
    plain = broker.subscribe(["Vehicle.Speed"], send_current=False)
    assert plain.stats()["max_age_ms"] is None


async def test_the_current_value_a_subscription_starts_with_survives_a_late_first_read() -> None:
    """A dashboard subscribes to a lamp's brightness, set once: on a loaded hub the first read
    comes after the bound, and the value must still arrive (it used to expire: the control said
    "unknown" for good while the broker had 60 %)."""
    broker = SignalBroker(Catalog.load_default())
    provider = broker.register_provider("p", ["Vehicle.Speed", "Vehicle.CurrentLocation.Latitude"])
    provider.publish("Vehicle.Speed", 60.0)
    provider.publish("Vehicle.CurrentLocation.Latitude", 1.0)
    sub = broker.subscribe(["Vehicle.Speed", "Vehicle.CurrentLocation.Latitude"], max_age_s=0.05)
    provider.publish("Vehicle.CurrentLocation.Latitude", 2.0)
    await asyncio.sleep(0.1)
    batch = await sub.get(timeout=1)
    assert [(d.path, d.value) for d in batch] == [
        ("Vehicle.Speed", 60.0),
        ("Vehicle.CurrentLocation.Latitude", 2.0),
    ]
    assert sub.expired == 1  # only the latitude the later one superseded


async def test_the_hub_bounds_viss_and_grpc_subscribers_by_limits_max_update_age_ms() -> None:
    import httpx
    from kuksa.val.v2 import val_pb2 as v2
    from websockets.asyncio.client import connect

    from apis_support import grpc_stub

    for age_ms, shown in ((50, 50), (0, None)):
        async with running_hub(hub_config(max_update_age_ms=age_ms)) as hub:
            async with connect(f"ws://127.0.0.1:{hub.viss_ws.port}", subprotocols=["VISSv2"]) as ws:  # type: ignore[list-item]
                await ws.send('{"action":"subscribe","path":"Vehicle.Speed","requestId":"1"}')
                await ws.recv()
                async with grpc_stub(hub) as (stub, _):
                    call = stub.Subscribe(v2.SubscribeRequest(signal_paths=["Vehicle.Speed"]))
                    await call.read()
                    async with httpx.AsyncClient() as http:
                        reply = await http.get(f"http://127.0.0.1:{hub.http.port}/api/v1/subscriptions")
                    call.cancel()
            subs = {
                s["name"].split(":")[0]: s
                for s in reply.json()["subscriptions"]
                if s["name"] != "viss:history"
            }
            assert {name: s["max_age_ms"] for name, s in subs.items()} == {"viss": shown, "grpc": shown}
            assert "expired" in reply.json()
