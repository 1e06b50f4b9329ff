"""The charging plan: grid limit and chargers respected, demand met, cheaper hours preferred."""

from __future__ import annotations

from ocpp.messages import Call, _validate_payload

from anycar.swap.plan import SlotPack, make_plan

T0 = 1_767_225_600.0  # 2026-01-01T00:00Z
NIGHT_CHEAP = [0.10] * 6 + [0.40] * 16 + [0.10] * 2


def _packs(n: int, soc: float = 20.0) -> list[SlotPack]:
    return [SlotPack(i + 1, f"P{i + 1}", soc, 10.0) for i in range(n)]


def test_limits_hold_and_the_demand_is_met() -> None:
    demand = [0, 0, 1, 1, 2, 1] + [0.1] * 18  # 6.8 swaps for 8 packs
    plan = make_plan(_packs(8), chargers=4, charger_kw=6.6, grid_limit_kw=22.0, demand=demand, start=T0)
    assert max(plan.grid_kw()) <= 22.0 + 1e-6
    for h in range(plan.hours):
        assert sum(1 for row in plan.kw.values() if row[h] > 0) <= 4
        assert all(row[h] <= 6.6 + 1e-9 for row in plan.kw.values())
    assert all(r >= n for r, n in zip(plan.ready, plan.needed, strict=True)), (plan.ready, plan.needed)
    assert plan.late == []
    energy = sum(sum(row) for row in plan.kw.values())
    assert abs(energy - 8 * 7.5) < 1e-6  # each pack 20 % -> 95 % of 10 kWh


def test_cheaper_hours_are_preferred_when_the_demand_allows() -> None:
    demand = [0.0] * 23 + [1.0]  # one swap expected at the end of the day
    cheap = make_plan(
        _packs(2), chargers=2, charger_kw=6.6, grid_limit_kw=22.0, demand=demand, tariff=NIGHT_CHEAP, start=T0
    )
    flat = make_plan(
        _packs(2), chargers=2, charger_kw=6.6, grid_limit_kw=22.0, demand=demand, tariff=[0.25] * 24, start=T0
    )
    used = {h for row in cheap.kw.values() for h, kw in enumerate(row) if kw > 0}
    assert used <= set(range(6)) | {22, 23}
    assert cheap.cost < 0.11 * 15 + 1e-6 and flat.cost > cheap.cost


def test_an_urgent_reservation_beats_the_tariff() -> None:
    demand = [1.0] + [0.0] * 23  # a reservation now
    plan = make_plan(
        _packs(1, soc=90.0),
        chargers=1,
        charger_kw=6.6,
        grid_limit_kw=22.0,
        demand=demand,
        tariff=list(reversed(NIGHT_CHEAP)),
        start=T0 + 6 * 3600,
    )
    assert plan.kw[1][0] > 0 and plan.ready[0] == 1


def test_what_cannot_be_ready_is_reported_late() -> None:
    plan = make_plan(
        _packs(4, soc=0.0), chargers=1, charger_kw=3.0, grid_limit_kw=3.0, demand=[4.0] + [0.0] * 23, start=T0
    )
    assert len(plan.late) == 4 and plan.ready[0] == 0


def test_the_profiles_are_valid_ocpp_21() -> None:
    plan = make_plan(_packs(3), chargers=2, charger_kw=6.6, grid_limit_kw=10.0, demand=[1.0] * 24, start=T0)
    for evse, profile in plan.profiles().items():
        _validate_payload(
            Call("1", "SetChargingProfile", {"evseId": evse, "chargingProfile": profile}), "2.1"
        )
