"""The dashboard's Starlette app: static files, config.json, mounting under a prefix, no CDN."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import jsonschema
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import anycar.dashboard
from anycar.dashboard import SCHEMA_NAMES, STATIC_DIR, api_schema


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash")  # type: ignore[arg-type]


async def test_serves_the_page_its_assets_and_config() -> None:
    client = _client(
        anycar.dashboard.app(viss_url="ws://127.0.0.1:8090", api_base="http://127.0.0.1:8080/api")
    )
    page = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "viss.js", "chart.js", "app.css", "icons.svg", "favicon.svg"):
        assert (await client.get(f"/{asset}")).status_code == 200, asset
    assert (await client.get("/config.json")).json() == {
        "viss": "ws://127.0.0.1:8090",
        "api": "http://127.0.0.1:8080/api",
        "refresh_ms": 3000,
    }
    assert (await client.get("/missing.js")).status_code == 404


async def test_works_mounted_under_a_prefix() -> None:
    client = _client(Starlette(routes=[Mount("/dashboard", anycar.dashboard.app())]))
    assert (await client.get("/dashboard/")).status_code == 200
    assert (await client.get("/dashboard/config.json")).json()["viss"] is None
    assert (await client.get("/dashboard/app.js")).status_code == 200
    # Every reference in the page is relative, so it works under any prefix.
    html = (await client.get("/dashboard/")).text
    assert not re.search(r'(src|href)="/', html)


def test_loads_nothing_from_elsewhere() -> None:
    """No CDN, no web fonts: only the SVG namespace URI may appear."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text("utf-8")
        urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (path.name, urls)
        assert "@import" not in text and "fonts.googleapis" not in text


def test_example_answers_match_the_published_schemas() -> None:
    data = Path(__file__).parent / "data" / "dashboard"
    for name in ("vehicle", "accessories", "events"):
        jsonschema.Draft202012Validator(api_schema(name)).validate(
            json.loads((data / f"{name}.json").read_text())
        )
    for name in SCHEMA_NAMES:
        jsonschema.Draft202012Validator.check_schema(api_schema(name))
    bad = json.loads((data / "accessories.json").read_text())
    bad["accessories"][0]["controls"][0]["kind"] = "knob"
    with pytest.raises(jsonschema.ValidationError, match="knob"):
        jsonschema.Draft202012Validator(api_schema("accessories")).validate(bad)
