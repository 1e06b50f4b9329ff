"""Simulator scenarios: the shipped weak-12v sags the Tesla's rail only while the DC-DC is out;
a bad scenario file is one clear error naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycar.errors import ConfigError
from anycar.sim.scenario import load_scenario
from anycar.sim.simulator import LV_VOLTAGE, Simulator


def test_weak_12v_sags_below_the_cooler_threshold_only_while_the_dcdc_is_out() -> None:
    sim = Simulator.for_profile("tesla_model3", scenario=load_scenario("weak-12v"))
    volts = {round(step.t): step.values[LV_VOLTAGE] for step in sim.run(90)}
    assert all(v < 11.8 for t, v in volts.items() if 10 <= t < 60)
    assert all(v > 12.4 for t, v in volts.items() if t >= 62)
    plain = Simulator.for_profile("tesla_model3")
    assert min(step.values[LV_VOLTAGE] for step in plain.run(90)) > 12.4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nbogus: 1\n", "unknown key(s) bogus"),
        ("low_voltage_soc_percent: 140\n", "low_voltage_soc_percent: a number from 0 to 100"),
        ("dcdc_outages: [{from_s: 9}]\n", "dcdc_outages.0: needs from_s and to_s"),
        ("dcdc_outages: [{from_s: 9, to_s: 3}]\n", "dcdc_outages.0: from_s must be >= 0 and before to_s"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_a_bad_scenario_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_scenario(str(path))
    assert str(path) in str(err.value)


def test_an_unknown_scenario_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="shipped: weak-12v"):
        load_scenario("nope")
