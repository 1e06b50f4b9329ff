"""Issue 9, "Also": the OpenAPI document matches the routes, and a schema-driven fuzzer
(schemathesis) run against a real hub finds no 5xx and no status code the document leaves out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance
from starlette.routing import Route

from anycar.hub import Hub
from hub_support import running_hub

# schemathesis' own strategies use ``random``; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
METHODS = {"get", "put", "post", "delete", "patch"}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(Path(tmp_path_factory.mktemp("openapi")), automations=[]) as running:
        yield running


def _document(hub: Hub) -> dict[str, Any]:
    reply = httpx.get(hub.endpoints()["http"] + "/openapi.json", timeout=10)
    assert reply.status_code == 200
    doc: dict[str, Any] = reply.json()
    return doc


def _api_routes(hub: Hub) -> dict[str, tuple[set[str], list[str]]]:
    """Every management-API route the app serves: documented path -> (methods, path parameters)."""
    assert hub.http is not None
    out: dict[str, tuple[set[str], list[str]]] = {}
    for route in hub.http.app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            path = _PARAM.sub(r"{\1}", route.path)
            methods = {m.lower() for m in route.methods or ()} - {"head"}
            out.setdefault(path, (set(), _PARAM.findall(route.path)))[0].update(methods)
    return out


def test_every_route_is_documented_with_its_path_parameters_and_errors(hub: Hub) -> None:
    doc = _document(hub)
    routes = _api_routes(hub)
    assert len(routes) >= 10
    assert set(doc["paths"]) == set(routes), "routes and the OpenAPI document differ"
    for path, (methods, params) in routes.items():
        item = doc["paths"][path]
        assert {m for m in item if m in METHODS} == methods, path
        for method in methods:
            op = item[method]
            declared = {p["name"]: p for p in op.get("parameters", [])}
            for name in params:
                assert name in declared, f"{method.upper()} {path}: path parameter {name!r} is not declared"
                assert declared[name]["in"] == "path" and declared[name]["required"] is True
            responses = op["responses"]
            assert {"200", "401", "403"} <= set(responses), f"{method.upper()} {path}: {sorted(responses)}"
            if declared or "requestBody" in op:
                assert "400" in responses, f"{method.upper()} {path} takes input but documents no 400"
            if params:
                assert "404" in responses, f"{method.upper()} {path} names a resource but documents no 404"
            for code, response in responses.items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_5xx_and_no_undocumented_status(hub: Hub, mode: GenerationMode) -> None:
    """A handful of generated requests per operation (bounded: a few seconds on a busy box)."""
    base = hub.endpoints()["http"]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            case.call_and_validate(
                base_url=base, timeout=10, checks=[not_a_server_error, status_code_conformance]
            )

        fuzz()
    assert httpx.get(base + "/api/v1/info", timeout=10).status_code == 200
