"""The planner with its real solvers on small problems: time windows, capacity, battery, cargo
features, drivers' breaks, paired courier jobs, unservable orders with their reasons, the time
limit reported, and two benchmark instances within a gap of their best known solutions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from anycar.logistics import instances
from anycar.logistics.matrix import Planar, StraightLine
from anycar.logistics.orders import Order, Place, Window
from anycar.logistics.planner import plan
from anycar.logistics.problem import Break, PlanRequest, PlanVehicle

DATA = Path(__file__).parent / "data" / "vrp"
DEPOT = (60.170, 24.945)
H = 3600
ROADS = StraightLine(detour=1.3, speed_kmh=22)


def van(name: str, **kw) -> PlanVehicle:
    base = dict(
        id=name,
        start=DEPOT,
        end=DEPOT,
        payload_kg=350,
        cargo_m3=2.2,
        battery_kwh=15,
        kwh_per_km=0.09,
        soc=0.9,
        shift=Window(8 * H, 18 * H),
    )
    base.update(kw)
    return PlanVehicle(**base)


def drop(ref: str, lat: float, lon: float, *windows: tuple[int, int], kg: float = 10, **kw) -> Order:
    ws = tuple(Window(a, b) for a, b in windows) or (Window(8 * H, 18 * H),)
    return Order(ref=ref, kind="delivery", drop=Place(lat, lon, ws, 120), pickup=None, weight_kg=kg, **kw)


def request(orders, vehicles, **kw) -> PlanRequest:
    return PlanRequest(
        depot=DEPOT, orders=tuple(orders), vehicles=tuple(vehicles), time_limit_s=kw.pop("limit", 0.5), **kw
    )


def stop_of(result, ref: str):
    return next(s for r in result.routes for s in r.stops if s.order == ref and s.action == "drop")


def test_time_windows_are_kept_and_the_second_window_used_when_the_first_cannot_be() -> None:
    orders = [
        drop("early", 60.175, 24.950, (9 * H, 9 * H + 900)),
        drop("late", 60.165, 24.940, (15 * H, 16 * H)),
        # The first window closes before a vehicle can get there from an 08:00 start; the second is open.
        drop("two", 60.190, 24.990, (8 * H, 8 * H + 60), (13 * H, 14 * H)),
    ]
    result = plan(request(orders, [van("v1")]), ROADS)
    assert result.feasible and not result.unservable, result.unservable
    assert 9 * H <= stop_of(result, "early").start_s <= 9 * H + 900
    assert 15 * H <= stop_of(result, "late").start_s <= 16 * H
    assert 13 * H <= stop_of(result, "two").start_s <= 14 * H
    assert result.estimate and result.matrix_source == "straight-line estimate"


def test_capacity_splits_the_load_over_two_vehicles() -> None:
    orders = [drop(f"o{i}", 60.17 + i * 0.002, 24.95, kg=100) for i in range(5)]  # 500 kg
    result = plan(request(orders, [van("v1"), van("v2")]), ROADS)
    assert result.feasible and not result.unservable
    assert len(result.routes) == 2
    for route in result.routes:
        assert route.stops[0].load_kg <= 350
    assert sorted(r for route in result.routes for r in route.orders()) == [f"o{i}" for i in range(5)]


def test_unservable_orders_come_with_their_reason() -> None:
    orders = [
        drop("heavy", 60.17, 24.95, kg=900),
        drop("cold", 60.17, 24.95, features=frozenset({"refrigerated"})),
        drop("closed", 60.21, 25.03, (8 * H, 8 * H + 60)),  # 8 km away, window closes a minute after start
        drop("fine", 60.171, 24.946),
    ]
    result = plan(request(orders, [van("v1"), van("v2", payload_kg=300)]), ROADS)
    assert result.unservable["heavy"] == "too heavy for every vehicle (900 kg; the largest payload is 350 kg)"
    assert (
        result.unservable["cold"] == "needs refrigerated: no vehicle has a refrigerated cargo box fitted now"
    )
    assert result.unservable["closed"].startswith(
        "no vehicle can reach it within its time windows (earliest arrival 08:"
    )
    assert "fine" not in result.unservable and result.routes[0].orders() == ["fine"]
    # A vehicle with the feature takes the cold one.
    cold = plan(request(orders[1:2], [van("v1"), van("fridge", features=frozenset({"refrigerated"}))]), ROADS)
    assert [r.vehicle for r in cold.routes] == ["fridge"] and not cold.unservable


def test_battery_with_its_reserve_decides_what_a_vehicle_may_do() -> None:
    far = drop("far", 60.215, 25.035)  # about 7 km from the depot: ~18 km there and back
    low = van("low", soc=0.25)  # (0.25 - 0.15) x 15 kWh / 0.09 kWh/km = 16.7 km of range
    result = plan(request([far], [low]), ROADS)
    assert result.unservable["far"].startswith("out of every vehicle's battery range with the reserve kept")
    full = plan(request([far], [low, van("full")]), ROADS)
    assert [r.vehicle for r in full.routes] == ["full"] and not full.unservable
    assert full.routes[0].soc_end >= 0.15
    # Several stops that fit alone but not together: the solver leaves some out, and says so.
    near = [drop(f"n{i}", 60.19 + 0.004 * i, 24.90 + 0.02 * i) for i in range(6)]
    partial = plan(request(near, [low]), ROADS)
    assert partial.routes and partial.routes[0].soc_end >= 0.15 - 1e-9
    assert partial.unservable and all(
        r.startswith("left out by the solver") for r in partial.unservable.values()
    )
    assert len(partial.routes[0].orders()) + len(partial.unservable) == 6


def test_a_courier_job_is_picked_up_before_it_is_dropped_by_the_same_vehicle() -> None:
    job = Order(
        ref="c1",
        kind="courier",
        pickup=Place(60.18, 24.93, (Window(9 * H, 10 * H),), 60),
        drop=Place(60.16, 24.96, (Window(10 * H, 12 * H),), 60),
        weight_kg=20,
    )
    result = plan(request([job, drop("d1", 60.175, 24.95)], [van("v1"), van("v2")]), ROADS)
    assert result.feasible and not result.unservable
    route = next(r for r in result.routes if "c1" in r.orders())
    actions = [s.action for s in route.stops if s.order == "c1"]
    assert actions == ["pickup", "drop"]
    pick = next(s for s in route.stops if s.order == "c1" and s.action == "pickup")
    assert 9 * H <= pick.start_s <= 10 * H


@pytest.mark.parametrize("solver", ["auto", "vroom", "pyvrp"])
def test_a_courier_job_whose_first_windows_cannot_be_met_is_served_in_its_second(solver: str) -> None:
    # The pickup is minutes from the depot, so its 08:00-08:01 window has closed when a vehicle
    # starting at 08:00 arrives, and the drop-off's 08:00-08:20 with it; 10:00-11:00 for the
    # pickup and 13:00-14:00 for the drop-off are open. VROOM takes every window as it is; PyVRP
    # (one window per shipment stop) is given VROOM's, or the earliest a vehicle reaches.
    job = Order(
        ref="c2",
        kind="courier",
        pickup=Place(60.185, 24.925, (Window(8 * H, 8 * H + 60), Window(10 * H, 11 * H)), 60),
        drop=Place(60.160, 24.965, (Window(8 * H, 8 * H + 1200), Window(13 * H, 14 * H)), 60),
        weight_kg=5,
    )
    orders = [drop("d1", 60.175, 24.95), job, drop("d2", 60.165, 24.94, (8 * H, 9 * H), (15 * H, 16 * H))]
    result = plan(request(orders, [van("v1")], solver=solver, limit=1.0), ROADS)
    assert result.feasible and not result.unservable, (result.unservable, result.notes)
    (route,) = result.routes
    pick = next(s for s in route.stops if s.order == "c2" and s.action == "pickup")
    put = next(s for s in route.stops if s.order == "c2" and s.action == "drop")
    assert 10 * H <= pick.start_s <= 11 * H and pick.window == "10:00-11:00"
    assert 13 * H <= put.start_s <= 14 * H and put.window == "13:00-14:00"
    if result.solver.startswith("pyvrp"):
        assert any("c2 10:00-11:00 > 13:00-14:00" in n for n in result.notes), result.notes
    # With only its first windows the same job cannot be served at all: the second ones count.
    first_only = replace(
        job,
        pickup=replace(job.pickup, windows=job.pickup.windows[:1]),
        drop=replace(job.drop, windows=job.drop.windows[:1]),
    )
    none = plan(request([first_only], [van("v1")], solver=solver, limit=0.5), ROADS)
    assert "c2" in none.unservable and not none.routes


def test_a_drivers_break_goes_to_vroom_and_the_time_limit_is_reported() -> None:
    orders = [drop(f"o{i}", 60.165 + 0.003 * i, 24.935 + 0.003 * i) for i in range(6)]
    vehicle = van("v1", breaks=(Break(12 * H, 13 * H, 30 * 60),))
    result = plan(request(orders, [vehicle]), ROADS)
    assert result.solver.startswith("vroom") and result.feasible and not result.unservable
    with pytest.raises(ValueError, match="PyVRP cannot model drivers' breaks"):
        plan(request(orders, [vehicle], solver="pyvrp"), ROADS)
    fast = plan(request(orders, [van("v1")], limit=0.2), ROADS)
    assert fast.solver.startswith("pyvrp") and fast.stopped_by == "time_limit"
    assert fast.to_json()["best_so_far"] is True


def test_goods_on_board_stay_with_their_vehicle() -> None:
    orders = [drop("mine", 60.171, 24.946), drop("any", 60.172, 24.947)]
    out = van("out", start=(60.18, 24.96), onboard=("mine",))
    result = plan(request(orders, [out, van("home")]), ROADS)
    assert not result.unservable
    carrier = next(r for r in result.routes if "mine" in r.orders())
    assert carrier.vehicle == "out"


def _bks(name: str, key: str) -> float:
    return json.loads((DATA / key).read_text())[name]["best_known_cost"]


def test_solomon_c101_and_rc201_within_a_gap_of_the_best_known_distance() -> None:
    for name, gap in (("C101", 0.5), ("RC201", 3.0)):
        req = instances.solomon(DATA / "solomon" / f"{name}.txt", time_limit_s=1.0)
        result = plan(req, Planar())
        assert result.feasible and not result.unservable
        assert result.distance_m <= _bks(f"{name}_distance", "VRPTW_BKS.json") * (1 + gap / 100), (
            name,
            result.distance_m,
        )
        by_ref = {o.ref: o for o in req.orders}
        due = req.vehicles[0].shift.end
        for (
            route
        ) in result.routes:  # every customer inside its window, every route back by the depot's due time
            for s in route.stops[1:-1]:
                windows = by_ref[s.order].drop.windows
                assert any(w.start - 1e-6 <= s.start_s <= w.end + 1e-3 for w in windows), (s.order, s.start_s)
            assert route.stops[-1].arrival_s <= due + 1e-3
        assert sum(len(r.orders()) for r in result.routes) == 100
        peer = plan(replace(req, solver="vroom"), Planar())
        assert peer.feasible and peer.solver.startswith("vroom")


def test_li_lim_lc101_with_the_bks_fleet() -> None:
    entry = json.loads((DATA / "PDPTW_BKS.json").read_text())["lc101"]
    req = instances.li_lim(
        DATA / "li_lim_100" / "lc101.txt", vehicles=entry["solved_with_vehicles"], time_limit_s=1.5
    )
    result = plan(req, Planar())
    assert result.feasible and not result.unservable
    assert len(result.routes) <= entry["solved_with_vehicles"]
    assert result.distance_m <= entry["best_known_cost"] * 1.02


def test_a_bad_instance_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "X1.txt"
    lines = (DATA / "solomon" / "C101.txt").read_text().splitlines()
    lines[12] = " ".join(lines[12].split()[:5])  # customer 3 loses its due date and service time
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(instances.InstanceError, match=r"X1.txt:13: 7 numbers per customer, found 5"):
        instances.solomon(bad)


async def test_broken_data_files_stop_the_room_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from anycar.logistics import settings
    from anycar.logistics.room import LogisticsRoom

    assert settings.validate() == []
    broken = {
        "vehicle_types.yaml": {
            "default": {
                "payload_kg": 300,
                "cargo_m3": 1,
                "battery_kwh": 40,
                "kwh_per_km": 0.2,
                "speed_kmh": 25,
            },
            "types": {"odd": {"battery_kwh": -1, "features": ["jetpack"]}},
            "features": ["refrigerated"],
        },
        "planning.yaml": {"detour_factor": "lots", "reserve_soc": 0.1, "default_time_limit_s": 5},
        "cargo_accessories.yaml": {
            "labels": {},
            "counts": ["RUNNING"],
            "products": [
                {"vendor_id": 65521, "product_id": 1, "name": "box", "features": ["heated"]},
                {"vendor_id": 65521, "product_id": 1, "name": "again", "features": ["refrigerated"]},
            ],
        },
    }
    monkeypatch.setattr(settings, "_load", lambda name: broken[name])
    assert settings.validate() == [
        "vehicle_types.yaml: odd.battery_kwh: a positive number",
        "vehicle_types.yaml: odd.features: 'jetpack' is not in features",
        "cargo_accessories.yaml: labels: no label for 'refrigerated'",
        "cargo_accessories.yaml: products[0].features: 'heated' is not in vehicle_types.yaml features",
        "cargo_accessories.yaml: products[1]: vendor 65521 product 1 repeats",
        "planning.yaml: detour_factor: a number",
        "planning.yaml: service_area: min_lat, max_lat, min_lon, max_lon numbers",
    ]
    with pytest.raises(ValueError, match=r"logistics data: vehicle_types\.yaml: odd\.battery_kwh"):
        await LogisticsRoom(engine=None).start()  # type: ignore[arg-type]
