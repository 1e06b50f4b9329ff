"""The cabin dashboard in headless Chromium: its structure alone, then against a real hub
(simulator -> CAN -> brand adapter -> broker, virtual accessories, VISS and REST)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("browser_support")

import anycar.dashboard  # noqa: E402
from anycar.hub.cabin import CabinComponent  # noqa: E402
from browser_support import screenshot, serve  # noqa: E402
from hub_support import running_hub  # noqa: E402

pytest_plugins = ["browser_support"]

PANELS = [
    "panel-drive",
    "panel-chart",
    "panel-restrictions",
    "panel-mounts",
    "panel-accessories",
    "panel-events",
    "panel-explorer",
]
LIGHT = "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.IsLightOn"


def _own_errors(page: Any) -> list[str]:
    """Page errors other than the failed requests to an absent hub."""
    return [e for e in page.console_errors if "Failed to load resource" not in e and "WebSocket" not in e]


def test_dashboard_renders_its_structure_without_a_hub(page: Any) -> None:
    with serve(anycar.dashboard.app(viss_url="ws://127.0.0.1:9/viss")) as url:
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='true']", timeout=10_000)
        assert page.title().startswith("anycar")
        for panel in PANELS:
            assert page.locator(f"[data-testid='{panel}']").is_visible(), panel
        assert page.locator("#gears span").all_inner_texts() == ["P", "R", "N", "D"]
        assert page.locator("[data-testid='speed']").inner_text() == "—"
        page.wait_for_function("document.getElementById('connection').dataset.status !== 'live'")
        assert page.get_attribute("[data-testid='connection']", "data-status") in ("connecting", "offline")
        assert "no vehicle profile" in page.locator("#mount-list").inner_text().lower()
        page.wait_for_selector("#signal-tree .empty:has-text('not available')")
        assert page.locator("canvas#live-chart").bounding_box()["width"] > 300  # type: ignore[index]
        assert "ws://127.0.0.1:9/viss" in page.locator("#foot-endpoint").inner_text()
        assert _own_errors(page) == []


def test_dashboard_follows_the_hub_live_and_drives_an_accessory(page: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        url = hub.endpoints()["dashboard"]
        page.goto(url)
        page.wait_for_selector("[data-testid='connection'][data-status='live']", timeout=15_000)
        assert "Kaiyun PICKMAN" in page.locator("[data-testid='vehicle-name']").inner_text()

        # Live values arrive from the simulator, through CAN and the mapping, and change.
        page.wait_for_function("document.getElementById('soc').textContent !== '—'", timeout=15_000)
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.add(page.locator("[data-testid='speed']").inner_text())
            time.sleep(0.2)
        assert len(seen) >= 3, seen
        assert re.fullmatch(r"\d+\.\d", page.locator("[data-testid='soc']").inner_text())
        assert page.locator("#gears span.active").count() == 1
        assert page.evaluate("window.anycar.chart.count()") > 5

        # Mount points with what the hub fitted, and their power against the budget.
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        fitted = cabin.accessories()["accessories"]
        assert fitted, "the virtual fleet found no mount"
        page.wait_for_selector("#mount-list li.mount", timeout=10_000)
        assert page.locator("#mount-list li.mount").count() == len(cabin.plan.mounts)
        assert page.locator("li.mount.free").count() == len(cabin.plan.mounts) - len(fitted)

        # Switching the light on in the page changes its signal in the broker.
        light = next(a for a in fitted if a["trait"] == "light")
        switch = next(c["path"] for c in light["controls"] if c["kind"] == "switch")
        before = hub.broker.get(switch)
        page.wait_for_selector(f"[data-path='{switch}'] .switch span", timeout=10_000)
        page.locator(f"[data-path='{switch}'] .switch span").click()
        wanted = not (before.value if before is not None and before.value is not None else False)
        deadline = time.monotonic() + 15  # a click, a VISS set, the accessory, back: generous on a loaded box
        while time.monotonic() < deadline:
            now = hub.broker.get(switch)
            if now is not None and now.value is wanted:
                break
            time.sleep(0.05)
        assert hub.broker.get(switch).value is wanted  # type: ignore[union-attr]

        # The explorer finds a signal, shows its metadata and its live value.
        page.fill("[data-testid='signal-search']", "Vehicle.Speed")
        page.click(".leaf[data-path='Vehicle.Speed']")
        page.wait_for_function(
            "/\\d/.test(document.querySelector(\"[data-testid='signal-value']\").textContent)", timeout=10_000
        )
        assert "float" in page.locator("[data-testid='signal-detail']").inner_text()
        page.wait_for_selector("#driving-state[data-state='moving']", timeout=15_000)
        screenshot(page, "dashboard_live_demo_hub")  # while the hub is still live
        assert _own_errors(page) == []


def test_dashboard_fits_a_phone_screen(page: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(hub.endpoints()["dashboard"])
        page.wait_for_selector("#mount-list li.mount", timeout=15_000)
        page.wait_for_selector("#acc-grid .acc", timeout=10_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_viss_client_reads_every_data_shape_the_spec_allows(page: Any) -> None:
    with serve(anycar.dashboard.app()) as url:
        page.goto(url + "/")
        result = page.evaluate(
            """async () => {
            const m = await import('./viss.js');
            return {
              one: m.dataItems({path: 'Vehicle.Speed', dp: {value: '12.5', ts: 't1'}}),
              many: m.dataItems([{path: 'A', dp: {value: '1', ts: 't'}}, {path: 'B', dp: [{value: '2', ts: 'a'}, {value: '3', ts: 'b'}]}]),
              none: m.dataItems(undefined),
              values: [m.parseValue('true', 'boolean'), m.parseValue('false'), m.parseValue('12.5', 'float'),
                       m.parseValue('007', 'string'), m.parseValue('[1,2]', 'uint8[]'), m.parseValue('ON')],
              text: [m.toText(true), m.toText(21.5), m.toText('#00FF88'), m.toText([1, 2])],
              err: new m.VissError({number: '404', reason: 'invalid_path', message: 'x'}).message,
            };
        }"""
        )
    assert result["one"] == [{"path": "Vehicle.Speed", "value": "12.5", "ts": "t1"}]
    assert result["many"] == [{"path": "A", "value": "1", "ts": "t"}, {"path": "B", "value": "3", "ts": "b"}]
    assert result["none"] == []
    assert result["values"] == [True, False, 12.5, "007", [1, 2], "ON"]
    assert result["text"] == ["true", "21.5", "#00FF88", "[1,2]"]
    assert result["err"] == "404 invalid_path: x"
