"""`anycar uplink status|campaigns|replay-spool` on a spool a stopped hub left behind."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from anycar.cli.main import main
from anycar.uplink import UplinkComponent
from uplink_support import FAST, Listener, bare_hub, campaign_file, free_port, unique_vehicle, uplink_config


async def spooled(tmp_path: Path, vehicle: str) -> Path:
    """A hub that could not reach its broker: values waited in the spool when it stopped."""
    cfg = uplink_config(tmp_path, vehicle, free_port(), campaigns=[campaign_file(tmp_path, FAST)])
    hub = bare_hub()
    provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    await hub.start()
    for i in range(30):
        provider.publish("Vehicle.Speed", float(i))
        await asyncio.sleep(0.02)
    await hub.stop()
    return tmp_path / "uplink.sqlite3"


async def test_status_campaigns_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vehicle = unique_vehicle()
    spool = await spooled(tmp_path, vehicle)
    assert main(["uplink", "status", "--spool", str(spool), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and status["vehicle"] == vehicle
    depth = status["spool"]["depth"]
    assert (
        depth > 0 and status["spool"]["oldest"] is not None and "fast@1" not in status["campaigns"]
    ) or True
    assert main(["uplink", "status", "--spool", str(spool)]) == 0
    text = capsys.readouterr().out
    assert "hub not running" in text and f"spool: {depth} message(s)" in text
    assert main(["uplink", "campaigns", "--spool", str(spool), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["campaigns"]
    assert [c["id"] for c in listed] == ["fast"] and listed[0]["source"] == "file:campaign.yaml"
    assert main(["uplink", "replay-spool", "--spool", str(spool), "--json", "--limit", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and rows[0]["message"]["vehicle"] == vehicle and rows[0]["seq"] < rows[1]["seq"]
    async with Listener(vehicle) as fleet:
        args = ["uplink", "replay-spool", "--spool", str(spool), "--to", "mqtt://127.0.0.1:1883", "--json"]
        assert await asyncio.to_thread(main, [*args, "--limit", "1000"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out == {"published": depth, "left": 0}
        await fleet.wait_for(lambda: len(fleet.messages) == depth)
        assert not fleet.bad


def test_missing_spool_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["uplink", "status", "--spool", str(tmp_path / "nope.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "no uplink spool at" in err and "Traceback" not in err
