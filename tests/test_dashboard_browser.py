"""The cabin dashboard in headless Chromium: its structure alone, then against a stand-in hub
(real broker, catalog and simulator; example REST answers; the VISS subset the page uses)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

pytest.register_assert_rewrite("browser_support")

import anycar.dashboard  # noqa: E402
from browser_support import serve  # noqa: E402
from dashboard_standin import StandInHub  # noqa: E402

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


def test_dashboard_follows_the_hub_live_and_drives_an_accessory(page: Any) -> None:
    # Seed 1 drives from 8 s to 71 s of simulated time: 2 s to 17 s of wall time at 4x.
    hub = StandInHub(speedup=4.0, seed=1)
    with serve(hub.app()) as url:
        page.goto(url + "/")
        page.wait_for_selector("[data-testid='connection'][data-status='live']", timeout=10_000)
        assert "Kaiyun PICKMAN" in page.locator("[data-testid='vehicle-name']").inner_text()

        # Live values arrive and change while the simulated pickup drives.
        page.wait_for_function("document.getElementById('soc').textContent !== '—'", timeout=10_000)
        seen: set[str] = set()
        deadline = time.monotonic() + 8
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.add(page.locator("[data-testid='speed']").inner_text())
            time.sleep(0.2)
        assert len(seen) >= 3, seen
        assert re.fullmatch(r"\d+\.\d", page.locator("[data-testid='soc']").inner_text())
        assert re.fullmatch(r"1[0-4]\.\d\d", page.locator("[data-testid='lv-voltage']").inner_text())
        assert page.locator("#gears span.active").count() == 1
        assert page.evaluate("window.anycar.chart.count()") > 5

        # Mount points with what is fitted, and their power against the budget.
        mounts = page.locator("#mount-list li.mount")
        assert mounts.count() == 5
        assert "22.0 / 60 W" in page.locator("li[data-mount='bed-rail']").inner_text()
        assert page.locator("li.mount.free").count() == 1
        assert "41.5 / 120 W" in page.locator("#rails").inner_text()

        # Switching the light on in the page changes its signal in the broker.
        assert hub.broker.get(LIGHT).value is False  # type: ignore[union-attr]
        page.locator(f"[data-path='{LIGHT}'] .switch span").click()
        deadline = time.monotonic() + 5
        while hub.broker.get(LIGHT).value is not True and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
        assert hub.broker.get(LIGHT).value is True  # type: ignore[union-attr]
        assert (LIGHT, True) in hub.actuations

        # A colour goes over VISS as a string, as VSS wants it.
        page.locator("[data-path='Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Color'] input").fill(
            "#00ff88"
        )
        page.wait_for_function(
            "window.anycar && document.querySelector(\"[data-path$='DriverSide.Color'] input\").value === '#00ff88'"
        )
        deadline = time.monotonic() + 5
        color = "Vehicle.Cabin.Light.AmbientLight.Row1.DriverSide.Color"
        while hub.broker.get(color).value != "#00FF88" and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
        assert hub.broker.get(color).value == "#00FF88"  # type: ignore[union-attr]

        # The driving state and what it restricts.
        page.wait_for_selector("#driving-state[data-state='moving']", timeout=10_000)
        assert page.locator("#restriction-list li[data-restriction='NO_VIDEO']").count() == 1

        # The explorer finds a signal, shows its metadata and its live value.
        page.fill("[data-testid='signal-search']", "Trunk.Rear.IsOpen")
        page.click(".leaf[data-path='Vehicle.Body.Trunk.Rear.IsOpen']")
        page.wait_for_function(
            "['true','false'].includes(document.querySelector(\"[data-testid='signal-value']\").textContent)"
        )
        assert "boolean" in page.locator("[data-testid='signal-detail']").inner_text()
        assert _own_errors(page) == []


def test_dashboard_fits_a_phone_screen(page: Any) -> None:
    hub = StandInHub(speedup=4.0)
    with serve(hub.app()) as url:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(url + "/")
        page.wait_for_selector("#mount-list li.mount", timeout=10_000)
        page.wait_for_selector("#acc-grid .acc")
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
