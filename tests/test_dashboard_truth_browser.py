"""The dashboard tells the truth, in headless Chromium against a real hub: the chart starts from the
hub's recorded history with a lane and an axis per series (flat lines for constant values), the
clock runs, controls show the accessory's value or "unknown", power follows the accessory's state,
a refused setting reverts with a reason in plain words, and when the hub stops everything shown
turns grey and says it is not known."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.hub.cabin import CabinComponent  # noqa: E402
from browser_support import screenshot  # noqa: E402
from hub_support import running_hub  # noqa: E402

pytest_plugins = ["browser_support"]
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LV = "Vehicle.LowVoltageBattery.CurrentVoltage"

LANES_DRAWN = """() => {
  const chart = window.anycar.chart, c = chart.canvas, g = c.getContext('2d');
  const dpr = window.devicePixelRatio || 1, w = c.clientWidth, h = c.clientHeight;
  const lanes = chart.series.length, lh = (h - 6 - 20 - 8 * (lanes - 1)) / lanes;
  const hex = (s) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));
  return chart.series.map((s, i) => {
    const [r, gg, b] = hex(s.color), top = 6 + i * (lh + 8);
    const x = Math.round((w - 10 - 4) * dpr);
    const px = g.getImageData(x, Math.round(top * dpr), 1, Math.round(lh * dpr)).data;
    for (let k = 0; k < px.length; k += 4)
      if (Math.abs(px[k] - r) < 40 && Math.abs(px[k + 1] - gg) < 40 && Math.abs(px[k + 2] - b) < 40) return true;
    return false;
  });
}"""


def wait_js(page: Any, fn: str, timeout: float = 15.0) -> Any:
    """Poll a JS function (the page's CSP allows no eval of expressions) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(fn)
        if got or time.monotonic() > deadline:
            assert got, f"never true: {fn}"
            return got
        time.sleep(0.1)


def _cabin(hub: Any) -> CabinComponent:
    return next(c for c in hub.components if isinstance(c, CabinComponent))


def test_chart_history_clock_and_stale_when_the_hub_stops(page: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path, brand="kaiyun_pickman", speedup=4.0) as hub:
        deadline = time.monotonic() + 20
        while hub.broker.get(SOC) is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(3.0)  # let the hub record a few seconds of history before the page opens
        opened_ms = time.time() * 1000
        known = [hub.broker.get(p) is not None for p in (SPEED, SOC, LV)]  # what the hub had before
        page.goto(hub.endpoints()["dashboard"])
        page.wait_for_selector("body[data-history='loaded']", timeout=15_000)
        firsts = page.evaluate(
            "window.anycar.chart.series.map((s) => s.points.length ? s.points[0][0] : null)"
        )
        assert known[0] and known[1]
        for had, first in zip(known, firsts, strict=True):
            if had:  # it came from the hub's recorded history, not from values that arrived live
                assert first is not None and first < opened_ms - 1000, (firsts, opened_ms)
        # every series is drawn, constant ones as a flat line, in its own lane with its own range
        wait_js(page, f"() => ({LANES_DRAWN})().every(Boolean)")
        spans = page.evaluate(
            "window.anycar.chart.series.map((s) => { const r = window.anycar.chart.range(s); return r[1] - r[0]; })"
        )
        assert spans[1] >= 2.0 and spans[2] >= 1.0  # a small SoC drop is not drawn as a cliff
        wait_js(page, "() => /^\\d\\d:\\d\\d$/.test(document.getElementById('sim-clock').textContent)")
        assert page.locator("#car-body").get_attribute("data-body") == "pickup"
        page.wait_for_selector("#acc-grid .acc .badge.running", timeout=10_000)
        # the explorer: only signals with a value, their units, the whole path in a tooltip
        page.check("[data-testid='signal-has-value']")
        page.wait_for_selector("#signal-tree .leaf[data-path='Vehicle.Speed']", timeout=10_000)
        leaves = page.locator("#signal-tree .leaf").evaluate_all("els => els.map((e) => e.dataset.path)")
        assert "Vehicle.ADAS.ABS.IsEnabled" not in leaves
        assert all(hub.broker.get(p) is not None for p in leaves), leaves
        assert "km/h" in (page.get_attribute(".leaf[data-path='Vehicle.Speed']", "title") or "")
        page.click(".leaf[data-path='Vehicle.Speed']")
        wait_js(
            page,
            "() => / km\\/h$/.test(document.querySelector(\"[data-testid='signal-value']\").textContent)",
        )
        screenshot(page, "dashboard_truth_live")
    # the hub has stopped: the page says so and greys out what is no longer live
    page.wait_for_selector("body[data-stale='true']", timeout=15_000)
    assert page.locator("[data-testid='connection']").get_attribute("data-status") == "offline"
    assert "values from" in page.locator("[data-testid='connection']").inner_text()
    badges = page.locator("#acc-grid .acc .badge").all_inner_texts()
    assert badges and set(badges) == {"unknown"}
    assert page.locator("#driving-state").inner_text() == "unknown"
    assert page.evaluate("getComputedStyle(document.querySelector('.drive-body')).opacity") == "0.45"
    screenshot(page, "dashboard_truth_stale")


def test_controls_power_and_a_refused_setting(page: Any, tmp_path: Path) -> None:
    with running_hub(tmp_path, brand="xiaomi_su7", speedup=4.0) as hub:
        page.goto(hub.endpoints()["dashboard"])
        page.wait_for_selector("body[data-ready='true']", timeout=15_000)
        cabin = _cabin(hub)
        light = next(a for a in cabin.accessories()["accessories"] if a["trait"] == "light")
        by_kind = {c["kind"]: c["path"] for c in light["controls"]}
        card = page.locator(f"#acc-grid article[data-accessory='{light['id']}']")
        card.wait_for(timeout=15_000)
        # the light reported its state: its controls show it, not 50 % and black
        wait_js(
            page,
            f"() => document.querySelector(\"[data-path='{by_kind['range']}'] output\").textContent === '60%'",
        )
        assert card.locator(f"[data-path='{by_kind['color']}'] .color-text").inner_text() == "#FFE4B5"
        assert card.locator(f"[data-path='{by_kind['color']}'] input").input_value() == "#ffe4b5"
        assert card.locator(f"[data-path='{by_kind['switch']}'] .switch-state").inner_text() == "off"
        # every number a control shows is the broker's value, or it says unknown: the page
        # hears of a value a moment after the broker has it (an accessory that reports after the
        # card was drawn), so each control is given until the deadline to agree, never forever
        for ctl in page.locator(".control[data-kind='range']").all():
            path = ctl.get_attribute("data-path")
            assert path is not None
            deadline = time.monotonic() + 15
            while True:
                dp = hub.broker.get(path)
                shown = ctl.locator("output").inner_text()
                if shown == "unknown":
                    agrees = dp is None or dp.value is None
                else:
                    agrees = dp is not None and shown.startswith(str(dp.value))
                if agrees or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert agrees, (path, shown, dp)
        # power follows the light: off draws standby, on draws its typical watts
        power = card.locator("[data-role='power']")
        watts = f"() => document.querySelector(\"article[data-accessory='{light['id']}'] [data-role='power']\").textContent"
        wait_js(page, f"() => ({watts})().startsWith('now 0.3 W')")
        card.locator(f"[data-path='{by_kind['switch']}'] .switch span").click()
        wait_js(page, f"() => ({watts})().startsWith('now 4.0 W')")
        assert "peak 6.0 W" in power.inner_text()

        # VIDEO on the display in the driver's view while moving: refused, reverted, said plainly
        display = next(a for a in cabin.accessories()["accessories"] if a["trait"] == "display")
        select = next(c["path"] for c in display["controls"] if c["kind"] == "select")
        page.wait_for_selector("#driving-state[data-state='moving']", timeout=30_000)
        ctl = page.locator(f".control[data-path='{select}']")
        before = ctl.locator("select").input_value()
        ctl.locator("select").select_option("VIDEO")
        note = ctl.locator(".control-note")
        wait_js(
            page,
            f"() => document.querySelector(\".control[data-path='{select}'] .control-note\").textContent.length > 0",
        )
        text = note.inner_text()
        assert text.startswith("Not now:") and "video" in text and "moving" in text, text
        assert "invalid_value" not in text and "400" not in text
        assert ctl.locator("select").input_value() == before != "VIDEO"
        assert hub.broker.get(select) is None or hub.broker.get(select).value != "VIDEO"  # type: ignore[union-attr]
        # people read names, not ids
        mounts = page.locator("#mount-list").inner_text()
        assert (
            "dash_mount_left" not in mounts
            and "1.DriverSide" not in mounts
            and "row 1, driver side" in mounts
        )
        assert "dash_mount" not in page.locator("#acc-grid").inner_text()
        screenshot(page, "dashboard_truth_controls")
