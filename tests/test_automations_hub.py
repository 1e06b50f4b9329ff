"""Automations in a real hub: the shipped examples against a brand profile's catalog, virtual
accessories fitted and removed (definitions re-checked each time), the policy's UX restrictions
on what an automation sends to a display, and the REST group."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from anycar.accessories import signing
from anycar.accessories.demo import fit_virtual_fleet
from anycar.automations.component import AutomationsComponent, examples_dir
from anycar.hub import Hub, HubConfig
from anycar.hub.assemble import HubParts, build_hub
from automations_support import until

DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"


def _hub(tmp_path: Path, brand: str = "kaiyun_pickman", sources: list[Path] | None = None) -> Hub:
    config = HubConfig()
    config.ports = {"grpc": None, "viss": None, "http": 0, "accessories": 0}
    parts = HubParts(
        brand=brand,
        db_path=tmp_path / "hub.sqlite3",
        dashboard=False,
        automations=sources if sources is not None else [examples_dir()],
    )
    return build_hub(config, parts)


def _parts(hub: Hub) -> tuple[Any, Any, Any]:
    vehicle = next(c for c in hub.components if c.name == "vehicle")
    cabin = next(c for c in hub.components if c.name == "cabin")
    auto = next(c for c in hub.components if isinstance(c, AutomationsComponent))
    return vehicle.adapter.provider, cabin, auto.engine


async def test_examples_wait_for_their_accessories_and_run_once_fitted(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    await hub.start()
    try:
        car, cabin, engine = _parts(hub)
        status = {k: s.state for k, s in engine.status.items()}
        # on a PICKMAN with nothing fitted: the display, camera and cooler examples are refused
        # (no provider), the SU7-style cabin light has no provider either
        assert status["pickman_arrived_at_stop"] == "refused"
        assert "Display1" in engine.status["pickman_arrived_at_stop"].problems[0].message
        assert status["cooler_shed_on_low_12v"] == "refused"
        key = signing.generate_key()
        accessories = await fit_virtual_fleet(cabin.manager, key, names=["dash_display"])
        await until(
            lambda: engine.status["pickman_arrived_at_stop"].state == "active", what="re-check on fit"
        )

        # parked, door opens after 5 s standing still: the display shows the stop message
        car.publish_many([("Vehicle.Speed", 0.0), (GEAR, 126), (DOOR, False)])
        await until(lambda: str(cabin.policy.driving_state) == "parked")
        await asyncio.sleep(5.2)
        car.publish(DOOR, True)
        trace = await until(
            lambda: (t := engine.last_run("pickman_arrived_at_stop")) and len(t["actions"]) >= 3 and t,
            what="the stop message",
        )
        assert [a["outcome"] for a in trace["actions"][:2]] == ["accepted", "accepted"]
        await until(
            lambda: (dp := hub.broker.get("Vehicle.Accessories.Display1.Text")) and "Arrived" in dp.value
        )
        # moving: the wait ends, and the display's own restrictions still apply to automations
        car.publish_many([(GEAR, 127), ("Vehicle.Speed", 30.0)])
        await until(
            lambda: engine.last_run("pickman_arrived_at_stop")["result"] == "done", what="wait for moving"
        )
        outcome, detail = await engine.acting.actuate(
            engine.automations["pickman_arrived_at_stop"],
            "Vehicle.Accessories.Display1.ContentType",
            "VIDEO",
            None,
            (),
        )
        assert outcome == "rejected" and "NO_VIDEO" in detail

        # the display is removed: its automation is refused again; a cooler fits in its place
        for acc in accessories:
            await acc.stop()
        await cabin.manager.remove("Display1", "test")
        await until(
            lambda: engine.status["pickman_arrived_at_stop"].state == "refused", what="re-check on removal"
        )
        accessories = await fit_virtual_fleet(cabin.manager, key, names=["cup_cooler"])
        await until(lambda: engine.status["cooler_shed_on_low_12v"].state == "active")
        for acc in accessories:
            await acc.stop()
    finally:
        await hub.stop()


async def test_rest_lists_adds_tests_traces_and_applies_scenes(tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "mine.yaml").write_text(
        """
automations:
  - id: camera_on_tailgate
    triggers: [{signal: Vehicle.Body.Trunk.Rear.IsOpen, to: true}]
    actions: [{actuate: Vehicle.Accessories.Camera1.IsRecording, value: true}]
