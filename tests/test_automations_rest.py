"""The automations REST group on a real hub: every route documented (with its 400/404), and no
input - random bytes, JSON, definitions - gets a 5xx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from anycar.hub import Hub
from automations_support import hub_in_thread

# the hub's virtual accessories use ``random`` on their own thread while hypothesis generates
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with hub_in_thread(Path(tmp_path_factory.mktemp("auto-rest"))) as running:
        yield running


def test_every_automations_route_is_documented(hub: Hub) -> None:
    doc = httpx.get(hub.endpoints()["http"] + "/openapi.json", timeout=10).json()
    assert hub.http is not None
    routes: dict[str, set[str]] = {}
    for route in hub.http.app.routes:
        if isinstance(route, Route) and route.path.startswith(("/api/v1/automations", "/api/v1/scenes")):
            routes.setdefault(_PARAM.sub(r"{\1}", route.path), set()).update(
                m.lower() for m in route.methods or () if m != "HEAD"
            )
    documented = {p: {m for m in item if m in ("get", "post", "delete")} for p, item in doc["paths"].items()
                  if p.startswith(("/api/v1/automations", "/api/v1/scenes"))}  # fmt: skip
    assert documented == routes
    for path, methods in routes.items():
        for method in methods:
            op = doc["paths"][path][method]
            assert {"200", "401", "403"} <= set(op["responses"]), (method, path)
            if "{" in path:
                assert {"400", "404"} <= set(op["responses"]), (method, path)
            if "requestBody" in op:
                assert "400" in op["responses"], (method, path)
    assert "AutomationsDocument" in doc["components"]["schemas"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_ENDPOINTS = [
    ("post", "/automations"),
    ("post", "/automations/welcome_on_unlock/test"),
    ("post", "/scenes/snapshot"),
    ("post", "/automations/{id}/test"),
    ("get", "/automations/{id}/traces"),
    ("post", "/scenes/{id}/apply"),
    ("delete", "/automations/{id}"),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    endpoint=st.sampled_from(_ENDPOINTS),
    body=st.one_of(st.binary(max_size=200), _JSON.map(lambda v: json.dumps(v).encode())),
    ident=st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and "?" not in s and "#" not in s),
    limit=st.one_of(st.none(), st.text(max_size=5)),
)
def test_no_input_gets_a_server_error(
    hub: Hub, endpoint: tuple[str, str], body: bytes, ident: str, limit: Any
) -> None:
    method, path = endpoint
    url = hub.endpoints()["http"] + "/api/v1" + path.replace("{id}", quote(ident, safe=""))
    params = {"limit": limit} if limit is not None else None
    reply = httpx.request(
        method.upper(), url, content=body if method != "get" else None, params=params, timeout=10
    )
    assert reply.status_code < 500, (method, url, body[:80], reply.text[:200])
    if reply.status_code >= 400:
        assert set(reply.json()["error"]) == {"code", "reason", "message"}


def test_a_definition_sent_over_rest_acts_as_its_sender_and_never_more(tmp_path: Path) -> None:
    from apis_support import Keys

    keys = Keys(tmp_path)
    light = "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn"
    with hub_in_thread(tmp_path, token_key=keys.public_path) as hub:
        base = hub.endpoints()["http"] + "/api/v1"
        app = {
            "authorization": "Bearer "
            + keys.token("read actuate:Vehicle.Cabin.Light.**", subject="lights_app")
        }
        body = {
            "automations": [
                {"id": "mine", "triggers": [{"every": 3600}], "actions": [{"actuate": light, "value": True}]}
            ]
        }
        # no token: refused before the body is read
        assert httpx.post(f"{base}/automations", json=body, timeout=10).status_code == 401
        # the app needs a grant of its own on the hub (given by someone whose token holds it)
        refused = httpx.post(f"{base}/automations", json=body, headers=app, timeout=10)
        assert refused.status_code == 400 and "lights_app" in refused.json()["problems"][0]["message"]
        owner = {
            "authorization": "Bearer "
            + keys.token("read actuate:Vehicle.Cabin.Light.** admin", subject="owner")
        }
        selfgrant = {"privilege": "Operate", "actuates": ["Vehicle.Cabin.Light.**"]}
        # an app never gives itself a grant; the owner (admin scope) gives it one
        assert (
            httpx.put(f"{base}/grants/lights_app", json=selfgrant, headers=app, timeout=10).status_code == 403
        )
        granted = httpx.put(f"{base}/grants/lights_app", json=selfgrant, headers=owner, timeout=10)
        assert granted.status_code == 200, granted.text
        added = httpx.post(f"{base}/automations", json=body, headers=app, timeout=10)
        assert added.status_code == 200, added.text
        shown = httpx.get(f"{base}/automations/mine", headers=app, timeout=10).json()
        assert shown["owner"] == "lights_app"
        # it sees what it may read, and no more: not the shipped welcome scene's automation
        listed = [
            a["id"] for a in httpx.get(f"{base}/automations", headers=app, timeout=10).json()["automations"]
        ]
        assert "mine" in listed and "welcome_on_unlock" not in listed
        assert (
            httpx.get(f"{base}/automations/welcome_on_unlock/traces", headers=app, timeout=10).status_code
            == 403
        )
        # acting as someone else, or setting what its token may not: refused
        other = {"automations": [{**body["automations"][0], "id": "theirs", "owner": "owner"}]}
        assert httpx.post(f"{base}/automations", json=other, headers=app, timeout=10).status_code == 403
        display = {
            "automations": [
                {"id": "display", "triggers": [{"every": 3600}],
                 "actions": [{"actuate": "Vehicle.Accessories.Display1.Text", "value": "hi"}]}
            ]
        }  # fmt: skip
        assert httpx.post(f"{base}/automations", json=display, headers=app, timeout=10).status_code in (
            400,
            403,
        )
        assert (
            httpx.post(f"{base}/automations/welcome_on_unlock/trigger", headers=app, timeout=10).status_code
            == 403
        )
