"""The dashboard's Automations panel in headless Chromium: without a hub it says so; against a
real hub (Xiaomi SU7, virtual accessories, the shipped examples) it lists the automations, says
why the cooler one is refused, and draws a run of the welcome scene as a timeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

import anycar.dashboard  # noqa: E402
from automations_support import hub_in_thread  # noqa: E402
from browser_support import own_errors, serve  # noqa: E402

pytest_plugins = ["browser_support"]


def test_panel_without_a_hub_says_automations_are_not_running(page: Any) -> None:
    with serve(anycar.dashboard.app(viss_url="ws://127.0.0.1:9/viss")) as url:
        page.goto(url + "/")
        page.wait_for_selector("[data-testid='panel-automations'][data-ready='true']", timeout=10_000)
        assert "not running" in page.locator("#automation-list").inner_text()
        assert own_errors(page) == []


def test_panel_lists_automations_and_draws_a_run_as_a_timeline(page: Any, tmp_path: Path) -> None:
    with hub_in_thread(tmp_path, dashboard=True) as hub:
        base = hub.endpoints()["http"]
        run = httpx.post(f"{base}/api/v1/automations/welcome_on_unlock/trigger", timeout=10).json()
        assert run["started"]
        page.goto(base + "/")
        page.wait_for_selector("#automation-list li.automation[data-id='welcome_on_unlock']", timeout=15_000)
        listed = page.locator("#automation-list").inner_text()
        assert "Welcome scene when the car is unlocked" in listed
        assert "Cargo camera records while the tailgate is open" in listed
        refused = page.locator("#automation-list li.refused[data-id='cooler_shed_on_low_12v']")
        assert "no provider" in refused.inner_text() or "unknown" in refused.inner_text()
        assert "active" in page.locator("[data-testid='automation-health']").inner_text()

        page.click("#automation-list li.automation[data-id='welcome_on_unlock']")
        page.wait_for_selector("[data-testid='automation-timeline'] rect.bar", timeout=15_000)
        page.wait_for_function(
            "document.querySelectorAll(\"[data-testid='automation-timeline'] rect.bar\").length >= 2",
            timeout=15_000,
        )
        outcomes = page.eval_on_selector_all(
            "[data-testid='automation-timeline'] rect.bar", "bars => bars.map(b => b.dataset.outcome)"
        )
        assert outcomes[0] in ("accepted", "partly") and outcomes[-1] == "done"
        labels = page.eval_on_selector_all(
            "[data-testid='automation-timeline'] text.label", "texts => texts.map(t => t.textContent)"
        )
        assert labels[0] == "apply scene welcome" and labels[1].startswith("notify")
        assert "triggered by hand" in page.locator("#automation-trace").inner_text()
        assert own_errors(page) == []
