"""Real brokers and a real fleet-side listener for the uplink's tests.

``Mosquitto`` starts a second /usr/sbin/mosquitto on a free port with a config of the test's
own (so a test may stop and restart it, or require TLS or passwords); ``Listener`` is what the
fleet cloud will do: subscribe to a vehicle's uplink topics, decode every message with the
wire's schemas and drop duplicates by (vehicle, boot, seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from anycar.bench.wire_subscriber import WireSubscriber
from anycar.hub import Hub, HubConfig
from anycar.uplink import UplinkComponent, UplinkConfig
from anycar.wire import Channel, topic

MOSQUITTO = Path("/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_vehicle(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Mosquitto:
    """A broker of the test's own; ``extra`` lines go into its listener's config."""

    def __init__(self, folder: Path, *, extra: str = "", port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        conf = self.folder / f"mosquitto-{self.port}.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.folder}/",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read the test's folder
        if "allow_anonymous" not in self.extra and "password_file" not in self.extra:
            lines.append("allow_anonymous true")
        conf.write_text("\n".join([*lines, self.extra]) + "\n")
        log = open(self.folder / f"mosquitto-{self.port}.log", "ab")  # noqa: SIM115 - the broker keeps it
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.folder / f'mosquitto-{self.port}.log').read_text()}"
                )
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Listener(WireSubscriber):
    """One vehicle's uplink, every decoded message kept once; ``wait_for`` polls a condition."""

    def __init__(self, vehicle: str, port: int = 1883, *, persistent: bool = False, **client: Any) -> None:
        super().__init__(port, vehicle, persistent=persistent, **client)

    async def wait_for(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; have {len(self.messages)} messages, bad {self.bad[:3]}")
            await asyncio.sleep(0.05)


async def send_down(port: int, vehicle: str, channel: Channel, payload: bytes) -> None:
    """Publish as the fleet would: one message on a vehicle's downlink topic."""
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic(vehicle, channel), payload, qos=1)


def bare_hub() -> Hub:
    """A hub with no API servers (the uplink's tests need only the broker)."""
    config = HubConfig()
    config.ports = dict.fromkeys(config.ports)
    return Hub(config)


def uplink_config(tmp: Path, vehicle: str, port: int = 1883, **changes: Any) -> UplinkConfig:
    cfg = UplinkConfig.from_url(f"mqtt://127.0.0.1:{port}", vehicle)
    cfg.spool_path = tmp / "uplink.sqlite3"
    cfg.reconnect_min_s = 0.05
    cfg.reconnect_max_s = 0.5
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def campaign_file(folder: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


FAST = """
id: fast
version: 1
priority: 5
events: true
signals:
  - {path: Vehicle.Speed}
  - {path: Vehicle.Powertrain.TractionBattery.StateOfCharge.Current}
collect:
  periodic: {period_ms: 50}
batch: {max_values: 40, max_delay_ms: 200}
"""


# FAST with dead-bands of 0: it goes quiet once the values stop changing, so a test can wait for
# "every sequence number up to the last one arrived" without chasing a moving last one.
QUIET = FAST.replace("{path: Vehicle.Speed}", "{path: Vehicle.Speed, deadband: 0}").replace(
    "{path: Vehicle.Powertrain.TractionBattery.StateOfCharge.Current}",
    "{path: Vehicle.Powertrain.TractionBattery.StateOfCharge.Current, deadband: 0}",
)


def hub_with(cfg: UplinkConfig, paths: list[str], **uplink: Any) -> tuple[Hub, Any, UplinkComponent]:
    """A bare hub with a provider of ``paths`` (the car) and the uplink plugged in, not started."""
    hub = bare_hub()
    provider = hub.broker.register_provider("car", paths)
    component = UplinkComponent(cfg, **uplink)
    hub.add_component(component)
    return hub, provider, component


def mqtt_login(port: int, user: str | None, password: str | None, version: int) -> str:
    """Connect with paho and say what the broker did: ``connected`` or ``disconnected``."""
    seen: list[str] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=version)
    if user is not None:
        client.username_pw_set(user, password)

    def on_connect(*args: object) -> None:
        seen.append("connected" if not args[3].is_failure else f"refused {args[3]}")  # type: ignore[attr-defined]
        done.set()

    def on_disconnect(*args: object) -> None:
        seen.append("disconnected")
        done.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert done.wait(15), "the broker neither answered nor hung up"
    finally:
        client.disconnect()
        client.loop_stop()
    return seen[0]
