"""An MQTT broker inside the project, for ``make demo`` on a machine with nothing installed.

It is rumqttd (Bytebeam's MQTT 5 / 3.1.1 broker, in Rust) as the ``iotcore`` wheel ships it:
``pip`` brings it, no system package, no service. It runs in a child process that ends with
ours. Both halves use it: the hub's uplink now, the fleet cloud's ingest later. For real
fleets use Mosquitto, EMQX or VerneMQ; nothing in the uplink depends on which.

Logins: given ``logins`` (user name -> password, e.g. the vehicles' minted credentials and the
fleet's own), both listeners accept those and nothing else (rumqttd's ``auth`` table; a wrong
or missing login is disconnected without a CONNACK). Topic rights: rumqttd 0.20 has no ACL, so
a vehicle that logs in may publish and subscribe on any topic, another vehicle's included; the
per-vehicle rights the fleet writes (``--broker-dir``) are Mosquitto's (docs/deployment.md).

Shared subscriptions: rumqttd keys a shared group by its share name alone, with one read cursor
for the group, where MQTT 5 (4.8.2) makes each (share name, filter) pair its own shared
subscription. Several filters under one share name (the fleet ingest's
``$share/anycar-ingest/anycar/v1/+/<channel>``) then read every filter's log at that one
cursor: the busiest filter is served, the others' messages are mostly skipped. The cause is
rumqttd's router, not this wrapper (it only writes the config). A share name per filter works
(tests/test_embedded_broker_shared.py); until the ingest subscribes so, the demo subscribes
plainly (``FleetConfig.group=""``, one ingest worker).
"""

from __future__ import annotations

import atexit
import json
import signal
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anycar.errors import ConfigError

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
    max_inflight_count = 4000
    dynamic_filters = true
{auth}
[v4.1]
name = "v4"
listen = "{host}:{port4}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 262144
    max_inflight_count = 4000
    dynamic_filters = true
{auth}"""


def auth_table(logins: Mapping[str, str] | None) -> str:
    """rumqttd's ``auth`` line for ``logins`` ("" for none: anyone may connect). TOML basic
    strings; a name or password with a control character is refused (it could end the line)."""
    if logins is None:
        return ""
    if not logins:
        raise ConfigError("embedded broker: logins given but empty (nobody could connect)")
    for text in (*logins.keys(), *logins.values()):
        if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise ConfigError("embedded broker: a login with an empty or control-character name or password")
    pairs = ", ".join(
        f"{json.dumps(user)} = {json.dumps(password)}" for user, password in sorted(logins.items())
    )
    return f"    auth = {{ {pairs} }}\n"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """MQTT 5 on ``port`` (0: a free one) and MQTT 3.1.1 on ``port4``, on loopback only."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        folder: Path | None = None,
        logins: Mapping[str, str] | None = None,
    ) -> None:
        """``logins``: the only user names and passwords accepted (None: any client, as before)."""
        self.host = host
        self.auth = auth_table(logins)
        self.port = port or _free_port(host)
        self.port4 = _free_port(host)
        self._folder = folder
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def allow(self, logins: Mapping[str, str]) -> None:
        """Accept only ``logins`` from the next start: for a caller that needs the broker's URL
        (its port) before it has minted the logins, as the fleet demo does."""
        if self._broker is not None:
            raise ConfigError("embedded broker: logins are set before it starts")
        self.auth = auth_table(logins)

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        from iotcore import Broker

        if self._folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="anycar-mqtt-")
            folder = Path(self._tmp.name)
        else:
            folder = self._folder
        conf = folder / "rumqttd.toml"
        conf.touch(mode=0o600)
        conf.chmod(0o600)  # made private before the passwords go in
        conf.write_text(CONFIG.format(host=self.host, port=self.port, port4=self.port4, auth=self.auth))
        # A SIGTERM to the whole process group (`timeout`, systemd's stop, `kill -- -PGID`) would
        # end iotcore's broker, a child process, before the hubs and the fleet cloud that use it,
        # each then logging its lost connection. The child inherits a blocked SIGTERM (and
        # SIGINT, which it never acted on) and ends when its stdin closes: ``stop()``, or this
        # process gone.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self._broker = Broker(config_path=str(conf)).start(timeout=timeout)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        atexit.register(self.stop)  # before iotcore's own (atexit runs the newest first)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            child = getattr(self._broker, "_process", None)  # iotcore's broker process
            if child is not None and child.stdin is not None:
                child.stdin.close()  # its way out, as it ignores SIGTERM (start)
            self._broker.stop()
            self._broker = None
            atexit.unregister(self.stop)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
