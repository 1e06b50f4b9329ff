"""Issue 9.4: no background task dies silently. A crash is logged, the task restarted with
back-off, and ``/api/v1/info`` says which tasks run, how often they restarted and why."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import httpx
import pytest

from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from anycar.hub.vehicle import VehicleComponent
from anycar.supervisor import Supervisor
from helpers_accessories import until

VEHICLE = ("Vehicle.Speed", "Vehicle.Powertrain.Transmission.SelectedGear")


async def _info(url: str) -> dict:
    async with httpx.AsyncClient() as client:
        return (await client.get(url + "/api/v1/info", timeout=10)).json()


async def test_a_crashed_policy_engine_is_restarted_and_shown_in_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = HubConfig()
    config.ports = {"grpc": None, "viss": None, "http": 0}
    hub = build_hub(config, HubParts(brand="xiaomi_su7", db_path=tmp_path / "hub.sqlite3", dashboard=False))
    async with hub:
        cabin = next(c for c in hub.components if isinstance(c, CabinComponent))
        policy = cabin.policy
        assert policy is not None
        url = hub.endpoints()["http"]
        names = {t["name"]: t for t in (await _info(url))["health"]["tasks"]}
        assert names["policy-engine"]["state"] == "running"
        assert "accessory-heartbeats" in names and "trust-watch" in names
        watched = {t["name"]: t for t in (await _info(url))["health"]["watched"]}
        assert watched["http-server"]["state"] == "running"
        vehicle = next(c for c in hub.components if isinstance(c, VehicleComponent))
        assert vehicle.adapter is not None
        car = vehicle.adapter.provider  # publish as the CAN adapter does when frames come in
        real_update = policy.power.update
        calls = {"n": 0}

        def broken_once(**kw: object) -> object:  # a bug that hits one batch
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("injected fault in the power monitor")
            return real_update(**kw)  # type: ignore[arg-type]

        policy.power.update = broken_once  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="anycar.supervisor"):
            car.publish_many([(VEHICLE[1], 127), (VEHICLE[0], 60.0)])
            await until(lambda: calls["n"] >= 2 and str(policy.driving_state) == "moving", timeout=10)
        assert any("injected fault" in r.getMessage() or r.exc_info for r in caplog.records)
        health = (await _info(url))["health"]
        task = next(t for t in health["tasks"] if t["name"] == "policy-engine")
        assert task["restarts"] >= 1 and task["state"] == "running"
        assert "injected fault in the power monitor" in task["last_error"]
        # the restarted engine still drives the safety function
        car.publish_many([(VEHICLE[0], 0.0), (VEHICLE[1], 126)])
        await until(lambda: str(policy.driving_state) == "parked", timeout=10)


async def test_back_off_doubles_and_a_one_shot_task_is_reported_failed() -> None:
    sup = Supervisor(backoff_initial_s=0.01, backoff_max_s=0.04)
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def always_fails() -> None:
        starts.append(loop.time())
        raise ValueError(f"fault {len(starts)}")

    flaky = sup.spawn("flaky", always_fails)
    await until(lambda: len(starts) >= 5, timeout=10)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.009 and gaps[-1] >= 0.035  # 0.01, 0.02, 0.04, 0.04: capped doubling
    once = sup.spawn("once", always_fails, restart=False)
    await until(lambda: sup.task("once") is not None and sup.task("once").state == "failed")  # type: ignore[union-attr]
    health = sup.health()
    assert health["ok"] is False
    rows = {t["name"]: t for t in health["tasks"]}
    assert rows["flaky"]["restarts"] >= 4 and rows["flaky"]["last_error"].startswith("ValueError: fault")
    assert rows["once"]["restarts"] == 0 and rows["once"]["failures"] == 1
    await flaky.stop()
    await once.stop()
    assert sup.health()["tasks"] == []


async def test_a_watched_task_that_crashes_shows_in_health() -> None:
    sup = Supervisor()

    async def dies() -> None:
        raise KeyError("gone")

    task = asyncio.get_running_loop().create_task(dies())
    sup.watch("history", task)
    with pytest.raises(KeyError):
        await task
    await asyncio.sleep(0)
    (entry,) = sup.health()["watched"]
    assert entry["name"] == "history" and entry["state"] == "failed" and "gone" in entry["last_error"]
