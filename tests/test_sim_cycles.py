"""Drive cycles: the shipped WLTC trace and the seeded delivery cycle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycar.errors import ConfigError
from anycar.sim.cycles import (
    DELIVERY,
    DRIVE,
    REVERSE,
    delivery_cycle,
    delivery_parameters,
    load_cycle,
    wltc_class3b,
)


def test_wltc_class3b_is_the_official_trace() -> None:
    cycle = wltc_class3b()
    assert len(cycle.speeds_kmh) == 1801
    assert cycle.duration_s == 1800
    assert max(cycle.speeds_kmh) == 131.3
    assert sum(cycle.speeds_kmh) == pytest.approx(83758.6)  # the checksum of the source
    assert cycle.distance_m() == pytest.approx(23266, abs=1)
    # The low and medium phases of GTR 15 end at a standstill.
    assert cycle.speeds_kmh[589] == 0.0 and cycle.speeds_kmh[1022] == 0.0


def test_speed_is_interpolated_between_samples() -> None:
    cycle = wltc_class3b()
    assert cycle.speed_at(12) == 0.2
    assert cycle.speed_at(13.5) == pytest.approx((1.7 + 5.4) / 2)


def test_delivery_cycle_is_deterministic_for_a_seed() -> None:
    assert delivery_cycle(7).speeds_kmh == delivery_cycle(7).speeds_kmh
    assert delivery_cycle(7).phases == delivery_cycle(7).phases
    assert delivery_cycle(7).speeds_kmh != delivery_cycle(8).speeds_kmh


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_delivery_cycle_is_capped_between_25_and_45(seed: int) -> None:
    cycle = delivery_cycle(seed)
    params = delivery_parameters()
    assert max(cycle.speeds_kmh) <= 45.0
    jitter = params["cruise_jitter_kmh"]
    legs = {p.leg for p in cycle.phases if p.kind == DRIVE}
    assert len(legs) == params["deliveries"] + 1
    for leg in legs:
        peak = max(
            max(cycle.speeds_kmh[p.start : p.end]) for p in cycle.phases if p.leg == leg and p.kind == DRIVE
        )
        assert 25.0 - jitter <= peak <= 45.0, (leg, peak)
    deliveries = [p for p in cycle.phases if p.kind == DELIVERY]
    assert len(deliveries) == params["deliveries"]
    for p in deliveries:
        assert all(v == 0 for v in cycle.speeds_kmh[p.start : p.end])
        lo, hi = params["delivery_stop_s"]
        assert lo - 1 <= p.duration <= hi + 1
    for p in cycle.phases:
        if p.kind == REVERSE:
            assert max(cycle.speeds_kmh[p.start : p.end]) <= params["reverse_kmh"]


def test_delivery_cycle_refuses_bad_parameters() -> None:
    params = dict(delivery_parameters())
    params["cruise_cap_kmh"] = [45, 25]
    with pytest.raises(ConfigError, match="cruise_cap_kmh"):
        delivery_cycle(0, params)
    params = dict(delivery_parameters())
    params["deliveries"] = 0
    with pytest.raises(ConfigError, match="deliveries"):
        delivery_cycle(0, params)


def test_unknown_cycle_name_says_what_exists() -> None:
    with pytest.raises(ConfigError, match="wltc3, delivery"):
        load_cycle("nedc")


def test_csv_export_has_a_row_per_second() -> None:
    text = delivery_cycle(1).to_csv()
    lines = text.splitlines()
    assert lines[0] == "time_s,speed_kmh,phase"
    assert len(lines) == len(delivery_cycle(1).speeds_kmh) + 1
