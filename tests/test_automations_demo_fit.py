"""The shipped examples in the demo's own hub (simulator, virtual accessories as `anycar demo`
fits them per profile): on the PICKMAN the dash display is fitted, so "arrived at stop" is
active and runs in the simulated delivery round (driver parks, stands, opens the door), and the
cargo camera records at the first stop; on the Tesla Model 3 the cup cooler is fitted, so the
12 V shedding example is active (its trigger, a sagging rail, is not yet in the drive)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anycar.accessories.virtual import demo_fit
from anycar.automations.component import AutomationsComponent, examples_dir
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from automations_support import until


def _demo_hub(tmp_path: Path, brand: str, speedup: float = 1.0) -> Hub:
    """Built as `anycar demo --brand BRAND` builds it, on free ports."""
    config = HubConfig()
    config.ports = {"grpc": None, "viss": None, "http": 0, "accessories": 0}
    parts = HubParts(
        brand=brand,
        db_path=tmp_path / "hub.sqlite3",
        virtual_fleet=True,
        simulate=True,
        speedup=speedup,
        dashboard=False,
        automations=[examples_dir()],
    )
    return build_hub(config, parts)


def _engine(hub: Hub) -> Any:
    return next(c for c in hub.components if isinstance(c, AutomationsComponent)).engine


def test_the_demo_fit_names_known_accessories_and_puts_the_display_first_on_the_pickman() -> None:
    assert demo_fit("kaiyun_pickman")[0] == "dash_display"  # type: ignore[index]
    assert demo_fit("xiaomi_su7") is None  # not listed: every virtual accessory that fits


async def test_pickman_demo_shows_arrived_at_stop_and_records_the_cargo_bed(tmp_path: Path) -> None:
    hub = _demo_hub(tmp_path, "kaiyun_pickman", speedup=6.0)
    await hub.start()
    try:
        engine = _engine(hub)
        assert engine.status["pickman_arrived_at_stop"].state == "active"
        assert engine.status["cargo_camera_tailgate"].state == "active"
        camera = await until(
            lambda: engine.last_run("cargo_camera_tailgate"),
            timeout=60,
            what="the tailgate at the first stop",
        )
        assert camera["trigger"]["kind"] != "manual"
        assert camera["actions"][0]["outcome"] == "accepted"
        stop = await until(
            lambda: (t := engine.last_run("pickman_arrived_at_stop")) and len(t["actions"]) >= 2 and t,
            timeout=60,
            what="the door opening after standing at the stop",
        )
        assert stop["trigger"]["kind"] != "manual"
        assert [a["outcome"] for a in stop["actions"][:2]] == ["accepted", "accepted"]
        text = hub.broker.get("Vehicle.Accessories.Display1.Text")
        assert text is not None and "Arrived at the stop" in text.value
    finally:
        await hub.stop()


async def test_tesla_demo_fits_the_cup_cooler_for_the_shedding_example(tmp_path: Path) -> None:
    hub = _demo_hub(tmp_path, "tesla_model3")
    await hub.start()
    try:
        assert _engine(hub).status["cooler_shed_on_low_12v"].state == "active"
        assert hub.broker.provider_of("Vehicle.Accessories.Cooler1.IsOn") is not None
    finally:
        await hub.stop()
