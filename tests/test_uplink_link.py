"""The link's own rules: backoff with jitter, QoS 0 live data, message expiry during an outage
(dropped, counted and reported), the last will when a hub dies, and the AsyncAPI document."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from anycar.uplink import UplinkComponent
from anycar.uplink.link import Link
from anycar.wire import Channel, schema
from uplink_support import FAST, Listener, Mosquitto, bare_hub, campaign_file, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[1]


def test_backoff_grows_to_its_cap_with_jitter(tmp_path: Path) -> None:
    cfg = uplink_config(tmp_path, "V-1")
    cfg.reconnect_min_s, cfg.reconnect_max_s = 0.5, 8.0
    link = Link.__new__(Link)
    link.cfg = cfg
    delays = {n: [link.backoff(n) for _ in range(200)] for n in (1, 2, 3, 5, 20)}
    assert all(0.25 <= d <= 0.5 for d in delays[1]) and all(0.5 <= d <= 1.0 for d in delays[2])
    assert all(4.0 <= d <= 8.0 for d in delays[5] + delays[20])  # capped
    assert len({round(d, 6) for d in delays[20]}) > 50  # jittered: vehicles do not come back together


async def test_qos0_live_campaign_and_expiry_during_an_outage(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    vehicle = unique_vehicle()
    live = FAST.replace("id: fast", "id: live").replace("priority: 5", "priority: 7\nqos: 0\nttl_s: 0.5")
    cfg = uplink_config(tmp_path, vehicle, broker.port, campaigns=[campaign_file(tmp_path, live)])
    hub = bare_hub()
    provider = hub.broker.register_provider("car", ["Vehicle.Speed"])
    uplink = UplinkComponent(cfg)
    hub.add_component(uplink)
    try:
        async with Listener(vehicle, broker.port, persistent=True) as fleet:
            await hub.start()
            provider.publish("Vehicle.Speed", 5.0)
            await fleet.wait_for(lambda: len(fleet.of("telemetry")) >= 2)  # QoS 0 arrives
            broker.stop()
            for i in range(30):
                provider.publish("Vehicle.Speed", 10.0 + i)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)  # older than ttl_s by now
            broker.start()
            await fleet.wait_for(lambda: uplink.spool is not None and uplink.spool.depth == 0)
            assert uplink.spool is not None and uplink.spool.counters.get("dropped_expired", 0) > 0
            await fleet.wait_for(
                lambda: any(e["type"] == "uplink_dropped" for m in fleet.of("events") for e in m["events"])
            )
            report = next(e for m in fleet.of("events") for e in m["events"] if e["type"] == "uplink_dropped")
            assert report["data"]["expired"] > 0 and report["data"]["total"] >= report["data"]["new"]
    finally:
        await hub.stop()
        broker.stop()


async def test_the_last_will_says_offline_when_a_hub_dies(tmp_path: Path) -> None:
    vehicle = unique_vehicle()
    campaign = campaign_file(tmp_path, FAST)
    code = "from anycar.bench.uplink import vehicle_main; vehicle_main()"
    args = ["drive", "1883", vehicle, str(tmp_path / "spool.sqlite3"), str(campaign)]
    async with Listener(vehicle) as fleet:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await fleet.wait_for(lambda: any(m["state"] == "online" for m in fleet.of("state")), 30)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed_at = time.time()
            await fleet.wait_for(lambda: fleet.of("state")[-1]["state"] == "offline", 30)
            offline = fleet.of("state")[-1]
            assert offline["ts"] < killed_at  # the will was made at connect time, sent by the broker
        finally:
            if proc.poll() is None:
                proc.kill()


def test_asyncapi_document_matches_the_wire() -> None:
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {f"anycar/v1/{{vehicle}}/{c.value}" for c in Channel}
    for op in doc["operations"].values():
        channel = doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]
        assert (op["action"] == "send") == Channel(channel["address"].rsplit("/", 1)[-1]).uplink
    files = set(schema.schema_files())
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["schema"]["$ref"]
        assert (ROOT / "docs" / ref).resolve().is_file() and Path(ref).name in files
