"""VISS v2 with a real websockets client (and httpx for HTTP) against a hub on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from anycar.api.viss import VissError
from anycar.api.viss.messages import Request, parse_request
from apis_support import Keys, hub_config, running_hub

SPEED = "Vehicle.Speed"
DOME = "Vehicle.Cabin.Light.IsDomeOn"


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def ask(self, message: dict[str, Any] | str) -> dict[str, Any]:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))
        return await self.next()

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return reply


def viss_url(hub: Any) -> str:
    return f"ws://127.0.0.1:{hub.viss_ws.port}"


async def test_get_set_subscribe_unsubscribe_with_filters() -> None:
    async with running_hub() as hub, connect(viss_url(hub), subprotocols=["VISSv2"]) as ws:
        assert ws.subprotocol == "VISSv2"
        accepted: list[Any] = []
        provider = hub.broker.register_provider(
            "test", [SPEED, DOME], on_actuate=lambda r: accepted.append((r.path, r.value))
        )
        provider.publish(SPEED, 12.5)
        c = Client(ws)
        got = await c.ask({"action": "get", "path": SPEED, "requestId": "1"})
        assert got["requestId"] == "1" and got["data"] == {
            "path": SPEED,
            "dp": {"value": "12.5", "ts": got["data"]["dp"]["ts"]},
        }
        assert got["ts"].endswith("Z")
        doors = await c.ask(
            {
                "action": "get",
                "path": "Vehicle/Cabin/Door",
                "filter": {"type": "paths", "parameter": ["*.*.IsOpen"]},
                "requestId": "2",
            }
        )
        assert len(doors["data"]) == 4 and all(d["path"].endswith(".IsOpen") for d in doors["data"])
        meta = await c.ask(
            {
                "action": "get",
                "path": SPEED,
                "filter": {"type": "static-metadata", "parameter": ""},
                "requestId": "3",
            }
        )
        assert meta["metadata"]["Speed"]["unit"] == "km/h"  # keyed by the node asked for
        done = await c.ask({"action": "set", "path": DOME, "value": "true", "requestId": "4"})
        assert done["action"] == "set" and done["requestId"] == "4" and "error" not in done
        assert accepted == [(DOME, True)]
        sub = await c.ask(
            {
                "action": "subscribe",
                "path": SPEED,
                "filter": [
                    {"type": "range", "parameter": {"logic-op": "gt", "boundary": "20"}},
                    {"type": "change", "parameter": {"logic-op": "ne", "diff": "0"}},
                ],
                "requestId": "5",
            }
        )
        assert sub["action"] == "subscribe" and sub["requestId"] == "5"
        sid = sub["subscriptionId"]
        for value in (10.0, 30.0, 30.0, 31.0):
            provider.publish(SPEED, value)
        values: list[str] = []
        while len(values) < 2:
            note = await c.next()
            assert note["action"] == "subscription" and note["subscriptionId"] == sid
            dps = note["data"]["dp"]
            values.extend(d["value"] for d in (dps if isinstance(dps, list) else [dps]))
        assert values == ["30.0", "31.0"]  # 10 is out of range, the second 30 is no change
        periodic = await c.ask(
            {
                "action": "subscribe",
                "path": SPEED,
                "filter": {"type": "timebased", "parameter": {"period": "50"}},
                "requestId": "6",
            }
        )
        note = await c.next()
        assert note["subscriptionId"] == periodic["subscriptionId"] and note["data"]["dp"]["value"] == "31.0"
        for s, rid in ((sid, "7"), (periodic["subscriptionId"], "8")):
            done = await c.ask({"action": "unsubscribe", "subscriptionId": s, "requestId": rid})
            assert done["action"] == "unsubscribe" and done["subscriptionId"] == s
        await asyncio.sleep(0.15)
        while True:  # drain notifications sent before the unsubscribe
            try:
                await c.next(timeout=0.1)
            except TimeoutError:
                break
        provider.publish(SPEED, 99.0)
        with pytest.raises(TimeoutError):
            await c.next(timeout=0.3)
        again = await c.ask({"action": "unsubscribe", "subscriptionId": sid, "requestId": "9"})
        assert again["error"]["number"] == 400 and again["error"]["reason"] == "invalid_data"


BAD_REQUESTS: list[tuple[Any, int, str]] = [
    ("{not json", 400, "bad_request"),
    ("[1, 2]", 400, "bad_request"),
    ({"action": "fly", "path": SPEED, "requestId": "1"}, 400, "bad_request"),
    ({"action": "get", "requestId": "1"}, 400, "bad_request"),
    ({"action": "get", "path": 42.5, "requestId": "1"}, 400, "bad_request"),
    ({"action": "get", "path": SPEED, "requestId": {"x": 1}}, 400, "bad_request"),
    ({"action": "get", "path": "Vehicle.NoSuchSignal", "requestId": "1"}, 404, "unavailable_data"),
    (
        {
            "action": "get",
            "path": SPEED,
            "requestId": "1",
            "filter": {"type": "dynamic-metadata", "parameter": ["availability"]},
        },
        400,
        "invalid_data",
    ),
    ({"action": "get", "path": SPEED, "requestId": "1", "filter": {"type": "bogus"}}, 400, "bad_request"),
    (
        {
            "action": "subscribe",
            "path": SPEED,
            "requestId": "1",
            "filter": {"type": "timebased", "parameter": {"period": "1"}},
        },
        400,
        "invalid_data",
    ),
    (
        {
            "action": "subscribe",
            "path": SPEED,
            "requestId": "1",
            "filter": {"type": "range", "parameter": {"logic-op": "between", "boundary": "1"}},
        },
        400,
        "bad_request",
    ),
    ({"action": "set", "path": SPEED, "value": "3", "requestId": "1"}, 403, "forbidden_request"),
    ({"action": "set", "path": DOME, "value": "maybe", "requestId": "1"}, 400, "invalid_data"),
    ({"action": "set", "path": DOME, "value": {"on": True}, "requestId": "1"}, 400, "invalid_data"),
    ({"action": "set", "path": DOME, "requestId": "1"}, 400, "bad_request"),
    ({"action": "set", "path": DOME, "value": "true", "requestId": "1"}, 503, "service_unavailable"),
    ({"action": "unsubscribe", "subscriptionId": "77", "requestId": "1"}, 400, "invalid_data"),
]


async def test_bad_requests_get_the_spec_errors_and_the_connection_keeps_serving() -> None:
    async with running_hub() as hub, connect(viss_url(hub), subprotocols=["VISSv2"]) as ws:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 1.0)
        c = Client(ws)
        for message, number, reason in BAD_REQUESTS:
            reply = await c.ask(message)
            assert reply["error"]["number"] == number, (message, reply)
            assert reply["error"]["reason"] == reason, (message, reply)
            assert reply["error"]["message"]
            if isinstance(message, dict) and message.get("action") in (
                "get",
                "set",
                "subscribe",
                "unsubscribe",
            ):
                assert reply.get("requestId") == message["requestId"] or not isinstance(
                    message["requestId"], str
                )
        ok = await c.ask({"action": "get", "path": SPEED, "requestId": "after"})
        assert ok["data"]["dp"]["value"] == "1.0"


async def test_oversized_messages_and_floods() -> None:
    cfg = hub_config(max_message_bytes=4096, requests_per_s=5, burst=20)
    async with running_hub(cfg) as hub:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 7.0)
        async with connect(viss_url(hub), subprotocols=["VISSv2"]) as ws, connect(viss_url(hub)) as calm:
            c = Client(ws)
            big = json.dumps({"action": "get", "path": SPEED, "requestId": "big", "pad": "x" * 10_000})
            reply = await c.ask(big)
            assert reply["error"]["reason"] == "bad_request" and "exceeds" in reply["error"]["message"]
            # a flood: more than the burst at once; the excess is refused with 429, nothing crashes
            for i in range(60):
                await ws.send(json.dumps({"action": "get", "path": SPEED, "requestId": str(i)}))
            replies = [await c.next() for _ in range(60)]
            refused = [r for r in replies if "error" in r]
            assert refused and all(r["error"]["number"] == 429 for r in refused)
            assert sum(1 for r in replies if "data" in r) >= 15  # the burst, less the big message
            # another client is served meanwhile, and the flooder again after a pause
            assert (await Client(calm).ask({"action": "get", "path": SPEED, "requestId": "c"}))["data"]
            await asyncio.sleep(0.2)
            assert (await c.ask({"action": "get", "path": SPEED, "requestId": "later"}))["data"]
            # beyond 16 times the limit the WebSocket layer closes that connection (1009) only
            await ws.send("x" * (1 << 21))
            with pytest.raises(ConnectionClosed) as closed:
                await c.next()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            assert (await Client(calm).ask({"action": "get", "path": SPEED, "requestId": "d"}))["data"]


async def test_tokens_in_requests_and_handshake(tmp_path) -> None:
    keys = Keys(tmp_path, "ES256")
    async with running_hub(hub_config(keys.public_path)) as hub:
        hub.broker.register_provider("test", [SPEED, DOME], on_actuate=lambda r: None).publish(SPEED, 3.0)
        reader = keys.token(f"read:{SPEED}")
        async with connect(viss_url(hub), subprotocols=["VISSv2"]) as ws:
            c = Client(ws)
            missing = await c.ask({"action": "get", "path": SPEED, "requestId": "1"})
            assert (missing["error"]["number"], missing["error"]["reason"]) == (401, "missing_token")
            ok = await c.ask({"action": "get", "path": SPEED, "requestId": "2", "authorization": reader})
            assert ok["data"]["dp"]["value"] == "3.0"
            beyond = await c.ask(
                {"action": "set", "path": DOME, "value": "true", "requestId": "3", "authorization": reader}
            )
            assert (beyond["error"]["number"], beyond["error"]["reason"]) == (403, "forbidden_request")
            expired = await c.ask(
                {
                    "action": "get",
                    "path": SPEED,
                    "requestId": "4",
                    "authorization": keys.token("read", ttl_s=-60),
                }
            )
            assert expired["error"]["reason"] == "expired_token"
            forged = reader[:-6] + ("AAAAAA" if not reader.endswith("AAAAAA") else "BBBBBB")
            bad = await c.ask({"action": "get", "path": SPEED, "requestId": "5", "authorization": forged})
            assert (bad["error"]["number"], bad["error"]["reason"]) == (401, "invalid_token")
            wide = await c.ask(
                {"action": "subscribe", "path": "Vehicle.Cabin", "requestId": "6", "authorization": reader}
            )
            assert wide["error"]["reason"] == "forbidden_request"
        headers = {"Authorization": "Bearer " + keys.token(f"actuate:{DOME}")}
        async with connect(viss_url(hub), additional_headers=headers) as ws:
            c = Client(ws)
            assert "error" not in await c.ask(
                {"action": "set", "path": DOME, "value": True, "requestId": "7"}
            )
            assert (await c.ask({"action": "get", "path": DOME, "requestId": "8"}))["error"]["reason"] == (
                "unavailable_data"
            )


async def test_viss_over_http(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        hub.broker.register_provider("test", [SPEED, DOME], on_actuate=lambda r: None).publish(SPEED, 8.0)
        base = f"http://127.0.0.1:{hub.http.port}"
        auth = {"Authorization": "Bearer " + keys.token("read actuate:Vehicle.Cabin.Light")}
        async with httpx.AsyncClient(base_url=base, headers=auth) as http:
            got = await http.get("/Vehicle/Speed")
            assert got.status_code == 200 and got.json()["data"]["dp"]["value"] == "8.0"
            flt = json.dumps({"type": "paths", "parameter": ["*.*.IsOpen"]})
            doors = await http.get("/Vehicle/Cabin/Door", params={"filter": flt})
            assert len(doors.json()["data"]) == 4
            assert (
                await http.post("/Vehicle/Cabin/Light/IsDomeOn", json={"value": "true"})
            ).status_code == 200
            nope = await http.get("/Vehicle/Nope")
            assert nope.status_code == 404 and nope.json()["error"]["reason"] == "unavailable_data"
            ro = await http.post("/Vehicle/Speed", json={"value": 3})
            assert ro.status_code in (401, 403)
            bad = await http.post("/Vehicle/Cabin/Light/IsDomeOn", content=b"{oops")
            assert bad.status_code == 400
            huge = await http.post("/Vehicle/Cabin/Light/IsDomeOn", content=b" " * 200_000)
            assert huge.status_code == 413 and "exceeds" in huge.json()["error"]["message"]
        async with httpx.AsyncClient(base_url=base) as anon:
            assert (await anon.get("/Vehicle/Speed")).json()["error"]["reason"] == "missing_token"


# -- the parser, fuzzed --------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["get", "set", "subscribe", "unsubscribe", "GET", ""]) | json_values,
        "path": st.sampled_from([SPEED, "Vehicle/Cabin/Door", "", "..", "Vehicle.*"]) | json_values,
        "requestId": st.text(max_size=10) | st.integers() | json_values,
        "value": json_values,
        "filter": json_values,
        "subscriptionId": json_values,
        "authorization": json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(requests.map(json.dumps), st.text(max_size=200), st.binary(max_size=200)))
def test_parser_only_ever_returns_a_request_or_a_viss_error(raw: Any) -> None:
    try:
        req = parse_request(raw, max_bytes=4096)
    except VissError as err:
        assert err.number in (400, 401) and err.reason and err.message
        return
    assert isinstance(req, Request)
    assert req.action in ("get", "set", "subscribe", "unsubscribe") and isinstance(req.request_id, str)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(requests.map(json.dumps))
def test_session_answers_every_fuzzed_message(raw: str) -> None:
    """Whatever arrives, the session sends exactly one reply and never raises."""
    from anycar.api.auth import Authorizer
    from anycar.api.viss import VissService, VissSession
    from anycar.broker import SignalBroker

    async def run() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        broker = SignalBroker(_CATALOG)
        session = VissSession(VissService(broker, Authorizer(None)), send)
        await session.handle(raw)
        await asyncio.sleep(0)
        for task in list(session.pending_sets):
            await task
        session.close()
        return sent

    sent = asyncio.run(run())
    assert len(sent) == 1
    reply = sent[0]
    assert "error" in reply or reply.get("action") in ("get", "set", "subscribe", "unsubscribe")
    if "error" in reply:
        assert reply["error"]["reason"] != "internal_server_error", reply


def _catalog() -> Any:
    from anycar.model import Catalog

    return Catalog.load_default()


_CATALOG = _catalog()


async def test_a_subscriber_that_never_reads_does_not_block_others() -> None:
    async with running_hub() as hub:
        provider = hub.broker.register_provider("test", [SPEED])
        provider.publish(SPEED, 0.0)
        async with connect(viss_url(hub), close_timeout=0.2) as sleepy, connect(viss_url(hub)) as calm:
            await sleepy.send(json.dumps({"action": "subscribe", "path": SPEED, "requestId": "s"}))
            for i in range(30_000):
                provider.publish(SPEED, float(i))
                if i % 1000 == 0:
                    await asyncio.sleep(0)
            reply = await Client(calm).ask({"action": "get", "path": SPEED, "requestId": "c"})
            assert reply["data"]["dp"]["value"] == "29999.0"
            stats = hub.broker.stats()
            assert stats["updates"] >= 30_001


async def test_history_filter_returns_recorded_values() -> None:
    async with running_hub() as hub, connect(viss_url(hub)) as ws:
        provider = hub.broker.register_provider("test", [SPEED])
        for value in (1.0, 2.0, 3.0):
            provider.publish(SPEED, value)
        c = Client(ws)
        got = await c.ask(
            {
                "action": "get",
                "path": SPEED,
                "filter": {"type": "history", "parameter": "PT1M"},
                "requestId": "h",
            }
        )
        assert [dp["value"] for dp in got["data"]["dp"]] == ["1.0", "2.0"]  # 3.0 is current, not history
        bad = await c.ask(
            {
                "action": "get",
                "path": SPEED,
                "filter": {"type": "history", "parameter": "yesterday"},
                "requestId": "b",
            }
        )
        assert bad["error"]["reason"] == "invalid_data"
        sub = await c.ask(
            {
                "action": "subscribe",
                "path": SPEED,
                "filter": {"type": "history", "parameter": "PT1M"},
                "requestId": "s",
            }
        )
        assert sub["error"]["reason"] == "bad_request"
    off = hub_config(history_per_signal=0)
    async with running_hub(off) as hub, connect(viss_url(hub)) as ws:
        got = await Client(ws).ask(
            {
                "action": "get",
                "path": SPEED,
                "filter": {"type": "history", "parameter": "PT1M"},
                "requestId": "h",
            }
        )
        assert got["error"]["reason"] == "unavailable_data"


async def test_http_flood_gets_429_and_the_hub_keeps_serving() -> None:
    async with running_hub(hub_config(requests_per_s=2, burst=3)) as hub:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 5.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.port}") as http:
            replies = [await http.get("/Vehicle/Speed") for _ in range(10)]
            statuses = [r.status_code for r in replies]
            assert statuses[:3] == [200, 200, 200] and 429 in statuses
            assert all(
                r.json()["error"]["reason"] == "too_many_requests" for r in replies if r.status_code == 429
            )
            info = await http.get("/api/v1/info")  # the management API is not part of the VISS budget
            assert info.status_code == 200
            await asyncio.sleep(0.6)
            assert (await http.get("/Vehicle/Speed")).status_code == 200


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Vehicle.Speed", "Vehicle.Cabin.Light.IsDomeOn", 'Vehicle.X"\\é']),
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**64)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=8)
            | st.lists(st.text(max_size=3) | st.booleans() | st.integers(), max_size=3),
            st.floats(0, 4e9),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_notifications_encoded_directly_equal_the_data_field_encoded_by_json(points: list[Any]) -> None:
    from anycar.api.viss.service import data_field, notification_text
    from anycar.broker import Datapoint

    batch = [Datapoint(path, value, ts) for path, value, ts in points]
    text = notification_text("7", batch)
    decoded = json.loads(text)
    assert decoded["action"] == "subscription" and decoded["subscriptionId"] == "7"
    assert decoded["data"] == json.loads(json.dumps(data_field(batch)))
    assert set(decoded) == {"action", "subscriptionId", "data", "ts"}
