"""The uplink's settings: `anycar hub --uplink URL --vehicle-id ID`, the `uplink:` section of
hub.yaml, and one clear line for each mistake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from anycar.errors import ConfigError
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.uplink import UplinkComponent, UplinkConfig
from hub_support import FREE_PORTS
from uplink_support import unique_vehicle


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"vehicle_id": "x"}, r"uplink.broker: needed"),
        ({"broker": "http://x:1"}, r"must look like mqtt://HOST:PORT"),
        ({"broker": "mqtt://h:99999"}, r"bad port"),
        ({"broker": "mqtt://h:1", "vehicle_id": "a/b"}, r"vehicle id 'a/b'"),
        ({"broker": "mqtt://h:1", "colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"broker": "mqtt://h:1", "tls": {"cert": "c.pem"}}, r"tls.cert: file .* does not exist"),
        ({"broker": "mqtt://h:1", "spool": {"quota_mb": -1}}, r"spool.quota_mb must be a number"),
        ({"broker": "mqtt://h:1", "protocol": 6}, r"protocol: 5 or 3.1.1"),
        (
            {"broker": "mqtt://h:1", "commands": {"actuates": "Vehicle.*"}},
            r"commands.actuates must be a list",
        ),
        ({"broker": "mqtt://h:1", "campaigns": ["missing.yaml"]}, r"campaigns\[0\]: file .* does not exist"),
        ({"broker": "mqtt://h:1", "format": "xml"}, r"format: cbor or json"),
    ],
)
def test_bad_uplink_sections_say_which_setting(tmp_path: Path, section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        HubConfig.from_dict({"uplink": section}, source="hub.yaml", base=tmp_path)
    assert str(err.value).startswith("hub.yaml: ") and "\n" not in str(err.value)


def test_a_section_and_the_url_form(tmp_path: Path) -> None:
    (tmp_path / "fleet.pub").write_text("A" * 43 + "=\n")
    cfg = HubConfig.from_dict(
        {
            "uplink": {
                "broker": "mqtts://fleet.example.com",
                "vehicle_id": "PM-7",
                "fleet_keys": ["fleet.pub"],
            }
        },
        base=tmp_path,
    ).uplink
    assert cfg is not None and cfg.port == 8883 and cfg.tls_on and cfg.client_id == "anycar-PM-7"
    assert cfg.fleet_keys == ["A" * 43 + "="]
    cfg.rename("PM-8")
    assert cfg.vehicle_id == "PM-8" and cfg.client_id == "anycar-PM-8"
    url = UplinkConfig.from_url("mqtt://user:pw@127.0.0.1:1884", None)
    assert (url.username, url.password, url.port) == ("user", "pw", 1884) and url.vehicle_id.startswith(
        "hub-"
    )
    with pytest.raises(ConfigError, match="fleet_keys"):
        UplinkComponent(_with_key("not base64!"))


def _with_key(key: str) -> UplinkConfig:
    cfg = UplinkConfig.from_url("mqtt://h:1", "V")
    cfg.fleet_keys = [key]
    return cfg


def test_assembly_puts_the_uplink_last() -> None:
    config = HubConfig()
    config.uplink = UplinkConfig.from_url("mqtt://127.0.0.1:1883", "V-1")
    hub = build_hub(config, HubParts())
    assert [c.name for c in hub.components][-1] == "uplink"


def test_anycar_hub_with_uplink_flag(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "hub",
            "--uplink",
            "mqtt://127.0.0.1:1883",
            "--vehicle-id",
            vehicle,
            *FREE_PORTS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANYCAR_HUB_DB": str(tmp_path / "hub.sqlite3")},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("anycar hub ready "), proc.stderr.read() if proc.stderr else ""
        assert json.loads(line[len("anycar hub ready ") :])["uplink"] == "mqtt://127.0.0.1:1883"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert (tmp_path / "uplink.sqlite3").is_file()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "anycar.cli.main",
            "hub",
            "--uplink",
            "ftp://x",
            *("--grpc-port", "0", "--viss-port", "0", "--http-port", "0", "--accessory-port", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 2
        and "must look like mqtt://HOST:PORT" in bad.stderr
        and "Traceback" not in bad.stderr
    )


async def test_a_bad_campaign_file_stops_the_start_cleanly(tmp_path: Path) -> None:
    from uplink_support import bare_hub, campaign_file, uplink_config

    bad = campaign_file(
        tmp_path, "id: x\nversion: 1\nsignals: [{path: Vehicle.Speed}]\ncollect: {periodic: {period_ms: 1}}\n"
    )
    hub = bare_hub()
    uplink = UplinkComponent(uplink_config(tmp_path, unique_vehicle(), campaigns=[bad]))
    hub.add_component(uplink)
    with pytest.raises(ConfigError, match=r"campaign.yaml: collect"):
        await hub.start()
    assert uplink.spool is None  # closed again
