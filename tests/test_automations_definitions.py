"""Definitions: the published schema, the live catalog, file:line and the automation's id in every
refusal, a bad file never stopping the others."""

from __future__ import annotations

from pathlib import Path

import jsonschema

from anycar.automations.engine import Engine
from anycar.automations.source import parse_yaml, schema, schema_problems, seconds
from anycar.broker import SignalBroker
from automations_support import FakeCar, write

GOOD = """\
automations:
  - id: door_light
    alias: Light when the door opens
    triggers:
      - signal: Vehicle.Cabin.Door.Row1.DriverSide.IsOpen
        to: true
    actions:
      - actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn
        value: true
scenes:
  - id: welcome
    targets:
      Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn: true
      Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity: 60
"""


def _engine() -> tuple[Engine, FakeCar]:
    broker = SignalBroker()
    return Engine(broker), FakeCar(broker)


def _messages(problems: list) -> list[str]:
    return [str(p) for p in problems]


def test_the_published_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$defs"]["automation"]["additionalProperties"] is False


def test_a_good_file_loads(tmp_path: Path) -> None:
    engine, _ = _engine()
    problems = engine.load_paths([write(tmp_path, "a.yaml", GOOD)])
    assert problems == []
    assert list(engine.automations) == ["door_light"]
    assert engine.scenes["welcome"].targets["Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity"] == 60


def test_unknown_signal_is_refused_with_file_line_id_and_did_you_mean(tmp_path: Path) -> None:
    bad = GOOD.replace("Row1.DriverSide.IsOpen", "Row1.DriverSide.IsOpn")
    engine, _ = _engine()
    problems = engine.load_paths([write(tmp_path, "a.yaml", bad)])
    (msg,) = _messages(problems)
    assert f"{tmp_path / 'a.yaml'}:5:" in msg
    assert "[door_light]" in msg
    assert "did you mean Vehicle.Cabin.Door.Row1.DriverSide.IsOpen" in msg
    assert engine.automations == {}
    assert engine.status["door_light"].state == "refused"


def test_wrong_datatype_wrong_unit_sensor_target_and_no_provider(tmp_path: Path) -> None:
    text = """\
automations:
  - id: wrong_type
    triggers: [{signal: Vehicle.Cabin.Door.Row1.DriverSide.IsOpen, to: "maybe"}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, value: true}]
  - id: wrong_unit
    triggers: [{signal: Vehicle.Speed, above: 30, unit: mph}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, value: true}]
  - id: sensor_target
    triggers: [{signal: Vehicle.Speed, above: 30}]
    actions: [{actuate: Vehicle.Speed, value: 10}]
  - id: nobody_provides
    triggers: [{signal: Vehicle.Speed, above: 30}]
    actions: [{actuate: Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling, value: 50}]
  - id: out_of_range
    triggers: [{signal: Vehicle.Speed, above: 30}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.Intensity, value: 400}]
  - id: fine
    triggers: [{signal: Vehicle.Speed, above: 30}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, value: false}]
"""
    engine, _ = _engine()
    problems = {p.automation: p for p in engine.load_paths([write(tmp_path, "b.yaml", text)])}
    assert set(problems) == {"wrong_type", "wrong_unit", "sensor_target", "nobody_provides", "out_of_range"}
    assert (
        "'maybe' does not fit Vehicle.Cabin.Door.Row1.DriverSide.IsOpen (boolean)"
        in problems["wrong_type"].message
    )
    assert problems["wrong_type"].line == 3
    assert "Vehicle.Speed is in km/h, not 'mph'" in problems["wrong_unit"].message
    assert "Vehicle.Speed is a sensor; only actuators can be set" in problems["sensor_target"].message
    assert problems["sensor_target"].line == 10
    assert (
        "no provider serves actuator Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"
        in problems["nobody_provides"].message
    )
    assert problems["nobody_provides"].kind == "no_provider"
    assert "400" in problems["out_of_range"].message
    assert list(engine.automations) == ["fine"]


