"""The five shipped examples run in the demo: each brand's hub is built as `anycar demo --brand`
builds it (the simulator, the virtual accessories it fits per profile, the brand's scenario), on
free ports, and each example is triggered by the simulated drive itself - the PICKMAN's delivery
stop (door, tailgate), the Tesla's sagging 12 V rail (scenario weak-12v), the SU7 driver leaving
and coming back (door, lock). Checked through REST traces and in the dashboard's Automations
panel in Chromium."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("browser_support")

from anycar.accessories.virtual import demo_fit  # noqa: E402
from anycar.automations.place import is_between  # noqa: E402
from anycar.sim.scenario import demo_scenario  # noqa: E402
from automations_support import hub_in_thread  # noqa: E402
from browser_support import own_errors  # noqa: E402

pytest_plugins = ["browser_support"]

# brand -> (speedup, the examples its simulated drive triggers)
DEMOS: dict[str, tuple[float, list[str]]] = {
    "kaiyun_pickman": (6.0, ["pickman_arrived_at_stop", "cargo_camera_tailgate"]),
    "tesla_model3": (1.0, ["cooler_shed_on_low_12v"]),
    # the SU7's WLTC lap is 30 min: the driver leaves (door) and comes back (unlock) at its end
    "xiaomi_su7": (60.0, ["door_open_after_dark", "welcome_on_unlock"]),
}
OK_STEPS = {"accepted", "partly", "done", "running"}


def test_the_demo_fit_puts_the_display_first_on_the_pickman() -> None:
    assert (demo_fit("kaiyun_pickman") or [])[0] == "dash_display"
    assert demo_fit("xiaomi_su7") is None  # not listed: every virtual accessory that fits
    assert demo_scenario("tesla_model3") == "weak-12v" and demo_scenario("kaiyun_pickman") is None


def _dark_at(hub: Any, deadline: float) -> bool:
    """Whether it is night now (wall clock) at the simulated car's position."""
    while True:
        location = (
            hub.broker.get("Vehicle.CurrentLocation.Latitude"),
            hub.broker.get("Vehicle.CurrentLocation.Longitude"),
        )
        if location[0] is not None and location[1] is not None:
            break
        if time.monotonic() > deadline:
            raise AssertionError("the simulated car has no position")
        time.sleep(0.2)
    return is_between(float(location[0].value), float(location[1].value), time.time(), "sunset", "sunrise")


def _run_of(base: str, automation: str, *, acted: bool) -> dict[str, Any] | None:
    """The latest run the simulated drive set off (not one triggered by hand); with ``acted``,
    the latest that got past its conditions (the PICKMAN's first door opening at a stop comes
    before it has stood 5 s, so that run stops at the condition, as it should)."""
    traces = httpx.get(f"{base}/api/v1/automations/{automation}/traces", timeout=10).json()["traces"]
    drive = [t for t in traces if t["trigger"]["kind"] != "manual"]
    return next((t for t in drive if t["actions"] or not acted), None)


def _succeeded(trace: dict[str, Any]) -> bool:
    return trace["result"] in ("running", "done") and all(a["outcome"] in OK_STEPS for a in trace["actions"])


def test_all_five_examples_run_in_the_demo_and_show_in_the_panel(page: Any, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        hubs = {
            brand: stack.enter_context(
                hub_in_thread(
                    tmp_path / brand,
                    brand=brand,
                    dashboard=True,
                    simulate=True,
                    speedup=speedup,
                    scenario=demo_scenario(brand),
                )
            )
            for brand, (speedup, _) in DEMOS.items()
        }
        runs: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 100
        waiting = {(brand, a) for brand, (_, names) in DEMOS.items() for a in names}
        # after dark at the simulated car's position (wall clock) the light must come on; by day
        # the run must stop at the sun condition
        dark = _dark_at(hubs["xiaomi_su7"], deadline)
        while waiting and time.monotonic() < deadline:
            for brand, automation in sorted(waiting):
                acted = automation != "door_open_after_dark" or dark
                trace = _run_of(hubs[brand].endpoints()["http"], automation, acted=acted)
                if trace is not None:
                    runs[automation] = trace
                    waiting.discard((brand, automation))
            time.sleep(0.5)
        assert not waiting, f"never ran in the demo: {sorted(waiting)}"

        for automation, trace in runs.items():
            if automation == "door_open_after_dark" and not dark:
                # daytime at the simulated car: the sun condition held the light back, and says so
                assert trace["result"] == "conditions_not_met", trace
                continue
            if automation == "door_open_after_dark":
                # the driver opens the door after switching off: the policy sheds comfort
                # accessories at ignition off, so the light's step is refused with that reason
                # (a known gap, see docs/automations.md "Shipped examples")
                assert trace["result"] == "failed" and "shed" in trace["reason"], trace
                assert trace["actions"][0]["action"].startswith("actuate Vehicle.Cabin.Light.Spotlight")
                continue
            assert _succeeded(trace), (automation, trace["result"], trace.get("reason"), trace["actions"])
        assert runs["cooler_shed_on_low_12v"]["trigger"]["id"] == "low"
        assert any(
            a["action"].startswith("actuate Vehicle.Accessories.Cooler1.IsOn") and a["outcome"] == "accepted"
            for a in runs["cooler_shed_on_low_12v"]["actions"]
        ), runs["cooler_shed_on_low_12v"]["actions"]
        assert runs["pickman_arrived_at_stop"]["actions"][1]["outcome"] == "accepted"
        text = hubs["kaiyun_pickman"].broker.get("Vehicle.Accessories.Display1.Text")
        assert text is not None and "Arrived at the stop" in text.value

        for brand, (_, names) in DEMOS.items():
            page.goto(hubs[brand].endpoints()["http"] + "/")
            for automation in names:
                item = f"#automation-list li.automation[data-id='{automation}']"
                page.wait_for_selector(item, timeout=15_000)
                page.wait_for_function(
                    f"!document.querySelector(\"{item} .chip.result\").textContent.includes('never run')",
                    timeout=15_000,
                )
            assert own_errors(page) == []
