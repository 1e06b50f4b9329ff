"""A stop dragged to another route in the console keeps the swap stop of the route it left
(headless Chromium, a real ``FleetServer`` with its CSMS on SQLite): the swap is planned again on
the new order of stops (``swaproute.refit``), re-timed from now, its reservation (made through the
CSMS) kept while it holds the pack until then; the operator reads what became of it in the
move's answer, and the route table shows it in its new place and time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

pytest.register_assert_rewrite("browser_support")

from anycar.fleet import db, registry  # noqa: E402
from anycar.logistics.swaproute import add_to_plan  # noqa: E402
from anycar.logistics.swapstops import reserve  # noqa: E402
from anycar.swap import registry as swap_registry  # noqa: E402
from anycar.swap import tables as t  # noqa: E402
from anycar.swap.console_api import set_site  # noqa: E402
from browser_support import own_errors, screenshot  # noqa: E402
from ops_console_support import OpsFleet, auth, show, sign_in  # noqa: E402
from swap_support import ROUND, half_charge_swap  # noqa: E402

pytest_plugins = ["browser_support"]
DEPOT = {"lat": 60.169, "lon": 24.9372}
KAMPPI = (60.168, 24.932)
CSV = "id,kind,lat,lon,windows,service_s,weight_kg\n" + "".join(
    f"{ref},delivery,{lat},{lon},08:00-23:00,120,5\n" for ref, lat, lon in ROUND[:5]
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpsFleet, str, dict[str, Any]]]:
    """sw-1's round with a swap at Kamppi (reserved through the CSMS; the station is not
    connected, so the CSMS holds it), accepted; D001 already moved to sw-2 through the API, so
    both vehicles have a route in the plan in force."""
    db: Path = tmp_path_factory.mktemp("swapmove") / "fleet.sqlite3"
    ops = OpsFleet(f"sqlite:///{db}")
    ops.start()
    try:
        engine = ops.server.engine
        for n, wire in ((1, "sw-1"), (2, "sw-2")):
            registry.add_vehicle(
                engine, f"LKYZRT0000000000{n}", "kaiyun_pickman", tenant="swapco", wire_id=wire
            )
        swap_token = swap_registry.add_token(engine, "sw-1")
        token = registry.add_user(engine, "swapco", "disp", "dispatcher")
        tid = registry.tenant_id(engine, "swapco")
        swap_registry.add_station(engine, "hki-kamppi", tenant="swapco", layout="pickman-8")
        swap_registry.stock_station(engine, "hki-kamppi", "pickman-8", soc=99.0)
        assert set_site(engine, tid, "hki-kamppi", *KAMPPI, "Kamppi")
        with httpx.Client(base_url=ops.url, timeout=90, headers=auth(token)) as http:
            r = http.post("/api/orders/import?name=o.csv", content=CSV, headers={"Content-Type": "text/csv"})
            assert r.status_code == 201, r.text
            # the round starts now (the DayClock's 12:00): the pack is held until 30 min after
            # the planned arrival, and a move re-times the swap from now
            plan = {"depot": DEPOT, "shift": "12:00-23:59", "time_limit_s": 0.5, "only": ["sw-1"]}
            r = http.post("/api/plans", json=plan)
            assert r.status_code == 201, r.text
            plan_id = int(r.json()["id"])
            (route_json,) = r.json()["plan"]["routes"]
            decision = half_charge_swap(route_json, (DEPOT["lat"], DEPOT["lon"]), "hki-kamppi", KAMPPI)
            now = ops.clock()
            day_start = now - now % 86_400
            got = ops.call(
                reserve(
                    ops.server.csms, decision.swap, swap_token, now_s=now - day_start, day_start=day_start
                )
            )
            assert got.status == "Queued" and got.reservation_id is not None
            add_to_plan(engine, tid, plan_id, decision)
            assert http.post(f"/api/plans/{plan_id}/accept").status_code == 200
            r = http.post(f"/api/plans/{plan_id}/move", json={"order": "D001", "vehicle": "sw-2"})
            assert r.status_code in (200, 409), r.text
        yield ops, token, {"plan": plan_id, "reservation": got.reservation_id, "first": r.json()}
    finally:
        ops.stop()


def _plan(ops: OpsFleet, token: str) -> dict[str, Any]:
    return httpx.get(f"{ops.url}/api/logistics/plan", headers=auth(token), timeout=30).json()


def _swap_of(plan: dict[str, Any]) -> dict[str, Any]:
    (swap,) = [s for r in plan["plan"]["routes"] for s in r["stops"] if s["action"] == "swap"]
    return swap


def test_a_dragged_stop_leaves_the_swap_stop_on_its_route_re_timed(page: Any, fleet) -> None:
    ops, token, info = fleet
    first = info["first"]
    assert first["accepted"], first  # the API move already kept it: the answer says how
    (said,) = first["swap"]
    assert (
        said.startswith("sw-1: swap at hki-kamppi re-timed to ")
        and f"(reservation {info['reservation']} kept)" in said
    )
    before = _plan(ops, token)
    swap = _swap_of(before)
    assert swap["reservation"] == info["reservation"] and swap["station"] == "hki-kamppi"
    mine = next(r for r in before["plan"]["routes"] if r["vehicle"] == "sw-1")
    after_swap = [s["order"] for s in mine["stops"][mine["stops"].index(swap) + 1 :] if s.get("order")]
    moved = (after_swap or [s["order"] for s in mine["stops"] if s.get("order")])[0]

    sign_in(page, ops.url, token)
    show(page, "#/logistics/plan", "plan")
    row = page.locator(".lg-route[data-route='sw-1'] tr[data-swap=hki-kamppi]")
    assert row.count() == 1 and swap["arrival"][:5] in row.text_content()
    page.drag_and_drop(f"tr[data-order='{moved}']", ".lg-route[data-route='sw-2'] header")
    page.wait_for_function(
        "(() => { const t = document.querySelector('[data-testid=move-result]'); return t && !t.hidden && t.textContent.includes('swap at'); })()",
        timeout=60_000,
    )
    toast = page.text_content("[data-testid=move-result]")
    after = _plan(ops, token)
    new = _swap_of(after)
    mine = next(r for r in after["plan"]["routes"] if r["vehicle"] == "sw-1")
    assert moved not in [s.get("order") for s in mine["stops"]]
    assert f"{moved} fits on sw-2" in toast
    assert (
        f"sw-1: swap at hki-kamppi re-timed to {new['arrival']} (reservation {info['reservation']} kept)"
        in toast
    )
    assert "ok" in page.get_attribute("[data-testid=move-result]", "class")
    # the plan in force: both changed routes sent to their hubs (v1 at accept, v2 at the API's move)
    assert "route v3 sent to sw-1" in toast and "route v2 sent to sw-2" in toast, toast
    # the table shows it in its new place and time, still with its reservation (once reloaded:
    # the moved stop is on sw-2's table)
    page.wait_for_selector(f".lg-route[data-route='sw-2'] tr[data-order='{moved}']", timeout=30_000)
    page.wait_for_function(
        f"document.querySelector(\".lg-route[data-route='sw-1'] tr[data-swap=hki-kamppi]\")?.textContent.includes('{new['arrival'][:5]}')",
        timeout=30_000,
    )
    rows = page.eval_on_selector_all(
        ".lg-route[data-route='sw-1'] tbody tr",
        "rows => rows.map(r => r.dataset.order || 'swap:' + r.dataset.swap)",
    )
    assert rows == [
        s["order"] or f"swap:{s['station']}" for s in mine["stops"] if s["order"] or s["action"] == "swap"
    ]
    assert f"R{info['reservation']}" in page.text_content(
        ".lg-route[data-route='sw-1'] tr[data-swap=hki-kamppi]"
    )
    i = mine["stops"].index(new)
    assert (
        mine["stops"][i - 1]["departure"]
        <= new["arrival"]
        <= new["departure"]
        <= mine["stops"][i + 1]["arrival"]
    )
    screenshot(page, "route_move_keeps_swap")
    assert own_errors(page) == []


def test_a_redispatch_moves_the_swap_and_accepting_it_moves_the_reservation(page: Any, fleet) -> None:
    """A station on the rounds comes online; the re-dispatch plans the swap there; accepting it
    through the API releases the pack held at Kamppi and books one there (the server's CSMS),
    and the console's route table shows the new station with its reservation."""
    ops, token, info = fleet
    engine = ops.server.engine
    tid = registry.tenant_id(engine, "swapco")
    swap_registry.add_station(engine, "hki-kallio", tenant="swapco", layout="pickman-8")
    swap_registry.stock_station(engine, "hki-kallio", "pickman-8", soc=99.0)
    assert set_site(engine, tid, "hki-kallio", 60.1712, 24.9500, "Kallio")
    with engine.begin() as conn:  # as its BootNotification would
        conn.execute(update(t.stations).where(t.stations.c.id == "hki-kallio").values(online=True))
    with engine.begin() as conn:  # sw-1 is out on its round, east of Kamppi
        conn.execute(
            update(db.vehicles)
            .where(db.vehicles.c.wire_id == "sw-1")
            .values(last_lat=60.1745, last_lon=24.9505)
        )
    now = dt.datetime.fromtimestamp(ops.clock(), dt.UTC).strftime("%H:%M")
    with httpx.Client(base_url=ops.url, timeout=90, headers=auth(token)) as http:
        r = http.post(
            "/api/plans/redispatch",
            json={"depot": DEPOT, "shift": "12:00-23:59", "time_limit_s": 0.5, "now": now},
        )
        assert r.status_code == 201, r.text
        proposal = r.json()
        (swap,) = [s for x in proposal["plan"]["routes"] for s in x["stops"] if s["action"] == "swap"]
        assert swap["station"] == "hki-kallio" and swap["reservation"] is None, proposal["plan"]["notes"]
        r = http.post(f"/api/plans/{proposal['id']}/accept")
        assert r.status_code == 200, r.text
        accepted = r.json()
    released, booked = accepted["swap"]
    assert released == f"sw-1: reservation {info['reservation']} at hki-kamppi released (Withdrawn)"
    assert booked.startswith("sw-1: reservation ") and booked.endswith(" at hki-kallio: Queued")
    new_id = int(booked.split()[2])
    (stop,) = [s for x in accepted["plan"]["routes"] for s in x["stops"] if s["action"] == "swap"]
    assert (stop["reservation"], stop["reservation_status"]) == (new_id, "Queued")
    with engine.connect() as conn:
        rows = dict(conn.execute(select(t.reservations.c.id, t.reservations.c.status)).all())
    assert rows == {info["reservation"]: "cancelled", new_id: "queued"}
    sign_in(page, ops.url, token)
    show(page, "#/logistics/plan", "plan")
    row = page.locator(".lg-route[data-route='sw-1'] tr[data-swap=hki-kallio]")
    assert row.count() == 1 and f"R{new_id} · Queued" in row.text_content()
    assert page.locator("tr[data-swap=hki-kamppi]").count() == 0
    assert own_errors(page) == []
