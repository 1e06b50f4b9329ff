"""The embedded broker (rumqttd from the iotcore wheel) with logins: the minted ones connect (the
uplink through them: tests/test_uplink_embedded.py), any other login or none is disconnected on
both listeners (MQTT 5 and 3.1.1);
the single-car demo's hub gets a login of its own. What rumqttd cannot do, and the docs say:
topic rights per vehicle (no ACL), shown here as the documented fact."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt
import pytest

from anycar.cli.demo import _demo_uplink
from anycar.embedded_broker import EmbeddedBroker, auth_table
from anycar.errors import ConfigError
from anycar.hub.assemble import HubParts
from uplink_support import Listener, mqtt_login, unique_vehicle

pytestmark = pytest.mark.timeout(90)


def test_only_the_given_logins_connect_on_both_listeners(tmp_path: Path) -> None:
    logins = {"PM-0001": "minted-secret-1", "fleet-ingest": "minted-secret-2"}
    with EmbeddedBroker(folder=tmp_path, logins=logins) as broker:
        assert (tmp_path / "rumqttd.toml").stat().st_mode & 0o077 == 0  # it holds the passwords
        for version, port in ((mqtt.MQTTv5, broker.port), (mqtt.MQTTv311, broker.port4)):
            assert mqtt_login(port, "PM-0001", "minted-secret-1", version) == "connected"
            assert mqtt_login(port, "fleet-ingest", "minted-secret-2", version) == "connected"
            assert mqtt_login(port, "PM-0001", "guessed", version) == "disconnected"
            assert (
                mqtt_login(port, "PM-0001", "minted-secret-2", version) == "disconnected"
            )  # another's password
            assert mqtt_login(port, "nobody", "minted-secret-1", version) == "disconnected"
            assert mqtt_login(port, None, None, version) == "disconnected"
    with EmbeddedBroker() as anyone:
        assert mqtt_login(anyone.port, None, None, mqtt.MQTTv5) == "connected"  # no logins: as before


def test_bad_logins_are_one_clear_error() -> None:
    for logins in ({}, {"PM-1": ""}, {"": "x"}, {"PM-1": "a\nb"}, {"PM\x00": "x"}):
        with pytest.raises(ConfigError, match="embedded broker"):
            auth_table(logins)
    assert auth_table({'a"b': "p\\q"}) == '    auth = { "a\\"b" = "p\\\\q" }\n'  # TOML-escaped


async def test_a_logged_in_vehicle_may_still_use_another_vehicles_topic(tmp_path: Path) -> None:
    """rumqttd has no ACL: what docs/deployment.md says, shown (the uplink with logins is in
    tests/test_uplink_embedded.py)."""
    vehicle, other = unique_vehicle(), unique_vehicle()
    with EmbeddedBroker(folder=tmp_path, logins={vehicle: "v-secret", "fleet": "f-secret"}) as broker:
        async with Listener(other, broker.port, username="fleet", password="f-secret") as other_fleet:
            await asyncio.sleep(0.3)  # subscribed
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username=vehicle,
                password="v-secret",
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as car:
                await car.publish(f"anycar/v1/{other}/telemetry", b"not yours", qos=1)
            await other_fleet.wait_for(lambda: bool(other_fleet.bad) or bool(other_fleet.messages), 10)


def test_the_single_car_demo_mints_its_hubs_login(tmp_path: Path) -> None:
    parts = HubParts()
    broker = _demo_uplink(argparse.Namespace(uplink="embedded", brand="xiaomi_su7"), parts, tmp_path)
    try:
        assert parts.uplink is not None and parts.uplink.username == "demo-xiaomi_su7"
        assert parts.uplink.password and len(parts.uplink.password) >= 24
        assert (
            mqtt_login(broker.port, parts.uplink.username, parts.uplink.password, mqtt.MQTTv5) == "connected"
        )
        assert mqtt_login(broker.port, None, None, mqtt.MQTTv5) == "disconnected"
    finally:
        broker.stop()


def test_logins_given_after_the_port_is_known_apply_from_the_start(tmp_path: Path) -> None:
    """The fleet demo needs the broker's URL before it mints the vehicles' logins: ``allow``."""
    broker = EmbeddedBroker(folder=tmp_path)
    broker.allow({"PM-0002": "minted-late"})
    with broker:
        assert mqtt_login(broker.port, "PM-0002", "minted-late", mqtt.MQTTv5) == "connected"
        assert mqtt_login(broker.port, None, None, mqtt.MQTTv5) == "disconnected"
        with pytest.raises(ConfigError, match="before it starts"):
            broker.allow({"PM-0003": "too-late"})
