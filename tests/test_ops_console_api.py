"""The console's logistics and station routes over HTTP against a real ``FleetServer`` day:
tenant isolation on every route, role rights, one-line 400s for bad input, and SQL injection
through every filter and path parameter (answered as plain not-found or bad input, nothing
leaked, the tables intact)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from ops_console_support import Day, auth, make_day, running_fleet

INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE orders; --", "1 UNION SELECT token_hash FROM users", "%' --"]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    with running_fleet(tmp_path_factory, "ops-api") as fleet:
        yield make_day(fleet)


@pytest.fixture
def http(day: Day) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=day.url, timeout=60) as client:
        yield client


def test_every_route_is_the_callers_tenant_only(day: Day, http: httpx.Client) -> None:
    acme, rival = day.tokens["acme"]["viewer"], day.tokens["rival"]["viewer"]
    a = http.get("/api/logistics/board", headers=auth(acme)).json()
    r = http.get("/api/logistics/board", headers=auth(rival)).json()
    assert len(a["orders"]) == 10 and [o["id"] for o in r["orders"]] == ["o-101"]
    assert {o["vehicle"] for o in r["orders"]} <= set(day.vehicles["rival"])
    assert a["plan"]["id"] != r["plan"]["id"]
    assert http.get("/api/logistics/plan", headers=auth(rival)).json()["id"] == r["plan"]["id"]
    assert http.get("/api/logistics/report", headers=auth(rival)).json()["delivered"] == 0
    assert [s["id"] for s in http.get("/api/stations", headers=auth(rival)).json()] == ["rival-depot"]
    assert sorted(s["id"] for s in http.get("/api/stations", headers=auth(acme)).json()) == [
        "harbour-2",
        "town-1",
    ]
    assert http.get("/api/stations/town-1", headers=auth(rival)).status_code == 404
    assert http.get(f"/api/packs/{day.swap['old']}", headers=auth(rival)).status_code == 404
    assert http.get(f"/api/packs/{day.swap['old']}", headers=auth(acme)).status_code == 200
    # acme's plan cannot be moved by the rival's dispatcher, nor the rival's station placed by acme.
    move = {"order": "o-102", "vehicle": day.vehicles["acme"][1]}
    rd = day.tokens["rival"]["dispatcher"]
    assert http.post(f"/api/plans/{a['plan']['id']}/move", json=move, headers=auth(rd)).status_code == 404
    site = {"lat": 60.17, "lon": 24.94, "name": "x"}
    assert (
        http.put(
            "/api/stations/rival-depot/site", json=site, headers=auth(day.tokens["acme"]["owner"])
        ).status_code
        == 404
    )
    assert (
        http.post(
            "/api/logistics/orders/o-102/outcome", json={"status": "delivered"}, headers=auth(rd)
        ).status_code
        == 404
    )


def test_role_rights(day: Day, http: httpx.Client) -> None:
    acme = day.tokens["acme"]
    plan = http.get("/api/logistics/plan", headers=auth(acme["viewer"])).json()
    move = {"order": "o-109", "vehicle": day.vehicles["acme"][0]}
    assert (
        http.post(
            f"/api/plans/{plan['id']}/move", content=b"{bad", headers=auth("nope-nope-nope")
        ).status_code
        == 401
    )
    for role in ("viewer", "driver"):
        r = http.post(f"/api/plans/{plan['id']}/move", json=move, headers=auth(acme[role]))
        assert r.status_code == 403 and r.json()["error"]["reason"] == "forbidden"
    r = http.post(
        "/api/logistics/orders/o-109/outcome", json={"status": "delivered"}, headers=auth(acme["viewer"])
    )
    assert r.status_code == 403
    assert (
        http.put(
            "/api/stations/town-1/site", json={"lat": 60.17, "lon": 24.94}, headers=auth(acme["viewer"])
        ).status_code
        == 403
    )
    assert (
        http.put(
            "/api/stations/town-1/site", json={"lat": 60.17, "lon": 24.94}, headers=auth(acme["driver"])
        ).status_code
        == 403
    )
    assert (
        http.get("/api/logistics/board").status_code == 401 and http.get("/api/stations").status_code == 401
    )


def test_bad_input_is_a_one_line_400(day: Day, http: httpx.Client) -> None:
    acme = day.tokens["acme"]
    d = auth(acme["dispatcher"])
    plan = http.get("/api/logistics/plan", headers=d).json()["id"]
    cases = [
        ("GET", "/api/logistics/board?column=sideways", None, "column: one of"),
        ("GET", "/api/logistics/board?q=" + "x" * 65, None, "q: at most 64"),
        ("GET", "/api/logistics/report?day=2026-13-01", None, "day: '2026-13-01' is not YYYY-MM-DD"),
        ("POST", f"/api/plans/{plan}/move", {"order": 5, "vehicle": "v"}, "order: a string"),
        (
            "POST",
            f"/api/plans/{plan}/move",
            {"order": "nope", "vehicle": day.vehicles["acme"][0]},
            "'nope' is not on a route",
        ),
        (
            "POST",
            f"/api/plans/{plan}/move",
            {"order": "o-109", "vehicle": "ghost"},
            "vehicle: 'ghost' is not a vehicle",
        ),
        ("POST", "/api/logistics/orders/o-109/outcome", {"status": "lost"}, "status: delivered or failed"),
        ("POST", "/api/logistics/orders/o-109/outcome", {"status": "failed"}, "reason: say why"),
        ("PUT", "/api/stations/town-1/site", {"lat": 10, "lon": 24.94}, "outside the map"),
        ("PUT", "/api/stations/town-1/site", {"lat": "a", "lon": 24.94}, "lat, lon: numbers"),
        ("PUT", "/api/stations/town-1/site", [1], "body:"),
    ]
    for method, path, body, message in cases:
        r = http.request(method, path, json=body, headers=auth(acme["owner"]))
        assert r.status_code == 400, (path, r.text)
        text = r.json()["error"]["message"]
        assert message in text and "\n" not in text and "Traceback" not in text, (path, text)
    r = http.post(f"/api/plans/{plan}/move", content=b"{not json", headers=d)
    assert r.status_code == 400 and r.json()["error"]["reason"] == "bad_json"
    assert (
        http.post("/api/plans/99999/move", json={"order": "o-109", "vehicle": "x"}, headers=d).status_code
        == 404
    )
    # The same order on its own vehicle is a refusal with the reason, not an error.
    route = next(
        x
        for x in http.get("/api/logistics/plan", headers=d).json()["plan"]["routes"]
        if any(s["order"] == "o-109" for s in x["stops"])
    )
    r = http.post(f"/api/plans/{plan}/move", json={"order": "o-109", "vehicle": route["vehicle"]}, headers=d)
    assert r.status_code == 409 and r.json() == {
        "accepted": False,
        "reason": f"o-109 is already on {route['vehicle']}",
        "checked": 0,
    }
    # A delivered order does not move.
    r = http.post(
        f"/api/plans/{plan}/move", json={"order": "o-101", "vehicle": day.vehicles["acme"][2]}, headers=d
    )
    assert r.status_code == 409 and "only an open order can move" in r.json()["reason"]


def test_sql_injection_through_every_filter(day: Day, http: httpx.Client) -> None:
    acme = day.tokens["acme"]
    v = auth(acme["viewer"])
    for bad in INJECTIONS:
        q = httpx.QueryParams({"q": bad})
        r = http.get(f"/api/logistics/board?{q}", headers=v)
        assert r.status_code == 200 and r.json()["orders"] == [], bad
        assert http.get("/api/logistics/board", params={"column": bad}, headers=v).status_code == 400
        assert http.get("/api/logistics/report", params={"day": bad}, headers=v).status_code == 400
        for path in ("/api/stations/{}", "/api/packs/{}"):
            r = http.get(path.format(quote(bad, safe="")), headers=v)
            assert r.status_code == 404, (path, bad, r.text)
        r = http.post(
            f"/api/logistics/orders/{quote(bad, safe='')}/outcome",
            json={"status": "delivered"},
            headers=auth(acme["driver"]),
        )
        assert r.status_code == 404
        plan = http.get("/api/logistics/plan", headers=v).json()["id"]
        r = http.post(
            f"/api/plans/{plan}/move", json={"order": bad, "vehicle": bad}, headers=auth(acme["dispatcher"])
        )
        assert r.status_code == 400
    # Nothing leaked or dropped: the board and the stations are whole.
    assert len(http.get("/api/logistics/board", headers=v).json()["orders"]) == 10
    assert len(http.get("/api/stations", headers=v).json()) == 2
