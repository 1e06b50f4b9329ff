"""VISS curvelog: the reduction keeps the curve within maxerr, and the filter over WebSocket."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from anycar.api.viss.curvelog import retained
from apis_support import running_hub

SPEED = "Vehicle.Speed"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-1000, max_value=1000, allow_nan=False), min_size=1, max_size=60),
    st.floats(min_value=0, max_value=50),
)
def test_every_dropped_point_is_within_maxerr_of_the_retained_line(
    values: list[float], maxerr: float
) -> None:
    points = [(float(i), v) for i, v in enumerate(values)]
    keep = retained(points, maxerr)
    assert keep[0] == 0 and keep[-1] == len(points) - 1 and keep == sorted(set(keep))
    for a, b in itertools.pairwise(keep):
        (t0, v0), (t1, v1) = points[a], points[b]
        for i in range(a + 1, b):
            t, v = points[i]
            assert abs(v - (v0 + (v1 - v0) * (t - t0) / (t1 - t0))) <= maxerr + 1e-9


async def test_curvelog_subscription_sends_only_the_points_that_matter() -> None:
    async with running_hub() as hub, connect(f"ws://127.0.0.1:{hub.viss_ws.port}") as ws:
        provider = hub.broker.register_provider("test", [SPEED, "Vehicle.Cabin.Light.IsDomeOn"])
        await ws.send(
            json.dumps(
                {
                    "action": "subscribe",
                    "path": SPEED,
                    "filter": {"type": "curvelog", "parameter": {"maxerr": "0.5", "bufsize": "6"}},
                    "requestId": "c",
                }
            )
        )
        assert "subscriptionId" in json.loads(await ws.recv())
        start = time.time()
        for i, v in enumerate((0.0, 10.0, 20.0, 30.0, 40.0, 50.0)):  # a straight line: only its ends matter
            provider.publish(SPEED, v, timestamp=start + i * 0.01)
        note = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert [dp["value"] for dp in note["data"]["dp"]] == ["0.0", "50.0"]
        for i, v in enumerate((50.0, 50.0, 90.0, 50.0, 50.0, 50.0)):  # a spike is kept
            provider.publish(SPEED, v, timestamp=start + 1 + i * 0.01)
        note = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert "90.0" in [dp["value"] for dp in note["data"]["dp"]]
        await ws.send(
            json.dumps(
                {
                    "action": "subscribe",
                    "path": "Vehicle.Cabin.Light.IsDomeOn",
                    "filter": {"type": "curvelog", "parameter": {"maxerr": "1", "bufsize": "10"}},
                    "requestId": "b",
                }
            )
        )
        refused = json.loads(await ws.recv())
        assert refused["error"]["reason"] == "invalid_data"
        await ws.send(
            json.dumps(
                {
                    "action": "subscribe",
                    "path": SPEED,
                    "filter": {"type": "curvelog", "parameter": {"maxerr": "1"}},
                    "requestId": "x",
                }
            )
        )
        assert json.loads(await ws.recv())["error"]["reason"] == "bad_request"