"""
    )
    hub = _hub(tmp_path, sources=[folder])
    await hub.start()
    try:
        car, cabin, engine = _parts(hub)
        accessories = await fit_virtual_fleet(cabin.manager, signing.generate_key(), names=["cabin_camera"])
        await until(lambda: engine.status["camera_on_tailgate"].state == "active")
        base = hub.endpoints()["http"] + "/api/v1"
        async with httpx.AsyncClient(timeout=10) as http:
            listed = (await http.get(f"{base}/automations")).json()
            assert [a["id"] for a in listed["automations"]] == ["camera_on_tailgate"]
            assert listed["health"]["database"] == "ok"
            bad = await http.post(
                f"{base}/automations",
                content="automations:\n  - id: typo\n    triggers: [{signal: Vehicle.Body.Trunk.Rear.IsOpn, to: true}]\n"
                "    actions: [{notify: hi}]\n",
            )
            assert bad.status_code == 400
            problem = bad.json()["problems"][0]
            assert problem["line"] == 3 and problem["automation"] == "typo"
            assert "did you mean Vehicle.Body.Trunk.Rear.IsOpen" in problem["message"]
            good = await http.post(
                f"{base}/automations",
                json={
                    "scenes": [{"id": "rec", "targets": {"Vehicle.Accessories.Camera1.IsRecording": True}}],
                    "automations": [
                        {"id": "by_rest", "triggers": [{"every": 3600}], "actions": [{"scene": "rec"}]}
                    ],
                },
            )
            assert good.status_code == 200, good.text
            assert set(good.json()["added"]) == {"scene:rec", "automation:by_rest"}
            applied = (await http.post(f"{base}/scenes/rec/apply")).json()
            assert applied["outcomes"]["Vehicle.Accessories.Camera1.IsRecording"]["outcome"] == "accepted"
            dry = (
                await http.post(
                    f"{base}/automations/camera_on_tailgate/test",
                    json={"at": {"Vehicle.Body.Trunk.Rear.IsOpen": True}},
                )
            ).json()
            assert dry["dry_run"] and dry["actions"][0]["outcome"] == "would actuate"
            assert (await http.post(f"{base}/automations/camera_on_tailgate/disable")).json()[
                "enabled"
            ] is False
            car.publish("Vehicle.Body.Trunk.Rear.IsOpen", False)
            car.publish("Vehicle.Body.Trunk.Rear.IsOpen", True)
            await asyncio.sleep(0.2)
            assert engine.last_run("camera_on_tailgate") is None
            await http.post(f"{base}/automations/camera_on_tailgate/enable")
            started = (await http.post(f"{base}/automations/camera_on_tailgate/trigger")).json()
            assert started["started"]
            await until(lambda: engine.last_run("camera_on_tailgate"))
            traces = (await http.get(f"{base}/automations/camera_on_tailgate/traces")).json()["traces"]
            assert traces[0]["trigger"]["kind"] == "manual"
            snap = (
                await http.post(
                    f"{base}/scenes/snapshot",
                    json={"id": "snap", "patterns": ["Vehicle.Accessories.Camera1"], "save": True},
                )
            ).json()
            assert snap["saved"] and "Vehicle.Accessories.Camera1.IsRecording" in snap["scene"]["targets"]
            assert "snap" in [s["id"] for s in (await http.get(f"{base}/scenes")).json()["scenes"]]
            spec = (await http.get(hub.endpoints()["http"] + "/openapi.json")).json()
            assert "/api/v1/automations/{id}/traces" in spec["paths"]
            big = await http.post(f"{base}/automations", content=b"#" * 300_000)
            assert big.status_code == 400 and "over" in big.json()["error"]["message"]
        for acc in accessories:
            await acc.stop()
    finally:
        await hub.stop()
    # a restarted hub keeps what came over REST, and its enabled flags
    hub = _hub(tmp_path, sources=[folder])
    await hub.start()
    try:
        _, _, engine = _parts(hub)
        assert "by_rest" in engine.status and "snap" in engine.scenes
        assert engine.traces("camera_on_tailgate")  # traces from the earlier run, from SQLite
    finally:
        await hub.stop()


def test_hub_yaml_names_the_automations(tmp_path: Path) -> None:
    import pytest

    from anycar.errors import ConfigError

    config = tmp_path / "hub.yaml"
    config.write_text("automations: [defs, /abs/more.yaml]\n")
    assert HubConfig.load(config).automations == [tmp_path / "defs", Path("/abs/more.yaml")]
    config.write_text("automations: 3\n")
    with pytest.raises(ConfigError, match="'automations' must be a file or folder name"):
        HubConfig.load(config)
    assert HubConfig().automations is None
