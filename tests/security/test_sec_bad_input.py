"""Issue 9, finding 8: bad input gets a clear 400 (the spec's error numbers), never a 500, a
silent drop or a closed socket, and the connection and the hub keep serving.

One decoding helper (``anycar.decoding``) bounds depth and size and refuses invalid UTF-8, lone
surrogates, NaN and out-of-range numbers for VISS (WebSocket and HTTP), REST bodies and query
filters, and the accessory protocol.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from anycar import decoding
from anycar.accessories.canonical import CanonicalError, canonical_json
from anycar.errors import ConfigError
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.policy.db import open_db
from apis_support import running_hub
from hub_support import FREE_PORTS

DEEP = 5_000
DEEP_LIST = "[" * DEEP + "]" * DEEP
DEEP_OBJECT = '{"a":' * DEEP + "1" + "}" * DEEP


async def _reply(ws: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return data


async def _still_serves(ws: Any, rid: str = "after") -> None:
    await ws.send(
        json.dumps({"action": "get", "path": "Vehicle.VehicleIdentification.VIN", "requestId": rid})
    )
    reply = await _reply(ws)
    assert reply["requestId"] == rid and reply["action"] == "get"


# -- the helper -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (DEEP_LIST, "nests deeper than 32 levels"),
        (DEEP_OBJECT, "nests deeper than 32 levels"),
        (b'{"value": "\xff\xfe"}', "is not UTF-8: invalid start byte at byte 11"),
        ('{"value": "\\ud800"}', "lone surrogate (\\ud800)"),
        ('["\\udc00x"]', "lone surrogate (\\udc00)"),
        ('{"\\ud800": 1}', "lone surrogate"),
        ("\ud800", "lone surrogate at character 0"),
        ('{"value": NaN}', "NaN is not valid JSON"),
        ('{"value": 1e999}', "number 1e999 is out of range"),
        ('{"value": ' + "9" * 5000 + "}", "not acceptable JSON"),
        ("x" * 70, "is not JSON: Expecting value at line 1 column 1"),
        (b"[" + b" " * 2_000_000 + b"]", "exceeds the limit of 1048576 bytes"),
    ],
)
def test_the_helper_names_what_is_wrong(data: str | bytes, words: str) -> None:
    with pytest.raises(decoding.DecodingError) as info:
        decoding.loads(data)
    assert words in str(info.value)
    assert "\n" not in str(info.value) and info.value.code == 400


def test_the_helper_keeps_what_is_fine() -> None:
    assert decoding.loads('{"a": ["\\ud83d\\ude00", 1.5, "[{not a bracket"]}') == {
        "a": ["😀", 1.5, "[{not a bracket"]
    }
    value = decoding.loads("[" * 32 + "]" * 32)  # exactly the limit
    for _ in range(31):
        value = value[0]
    assert value == []
    assert decoding.depth_of('{"x": "[[[[[[", "y": [[1]]}') == 3


def test_canonical_json_of_a_lone_surrogate_is_a_clear_error() -> None:
    with pytest.raises(CanonicalError, match=r"lone surrogate \(\\ud800\)"):
        canonical_json({"product_name": "\ud800"})


# -- VISS over WebSocket --------------------------------------------------------------------------
async def test_viss_ws_a_5000_deep_set_gets_bad_request_and_the_connection_serves_on() -> None:
    async with (
        running_hub() as hub,
        connect(f"ws://127.0.0.1:{hub.viss_ws.port}", subprotocols=["VISSv2"]) as ws,
    ):  # type: ignore[union-attr, list-item]
        for rid, value in (("deep-list", DEEP_LIST), ("deep-object", DEEP_OBJECT)):
            head = '{"action":"set","path":"Vehicle.Cabin.Light.IsDomeOn","requestId":"' + rid + '","value":'
            await ws.send(head + value + "}")
            reply = await _reply(ws)
            assert reply["error"]["number"] == 400 and reply["error"]["reason"] == "bad_request", reply
            assert "nests deeper" in reply["error"]["message"]
            assert reply["requestId"] == rid and reply["action"] == "set"  # still says which request
        deep_filter = '{"action":"get","path":"Vehicle","requestId":"f","filter":' + DEEP_OBJECT + "}"
        await ws.send(deep_filter)
        assert (await _reply(ws))["error"]["number"] == 400
        await ws.send(
            '{"action":"set","path":"Vehicle.Cabin.Light.IsDomeOn","requestId":"s","value":"\\ud800"}'
        )
        reply = await _reply(ws)
        assert reply["error"]["number"] == 400 and "surrogate" in reply["error"]["message"]
        await ws.send(b'{"action":"get","path":"Vehicle.Speed","requestId":"\xff"}')
        assert (await _reply(ws))["error"]["number"] == 400
        await _still_serves(ws)


# -- VISS over HTTP --------------------------------------------------------------------------------
async def test_viss_http_deep_filter_deep_body_and_invalid_utf8_are_400() -> None:
    async with (
        running_hub() as hub,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.port}", timeout=10) as http,
    ):  # type: ignore[union-attr]
        deep = await http.get("/Vehicle/Speed", params={"filter": "[" * 2000 + "]" * 2000})
        assert deep.status_code == 400 and "nests deeper" in deep.json()["error"]["message"]
        for body in ('{"value": ' + DEEP_LIST + "}", b'{"value": "\xc3\x28"}', '{"value": "\\udfff"}'):
            reply = await http.post("/Vehicle/Cabin/Light/IsDomeOn", content=body)
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["reason"] == "bad_request"
        assert (await http.get("/Vehicle/Speed")).status_code in (200, 404)


# -- REST bodies -------------------------------------------------------------------------------------
async def test_rest_bodies_deep_or_not_utf8_are_400_and_the_hub_serves_on(tmp_path: Path) -> None:
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    parts = HubParts(brand="byd_seal", db_path=tmp_path / "hub.sqlite3", dashboard=False)
    async with (
        build_hub(config, parts) as hub,
        httpx.AsyncClient(base_url=hub.endpoints()["http"], timeout=10) as http,
    ):
        for body in (
            DEEP_OBJECT,
            '{"reads": ' + DEEP_LIST + "}",
            b'{"reads": ["\xed\xa0\x80"]}',
            '{"reads": ["\\ud800"]}',
        ):
            reply = await http.put("/api/v1/grants/app", content=body)
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["code"] == 400
        assert (await http.get("/api/v1/info")).status_code == 200


# -- the accessory protocol ------------------------------------------------------------------------
async def test_an_accessory_hello_with_a_lone_surrogate_gets_an_error_not_1011(tmp_path: Path) -> None:
    from helpers_accessories import running_hub as accessory_hub
    from test_accessories_raw_client import MANIFEST, sign

    async with accessory_hub(tmp_path / "hub.sqlite3") as hub:
        text = json.dumps(
            {
                "type": "hello",
                "protocol": 1,
                "serial": "SURROGATE-1",
                "manifest": {**sign(MANIFEST, hub.key), "product_name": "LAMP-SURROGATE"},
                "pairing_proof": "0" * 64,
            }
        ).replace("LAMP-SURROGATE", "\\ud800")
        async with connect(hub.url) as ws:
            assert json.loads(await ws.recv())["type"] == "challenge"
            await ws.send(text)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "error" and reply["code"] == 400, reply
            assert "surrogate" in reply["message"]
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code != 1011
        async with connect(hub.url) as other:  # the next accessory is served as usual
            assert json.loads(await asyncio.wait_for(other.recv(), 5))["type"] == "challenge"
            await other.send(DEEP_LIST)
            reply = json.loads(await asyncio.wait_for(other.recv(), 5))
            assert reply["type"] == "error" and "nests deeper" in reply["message"]


# -- the database location ---------------------------------------------------------------------------
def test_an_unusable_database_location_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for where in (blocker / "hub.sqlite3", Path("/proc/version")):
        with pytest.raises(ConfigError, match=r"hub database .*(hub.sqlite3|version)"):
            open_db(where, "CREATE TABLE IF NOT EXISTS t (x)")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "hub",
            "--brand",
            "byd_seal",
            "--db",
            str(blocker / "hub.sqlite3"),
            *FREE_PORTS,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    assert "hub database" in run.stderr and "hub.sqlite3" in run.stderr


@pytest.mark.parametrize(
    ("text", "source", "words"),
    [
        (DEEP_LIST, "o.vspec", "o.vspec: invalid YAML: nests deeper than 64 levels"),
        (DEEP_LIST, "o.json", "o.json: invalid JSON: the document nests deeper than 64 levels"),
        ("a: b\n\x1f", "o.vspec", "o.vspec:2: invalid YAML: special characters are not allowed"),
        ("a: " + "9" * 5000, "o.vspec", "o.vspec: invalid YAML: Exceeds the limit (4300 digits)"),
        ('{"a": NaN}', "o.json", "o.json: invalid JSON: NaN is not valid JSON"),
    ],
)
def test_data_file_errors_are_one_line_with_the_place(text: str, source: str, words: str) -> None:
    from anycar.errors import OverlayError
    from anycar.model.overlay import parse_overlay_text

    with pytest.raises(OverlayError) as info:
        parse_overlay_text(text, source=source)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(st.characters(blacklist_categories=["Cs"])),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ),
    st.booleans(),
)
def test_what_json_allows_within_the_limits_decodes_unchanged(value: object, ascii_only: bool) -> None:
    """The bounded decoder is json.loads for every acceptable document: nothing valid is lost."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    if decoding.depth_of(text) <= decoding.MAX_DEPTH:
        assert decoding.loads(text) == value
        assert decoding.loads(text.encode("utf-8")) == value
