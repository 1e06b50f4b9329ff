"""Fitted accessories' draw is a load on the simulated 12 V rail: what each draws follows its
manifest and what it does (a cooler on draws its typical watts, off or shed its standby), and a
simulated car with that load sags lower when its DC-DC converter is out, so the "cooler shed on
low 12 V" the policy and the shipped automation act on is partly the cooler's own doing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.hub.simulation import SimulationComponent
from anycar.sim.scenario import load_scenario
from anycar.sim.simulator import LV_VOLTAGE, Simulator
from helpers_accessories import fit, make, running_hub, until

IGN = "Vehicle.LowVoltageSystemState"
VOLT = "Vehicle.LowVoltageBattery.CurrentVoltage"


async def test_each_accessory_draws_what_its_manifest_says_for_what_it_does(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3", profile="tesla_model3") as hub:
        car: Any = hub.feed()
        car.publish_many([(IGN, "ON"), (VOLT, 12.8)])
        cooler = make("cup_cooler", hub, "C-1")  # standby 1 W, typical 35 W, peak 60 W
        lamp = make("cabin_light", hub, "L-1")  # standby 0.3 W, typical 4 W
        charger = make("qi_charger", hub, "Q-1")  # reports PowerDelivered in W
        rec_c = await fit(hub, cooler, "console_socket_12v")
        rec_l = await fit(hub, lamp, "console_usb_c_1")
        rec_q = await fit(hub, charger, "console_usb_c_2")
        draws = hub.manager.draws_w()
        assert draws["Cooler1"] == 1.0 and draws["Light1"] == 0.3  # off: standby
        assert (await hub.broker.actuate(rec_c.paths["IsOn"], True)).ok
        assert (await hub.broker.actuate(rec_l.paths["IsLightOn"], True)).ok
        await until(lambda: hub.manager.draws_w()["Cooler1"] == 35.0)
        assert hub.manager.draws_w()["Light1"] == 4.0
        # the charger reports what it delivers (7.5 W to the phone on its pad): that wins
        await until(lambda: hub.manager.draws_w()[rec_q.instance] == 7.5)
        assert (await hub.broker.actuate(rec_q.paths["IsChargingEnabled"], False)).ok
        await until(lambda: hub.manager.draws_w()[rec_q.instance] == 0.5)  # reports 0 W: its standby
        car.publish(VOLT, 11.2)  # critical: comfort is shed, and a shed cooler draws its standby
        await until(lambda: cooler.power == "shed")
        assert hub.manager.draws_w()["Cooler1"] == 1.0
        await cooler.stop()
        await until(lambda: hub.manager.fitted["Cooler1"].session is None)
        assert hub.manager.draws_w()["Cooler1"] == 1.0  # not heard from: standby at most we know
        for acc in (lamp, charger):
            await acc.stop()


def _sag(load_w: float) -> tuple[float, float]:
    """The lowest rail voltage and the seconds below 11.8 V in the weak-12v outage of a Model 3's
    first lap, with ``load_w`` of accessories on the rail."""
    sim = Simulator.for_profile("tesla_model3", scenario=load_scenario("weak-12v"))
    sim.accessory_load = lambda: load_w
    low, below = 99.0, 0.0
    for step in sim.run(70.0):
        volts = step.values[LV_VOLTAGE]
        low = min(low, volts)
        below += sim.dt if volts < 11.8 else 0.0
    return low, below


def test_the_accessories_load_sags_the_simulated_rail_lower() -> None:
    bare_low, bare_below = _sag(0.0)
    cooler_low, cooler_below = _sag(35.0)
    assert cooler_low < bare_low - 0.05  # 35 W more from a 40 % battery: the rail sags further
    assert cooler_below >= bare_below
    assert _sag(35.0) == (cooler_low, cooler_below)  # a constant load keeps the run repeatable


async def test_a_simulated_hub_puts_its_fitted_accessories_on_the_rail(tmp_path: Path) -> None:
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports, 0)
    parts = HubParts(
        brand="tesla_model3",
        db_path=tmp_path / "hub.sqlite3",
        virtual_fleet=True,
        simulate=True,
        speedup=5,
        dashboard=False,
    )
    async with build_hub(config, parts) as hub:
        sim = next(c for c in hub.components if isinstance(c, SimulationComponent)).sim
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        assert cabin.manager is not None
        await until(lambda: "Cooler1" in cabin.manager.fitted and cabin.manager.fitted["Cooler1"].session)

        await until(lambda: sim.t > 1.0)
        before = sim.accessory_w  # the accessories' share of the rail's load at the last step
        assert before > 0 and before == pytest.approx(cabin.accessory_draw_w(), abs=1.0)
        assert sim.rail.load_w >= before
        result = await hub.broker.actuate("Vehicle.Accessories.Cooler1.IsOn", True)
        assert result.ok, result.reason
        await until(
            lambda: sim.accessory_w - before > 30.0
        )  # the cooler's 35 W typical, less its 1 W standby
        assert sim.rail.load_w >= sim.accessory_w
        await hub.broker.actuate("Vehicle.Accessories.Cooler1.IsOn", False)
        await until(lambda: abs(sim.accessory_w - before) < 1.0)
