"""The demo's live status line reads the broker the simulator feeds."""

from __future__ import annotations

import io

from rich.console import Console

from anycar.broker import SignalBroker
from anycar.sim.runner import BrokerSink
from anycar.sim.simulator import Simulator
from anycar.sim.status import DemoStatus, FittedAccessory, driving_state, live_status


def _render(status: DemoStatus) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(status)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_status_shows_live_values_accessories_and_url() -> None:
    broker = SignalBroker()
    sim = Simulator.for_profile("kaiyun_pickman", dt=1.0)
    sink = BrokerSink(broker, sim)
    url = "http://127.0.0.1:8080/"
    fitted = [FittedAccessory("cabin light", "roof-1", 6), FittedAccessory("fan", "dash-left", 9.5)]
    status = DemoStatus(broker, url, vehicle="Kaiyun PICKMAN", accessories=lambda: fitted)
    before = _render(status)
    assert "—" in before and url in before and "cabin light @ roof-1 6 W" in before
    for step in sim.run(60):
        sink(step)
    text = _render(status)
    speed = broker.get("Vehicle.Speed").value  # type: ignore[union-attr]
    soc = broker.get("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current").value  # type: ignore[union-attr]
    assert f"{speed:5.1f} km/h" in text
    assert f"{soc:.1f} %" in text
    assert "(16 W)" in text and "Kaiyun PICKMAN" in text
    assert any(word in text for word in ("moving", "idling", "parked"))


def test_driving_state() -> None:
    assert driving_state(12.0, 127, "ON") == "moving"
    assert driving_state(0.0, 127, "ON") == "idling"
    assert driving_state(0.0, 126, "ON") == "parked"
    assert driving_state(None, None, "OFF") == "parked"


def test_live_status_redraws_in_place() -> None:
    broker = SignalBroker()
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True)
    with live_status(DemoStatus(broker, "http://x/"), console=console, refresh_per_second=20):
        pass
    assert "http://x/" in out.getvalue()
