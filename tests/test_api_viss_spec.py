"""VISS v2 against the spec's own examples (2024 Core and Transport text; fixtures and their
sources in tests/data/viss/): range filters, static and dynamic metadata, dotted HTTP paths,
history, the 2024 error table, wildcards in paths and unknown subscriptions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from anycar.api.viss import VissError
from anycar.api.viss.filters import build_query
from anycar.api.viss.messages import parse_object
from apis_support import Keys, hub_config, running_hub

DATA = Path(__file__).parent / "data" / "viss"
SPEED = "Vehicle.Speed"
LEVEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
ACCEL = "Vehicle.Acceleration.Longitudinal"


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text())


RANGES = fixture("range_filters.json")
SUBSCRIBE = fixture("subscribe_examples.json")
HTTP = fixture("http_examples.json")
TABLE = fixture("error_table.json")


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps(message))
        return await self.next()

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return reply


def http_request(line: str) -> tuple[str, dict[str, str]]:
    """``GET /path?filter={...}`` as the spec writes it -> (path, query parameters)."""
    target = line.split(" ", 1)[1]
    path, _, query = target.partition("?")
    params = dict([query.split("=", 1)]) if query else {}
    return path, params


def passes(parameter: Any, value: float) -> bool:
    query = build_query(LEVEL, ({"type": "range", "parameter": parameter},), "subscribe")
    flt = query.subscription_filter()
    assert flt is not None
    return flt.passes(value, None)


# -- item 9: range filters ----------------------------------------------------------------------------
@pytest.mark.parametrize("example", RANGES["examples"], ids=[e["means"] for e in RANGES["examples"]])
def test_range_examples_of_the_core_spec(example: dict[str, Any]) -> None:
    assert all(passes(example["parameter"], v) for v in example["true"])
    assert not any(passes(example["parameter"], v) for v in example["false"])


def test_every_boundary_operator_of_the_spec_and_the_earlier_spellings() -> None:
    expect = {"eq": (5, 6), "ne": (6, 5), "gt": (6, 5), "gte": (5, 4), "lt": (4, 5), "lte": (5, 6)}
    assert set(expect) == set(RANGES["operators"])
    for op, (yes, no) in expect.items():
        assert passes({"boundary-op": op, "boundary": "5"}, yes) and not passes(
            {"boundary-op": op, "boundary": "5"}, no
        )
    # kept as aliases: ge/le and logic-op (the earlier drafts' words)
    assert passes({"logic-op": "ge", "boundary": "5"}, 5) and not passes(
        {"boundary-op": "le", "boundary": "5"}, 6
    )
    for bad in ({"boundary-op": "between", "boundary": "5"}, [{"boundary-op": "gt", "boundary": "1"}] * 3):
        with pytest.raises(VissError) as err:
            passes(bad, 1)
        assert err.value.reason == "bad_request"
    with pytest.raises(VissError):
        passes(
            [
                {"boundary-op": "gt", "boundary": "1", "combination-op": "XOR"},
                {"boundary-op": "lt", "boundary": "9"},
            ],
            2,
        )


@pytest.mark.parametrize(
    ("example", "published", "delivered"),
    [("authorized_subscribe", [48, 52, 50], ["50"]), ("range_subscribe", [52, 40, 53, 60], ["40", "60"])],
)
async def test_range_subscriptions_of_the_transport_examples(
    example: str, published: list[int], delivered: list[str]
) -> None:
    spec = SUBSCRIBE[example]
    request = dict(spec["request"], path=spec["vss6"]["path"])
    async with (
        running_hub() as hub,
        connect(f"ws://127.0.0.1:{hub.viss_ws.port}", subprotocols=["VISSv2"]) as ws,
    ):
        provider = hub.broker.register_provider("fuel", [LEVEL])
        c = Client(ws)
        reply = await c.ask(request)
        assert reply["action"] == "subscribe" and reply["requestId"] == spec["request"]["requestId"]
        for value in published:
            provider.publish(LEVEL, value)
        got: list[str] = []
        while len(got) < len(delivered):
            event = await c.next()
            assert event["action"] == "subscription" and event["subscriptionId"] == reply["subscriptionId"]
            assert set(event) == set(spec["event"]) and event["data"]["path"] == LEVEL
            dps = event["data"]["dp"]
            got.extend(dp["value"] for dp in (dps if isinstance(dps, list) else [dps]))
        assert got == delivered


# -- item 10: static metadata keyed by the node asked for -------------------------------------------
async def test_static_metadata_answers_with_the_node_asked_for() -> None:
    spec = HTTP["signal_discovery_read"]
    path, params = http_request(spec["vss6"]["request"])
    async with running_hub() as hub, httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.port}") as http:
        reply = await http.get(path, params=params)
        assert reply.status_code == 200
        metadata = reply.json()["metadata"]
        expected = spec["response"]["metadata"]["FuelSystem"]
        assert list(metadata) == ["FuelSystem"]
        fuel = metadata["FuelSystem"]
        assert (fuel["type"], fuel["description"]) == (expected["type"], expected["description"])
        assert set(expected["children"]) <= set(fuel["children"])
        assert fuel["children"]["RelativeLevel"]["datatype"] == "uint8"
        # a leaf, and only the keys asked for
        leaf = await http.get(
            "/Vehicle/Speed",
            params={"filter": json.dumps({"type": "static-metadata", "parameter": ["unit"]})},
        )
        assert leaf.json()["metadata"] == {"Speed": {"type": "sensor", "unit": "km/h"}}
        # with the paths filter: the node asked for, holding what the paths address
        doors = await http.get(
            "/Vehicle/Cabin",
            params={
                "filter": json.dumps(
                    [
                        {"type": "paths", "parameter": "Door.*.*.IsOpen"},
                        {"type": "static-metadata", "parameter": "datatype"},
                    ]
                )
            },
        )
        cabin = doors.json()["metadata"]["Cabin"]
        assert list(cabin["children"]) == ["Door"]
        assert cabin["children"]["Door"]["children"]["Row1"]["children"]["DriverSide"]["children"][
            "IsOpen"
        ] == {
            "type": "actuator",
            "datatype": "boolean",
        }


# -- item 11: dynamic metadata, server capabilities -------------------------------------------------------
async def test_server_capabilities_list_what_is_served_to_any_authenticated_caller(tmp_path) -> None:
    spec = HTTP["dynamic_metadata_read"]
    path, params = http_request(spec["request"])
    keys = Keys(tmp_path)
    narrow = keys.token("read:Vehicle.Speed")  # no scope is needed, only a caller the hub knows
    async with running_hub(hub_config(keys.public_path)) as hub:
        base = f"http://127.0.0.1:{hub.http.port}"
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {narrow}"}) as http:
            reply = await http.get(path, params=params)
            assert reply.status_code == 200
            capabilities = reply.json()["metadata"]
            for key, mandatory in spec["mandatory"].items():
                assert set(mandatory) <= set(capabilities[key])
            assert {"paths", "range", "curvelog", "history", "static_metadata"} <= set(capabilities["filter"])
            # asked of another node, or with a paths filter: refused
            other = await http.get("/Vehicle/Speed", params=params)
            assert other.status_code == 400 and other.json()["error"]["reason"] == "bad_request"
            kept = await http.get(
                path, params={"filter": json.dumps({"type": "dynamic-metadata", "parameter": "samplerate"})}
            )
            assert (kept.status_code, kept.json()["error"]["reason"]) == (400, "invalid_data")
        async with httpx.AsyncClient(base_url=base) as anon:  # the hub authenticates every request first
            assert (await anon.get(path, params=params)).json()["error"]["reason"] == "missing_token"
        async with connect(f"ws://127.0.0.1:{hub.viss_ws.port}", subprotocols=["VISSv2"]) as ws:
            reply = await Client(ws).ask(
                {
                    "action": "get",
                    "path": "Vehicle",
                    "filter": {"type": "dynamic-metadata", "parameter": ["server_capabilities"]},
                    "authorization": narrow,
                    "requestId": "c",
                }
            )
            assert reply["requestId"] == "c" and "timebased" in reply["metadata"]["filter"]


# -- item 12: dotted HTTP paths; item 13: history without the current value ------------------------------
async def test_dotted_http_paths_and_the_history_read_example() -> None:
    spec = HTTP["history_read"]
    path, params = http_request(spec["request"])
    async with running_hub() as hub, httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.port}") as http:
        provider = hub.broker.register_provider("imu", [ACCEL, SPEED])
        provider.publish(SPEED, 42.0)
        dotted, slashed = await http.get("/Vehicle.Speed"), await http.get("/Vehicle/Speed")
        assert dotted.status_code == slashed.status_code == 200
        assert dotted.json()["data"] == slashed.json()["data"]
        for value in (0.123, 0.124, 0.125):
            provider.publish(ACCEL, value)
        reply = await http.get(path, params=params)
        assert reply.status_code == 200
        data = reply.json()["data"]
        assert data["path"] == spec["response"]["data"]["path"]
        assert [dp["value"] for dp in data["dp"]] == ["0.123", "0.124"]  # 0.125 is the current value
        posted = await http.post("/Vehicle.Speed", json={"value": "3"})
        assert posted.status_code == 403 and posted.json()["error"]["reason"] == "forbidden_request"


async def test_history_of_a_signal_with_only_a_current_value_is_unavailable() -> None:
    async with running_hub() as hub, connect(f"ws://127.0.0.1:{hub.viss_ws.port}") as ws:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 7.0)
        reply = await Client(ws).ask(
            {
                "action": "get",
                "path": SPEED,
                "filter": {"type": "history", "parameter": "P2DT12H"},
                "requestId": "h",
            }
        )
        assert (reply["error"]["number"], reply["error"]["reason"]) == (404, "unavailable_data")


# -- item 13: the 2024 error table ----------------------------------------------------------------------
def test_every_reason_of_the_2024_table_is_answered_with_its_number_and_message() -> None:
    for number, reason, message in TABLE["rows"]:
        assert VissError(reason).to_json() == {"number": number, "reason": reason, "message": message}
        assert VissError(reason, "what went wrong").message == f"{message} what went wrong"


async def test_errors_over_http_use_the_2024_reasons_and_a_401_names_the_bearer_scheme(tmp_path) -> None:
    keys = Keys(tmp_path)
    async with running_hub(hub_config(keys.public_path)) as hub:
        hub.broker.register_provider("test", [SPEED]).publish(SPEED, 1.0)
        base = f"http://127.0.0.1:{hub.http.port}"
        async with httpx.AsyncClient(base_url=base) as anon:
            missing = await anon.get("/Vehicle/Speed")
        assert missing.status_code == 401 and missing.json()["error"]["reason"] == "missing_token"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer realm=")
        reader = keys.token(f"read:{SPEED}")
        forged = reader[:-6] + ("AAAAAA" if not reader.endswith("AAAAAA") else "BBBBBB")
        spec = HTTP["authorized_read_error"]
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {forged}"}) as bad:
            invalid = await bad.get("/Vehicle/Speed")
        assert invalid.status_code == spec["status"]
        assert invalid.json()["error"]["reason"] == spec["response"]["error"]["reason"]
        assert invalid.json()["error"]["message"].startswith(spec["response"]["error"]["message"])
        assert 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": "Bearer " + keys.token("read", ttl_s=-60)}
        ) as late:
            expired = await late.get("/Vehicle/Speed")
        assert expired.status_code == 401 and expired.json()["error"]["reason"] == "expired_token"
        assert "WWW-Authenticate" in expired.headers
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {reader}"}) as http:
            beyond = await http.get("/Vehicle/Cabin/Light/IsDomeOn")
            assert (beyond.status_code, beyond.json()["error"]["reason"]) == (403, "forbidden_request")
            assert "WWW-Authenticate" not in beyond.headers
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": "Bearer " + keys.token("read")}
        ) as http:
            unknown = await http.get("/Vehicle/Cabin/SeatPosCount")
            spec = HTTP["read_error"]
            assert unknown.status_code == spec["status"]
            assert unknown.json()["error"]["message"].startswith(spec["response"]["error"]["message"])


# -- item 13: no wildcard in path; unsubscribing an unknown subscription -----------------------------------
def test_a_wildcard_in_path_is_refused_and_the_paths_filter_is_the_way() -> None:
    for path in ("Vehicle.Cabin.Door.*.*.IsOpen", "Vehicle/*", "Vehicle.Cabin.**"):
        with pytest.raises(VissError) as err:
            parse_object({"action": "get", "path": path, "requestId": "1"})
        assert err.value.reason == "bad_request" and "paths filter" in err.value.message
    ok = parse_object(
        {
            "action": "get",
            "path": "Vehicle.Cabin.Door",
            "filter": {"type": "paths", "parameter": "*.*.IsOpen"},
            "requestId": "1",
        }
    )
    assert build_query(ok.path, ok.filters, "get").patterns == ["Vehicle.Cabin.Door.*.*.IsOpen"]


async def test_unsubscribe_of_an_unknown_subscription_answers_as_the_spec_example() -> None:
    spec = SUBSCRIBE["unsubscribe_error"]
    async with running_hub() as hub, connect(f"ws://127.0.0.1:{hub.viss_ws.port}") as ws:
        reply = await Client(ws).ask(spec["request"])
        expected = spec["error_response"]["error"]
        assert reply["action"] == "unsubscribe" and reply["requestId"] == spec["request"]["requestId"]
        assert (reply["error"]["number"], reply["error"]["reason"]) == (
            expected["number"],
            expected["reason"],
        )
        assert reply["error"]["message"].startswith(expected["message"])
