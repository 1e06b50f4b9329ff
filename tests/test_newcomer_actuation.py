"""In the demo an actuation makes the real round trip: the CAN adapter's vss2dbc request frame on
the virtual bus, a simulated ECU applying it, and the new value back through dbc2vss."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub_support import running_hub


def _set(http: str, path: str, value: Any) -> httpx.Response:
    return httpx.post(f"{http}/{path.replace('.', '/')}", json={"value": value}, timeout=10)


def _wait_for(hub: Any, path: str, want: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    dp = None
    while time.monotonic() < deadline:
        dp = hub.broker.get(path)
        if dp is not None and dp.value == want:
            return dp
        time.sleep(0.1)
    pytest.fail(f"{path} never became {want!r} (last {dp})")


@pytest.mark.parametrize(
    ("brand", "path", "value"),
    [
        ("xiaomi_su7", "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 19.5),  # a simulator input
        ("tesla_model3", "Vehicle.Body.Lights.Hazard.IsSignaling", True),  # held by the body ECU
    ],
)
def test_actuation_goes_through_the_bus_and_comes_back(
    tmp_path: Path, brand: str, path: str, value: Any
) -> None:
    with running_hub(tmp_path, brand=brand, speedup=4.0) as hub:
        http = hub.endpoints()["http"].rstrip("/")
        r = _set(http, path, value)
        assert r.status_code == 200, r.text
        dp = _wait_for(hub, path, value)
        assert hub.broker.provider_of(path) == f"can:{brand}"  # it came back from the CAN adapter
        sim = next(c for c in hub.components if c.name == "simulator")
        assert sim.ecus.applied >= 1  # type: ignore[attr-defined]
        assert dp.value == value


def test_a_value_the_car_refuses_does_not_come_back(tmp_path: Path) -> None:
    with running_hub(tmp_path, brand="xiaomi_su7", speedup=4.0) as hub:
        http = hub.endpoints()["http"].rstrip("/")
        path = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
        _set(http, path, 29.5)
        _wait_for(hub, path, 29.5)
        r = _set(http, path, 40.0)  # the simulated HVAC takes 15..30 °C
        sim = next(c for c in hub.components if c.name == "simulator")
        deadline = time.monotonic() + 10
        while not sim.ecus.refused and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.1)
        if r.status_code == 200:  # the DBC took it: the ECU refused it
            assert sim.ecus.refused  # type: ignore[attr-defined]
        time.sleep(1.0)
        assert hub.broker.get(path).value == 29.5
