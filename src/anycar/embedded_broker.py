"""An MQTT broker inside the project, for ``make demo`` on a machine with nothing installed.

It is rumqttd (Bytebeam's MQTT 5 / 3.1.1 broker, in Rust) as the ``iotcore`` wheel ships it:
``pip`` brings it, no system package, no service. It runs in a child process that ends with
ours. Both halves use it: the hub's uplink now, the fleet cloud's ingest later. For real
fleets use Mosquitto, EMQX or VerneMQ; nothing in the uplink depends on which.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

CONFIG = """# rumqttd configuration written by anycar.embedded_broker
id = 0

[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v5.1]
name = "v5"
listen = "{host}:{port}"
next_connection_delay_ms = 1
    [v5.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 262144
    max_inflight_count = 1000
    dynamic_filters = true

[v4.1]
name = "v4"
listen = "{host}:{port4}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 262144
    max_inflight_count = 1000
    dynamic_filters = true
"""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """MQTT 5 on ``port`` (0: a free one) and MQTT 3.1.1 on ``port4``, on loopback only."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", folder: Path | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.port4 = _free_port(host)
        self._folder = folder
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        from iotcore import Broker

        if self._folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="anycar-mqtt-")
            folder = Path(self._tmp.name)
        else:
            folder = self._folder
        conf = folder / "rumqttd.toml"
        conf.write_text(CONFIG.format(host=self.host, port=self.port, port4=self.port4))
        self._broker = Broker(config_path=str(conf)).start(timeout=timeout)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
