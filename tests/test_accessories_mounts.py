"""Mount points in every brand profile, and admission at a mount: type and watts must fit,
otherwise the refusal says what is free."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.accessories import virtual
from anycar.accessories.errors import FitRefused
from anycar.accessories.fitting import MountBoard
from anycar.accessories.manifest import Power, parse_manifest
from anycar.accessories.mounts import load_mounts, load_profile_mounts, profiles_root
from anycar.errors import ConfigError
from profiles_support import ALL as PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_has_mounts(profile: str) -> None:
    plan = load_profile_mounts(profile)
    assert plan.profile == profile and plan.mounts and plan.rails
    for m in plan.mounts.values():
        assert m.max_w <= plan.rails[m.rail].budget_w
    assert plan.driving.rules


def test_su7_powered_mounts_give_15_to_27_watts() -> None:
    plan = load_profile_mounts("xiaomi_su7")
    powered = [m for m in plan.mounts.values() if m.type == "quarter_inch_powered"]
    assert powered and all(15 <= m.max_w <= 27 for m in powered)
    assert {m.max_w for m in powered} == {15.0, 27.0}
    assert any(m.type == "screen_edge_pins" for m in plan.mounts.values())
    assert any(m.type == "seat_back" for m in plan.mounts.values())


def test_pickman_has_cargo_bed_rails_and_its_own_speed_ranges() -> None:
    plan = load_profile_mounts("kaiyun_pickman")
    rails = [m for m in plan.mounts.values() if m.type == "cargo_bed_rail"]
    assert len(rails) == 4
    assert plan.driving.max_string_length == 60
    assert plan.power.low_soc_percent == 20


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mounts.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rails: {}\nmounts: {}\n", "rails: need at least one"),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: hook, rail: r, max_w: 5}}\n",
            "mounts.m.type: 'hook'",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: q, max_w: 5}}\n",
            "mounts.m.rail: 'q'",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: r, max_w: 50}}\n",
            "mounts.m.max_w: 50 W exceeds",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: r, max_w: 5, location: {side: Left}}}\n",
            "location.side: 'Left'",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: -1}}\nmounts: {m: {type: usb_c, rail: r, max_w: 5}}\n",
            "rails.r.budget_w: must be a positive",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: r, max_w: 5}}\ndriving_state: {rules: [{state: flying}]}\n",
            "driving_state.rules[0].state",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: r, max_w: 5}}\ndriving_state: {rules: [{state: moving, restrictions: [NO_FUN]}]}\n",
            "restrictions[0]: 'NO_FUN'",
        ),
        (
            "rails: {r: {voltage_v: 12, budget_w: 10}}\nmounts: {m: {type: usb_c, rail: r, max_w: 5}}\npower: {low_voltage_v: 10}\n",
            "cutoff_voltage_v < critical_voltage_v",
        ),
        ("rails: [\n", "invalid YAML"),
    ],
)
def test_bad_mounts_yaml_says_where(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_mounts(write(tmp_path, text))
    assert words in str(info.value)
    assert "mounts.yaml" in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_mounts(profiles_root() / "no_such_car")


def fan() -> tuple[tuple[str, ...], Power]:
    m = parse_manifest(virtual.manifest_data("clip_fan"))
    return m.mount_types, m.power


def test_fit_and_refusals_say_what_is_free() -> None:
    board = MountBoard(load_profile_mounts("xiaomi_su7"))
    types, power = fan()
    board.fit("Fan1", "dash_mount_left", types, power)
    assert board.rail_used("accessory_12v") == 12
    with pytest.raises(FitRefused, match="taken by Fan1") as info:
        board.fit("Fan2", "dash_mount_left", types, power)
    assert "dash_mount_centre" in str(info.value)
    assert {m["mount"] for m in info.value.free["mounts"]} >= {"dash_mount_centre", "console_usb_c_1"}
    with pytest.raises(FitRefused, match="no mount point 'glovebox'"):
        board.fit("Fan2", "glovebox", types, power)
    with pytest.raises(FitRefused, match="is screen_edge_pins, the accessory fits"):
        board.fit("Fan2", "screen_edge_top", types, power)


def test_mount_watts_over_subscribed() -> None:
    board = MountBoard(load_profile_mounts("xiaomi_su7"))
    greedy = Power(5, 20, 20)
    with pytest.raises(
        FitRefused, match="peaks at 20 W, mount ceiling_mount_rear gives at most 15 W"
    ) as info:
        board.fit("Big", "ceiling_mount_rear", ("quarter_inch_powered",), greedy)
    usable = {m["mount"]: m["usable_w"] for m in info.value.free["mounts"]}
    assert usable["dash_mount_left"] == 27


def test_rail_budget_over_subscribed() -> None:
    board = MountBoard(load_profile_mounts("xiaomi_su7"))
    heavy = Power(1, 25, 27)
    for mount in ("dash_mount_left", "dash_mount_centre", "dash_mount_right"):
        board.fit(mount, mount, ("quarter_inch_powered", "seat_back", "screen_edge_pins"), heavy)
    board.fit("a", "seat_back_driver", ("seat_back",), Power(1, 15, 15))
    board.fit("b", "seat_back_passenger", ("seat_back",), Power(1, 15, 15))
    # 3 x 27 + 2 x 15 = 111 W of 160 W used; 49 W left; the screen pins give 15 W
    board.fit("c", "screen_edge_top", ("screen_edge_pins",), Power(1, 15, 15))
    # 126 W used, 34 W left on the rail: a 15 W lamp still fits the ceiling mount...
    with pytest.raises(FitRefused) as info:
        board.fit("d", "ceiling_mount_rear", ("quarter_inch_powered",), Power(1, 16, 16))
    assert "gives at most 15 W" in str(info.value)
    board.fit("d", "ceiling_mount_rear", ("quarter_inch_powered",), Power(1, 15, 15))
    assert board.rail_free("accessory_12v") == 19
    board.release("d")
    board.fit("e", "ceiling_mount_rear", ("quarter_inch_powered",), Power(1, 14, 14))
    assert board.rail_free("accessory_12v") == 20


def test_rail_budget_refusal_names_the_rail() -> None:
    board = MountBoard(load_profile_mounts("kaiyun_pickman"))
    sensor = Power(1, 8, 8)
    for mount in ("bed_rail_front_left", "bed_rail_front_right", "bed_rail_rear_left", "bed_rail_rear_right"):
        board.fit(mount, mount, ("cargo_bed_rail",), sensor)
    # bed rail: 40 W budget, 32 W used: a 10 W roof light does not fit
    with pytest.raises(
        FitRefused, match="rail bed_12v has 8 W free of 40 W, the accessory peaks at 10 W"
    ) as info:
        board.fit("lamp", "cab_roof_rail", ("roof_rail",), Power(1, 10, 10))
    assert info.value.free["rails_free_w"]["bed_12v"] == 8