def test_a_bad_file_never_stops_the_others(tmp_path: Path) -> None:
    write(tmp_path, "1-broken.yaml", "automations:\n  - id: x\n    triggers: [\n")
    write(
        tmp_path,
        "2-unknown-key.yaml",
        GOOD.replace("    alias:", "    colour: red\n    alias:").replace("door_light", "other"),
    )
    write(tmp_path, "3-good.yaml", GOOD)
    write(tmp_path, "4-not-a-mapping.yaml", "- just\n- a list\n")
    engine, _ = _engine()
    problems = _messages(engine.load_paths([tmp_path]))
    assert any("1-broken.yaml:" in p and "not valid YAML" in p for p in problems), problems
    assert any("2-unknown-key.yaml:3: [other]" in p and "unknown key 'colour'" in p for p in problems), (
        problems
    )
    assert any("4-not-a-mapping.yaml:1:" in p for p in problems), problems
    assert list(engine.automations) == ["door_light"]


def test_schema_errors_name_the_field_and_line() -> None:
    doc = parse_yaml(
        GOOD.replace("value: true", "value: {nested: 1}").replace("to: true", "to: true\n        for: soon"),
        "c.yaml",
    )
    found = schema_problems(doc)
    assert found and all(p.automation == "door_light" for p in found)
    assert found[0].line in (7, 8, 9, 10)


def test_duplicate_keys_alias_bombs_and_huge_files_are_refused() -> None:
    import pytest

    from anycar.automations.source import SourceError

    with pytest.raises(SourceError, match="duplicate key 'id'"):
        parse_yaml("automations:\n  - id: a\n    id: b\n", "d.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(SourceError, match="YAML nodes"):
        parse_yaml(bomb, "bomb.yaml")
    with pytest.raises(SourceError, match="longer than"):
        parse_yaml("#" * 2_000_000, "huge.yaml")


def test_durations() -> None:
    assert seconds("1h30m") == 5400
    assert seconds("250ms") == 0.25
    assert seconds("00:05:00") == 300
    assert seconds("-10m") == -600
    assert seconds(12) == 12.0
    for bad in ("soon", "5 minutes", "", True):
        try:
            seconds(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was taken as a duration")


def test_owner_grant_is_checked_and_accessory_owners_never_reach_safety(tmp_path: Path) -> None:
    from anycar.policy import PolicyEngine
    from anycar.policy.privileges import Grant, Privilege

    broker = SignalBroker()
    FakeCar(
        broker,
        [
            "Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn",
            "Vehicle.Speed",
            "Vehicle.Body.Lights.Hazard.IsSignaling",
        ],
    )
    policy = PolicyEngine(broker)
    policy.grant(Grant("Fan1", "accessory", Privilege.ADMINISTER, actuates=("Vehicle",)))
    policy.grant_app("lights_app", Privilege.OPERATE, actuates=["Vehicle.Cabin.Light.**"])
    engine = Engine(broker, policy=policy)
    text = """\
automations:
  - id: accessory_hazard
    owner: Fan1
    triggers: [{signal: Vehicle.Speed, above: 100}]
    actions: [{actuate: Vehicle.Body.Lights.Hazard.IsSignaling, value: true}]
  - id: owner_hazard
    triggers: [{signal: Vehicle.Speed, above: 100}]
    actions: [{actuate: Vehicle.Body.Lights.Hazard.IsSignaling, value: true}]
  - id: app_light
    owner: lights_app
    triggers: [{signal: Vehicle.Speed, above: 100}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, value: true}]
  - id: stranger
    owner: nobody_app
    triggers: [{signal: Vehicle.Speed, above: 100}]
    actions: [{actuate: Vehicle.Cabin.Light.Spotlight.Row1.DriverSide.IsLightOn, value: true}]
"""
    problems = {p.automation: p.message for p in engine.load_paths([write(tmp_path, "o.yaml", text)])}
    assert "safety-critical and no accessory may write it" in problems["accessory_hazard"]
    assert "needs Administer" in problems["owner_hazard"]
    assert "has no grant" in problems["stranger"]
    assert list(engine.automations) == ["app_light"]


def test_an_integer_too_long_for_python_is_a_clear_refusal() -> None:
    import pytest

    from anycar.automations.source import SourceError

    with pytest.raises(SourceError, match="not valid YAML"):
        parse_yaml("automations: " + "9" * 5000, "big.yaml")
