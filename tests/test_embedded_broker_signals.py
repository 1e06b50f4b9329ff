"""A SIGTERM to the whole process group (``timeout``, systemd's stop) reaches every process at
once; the embedded broker (a child process of iotcore's) must outlive it, so that the hubs and
the fleet cloud that use it stop on a broker that is still there and the demo quits without a
screen of lost connections. Its own ``stop()`` still ends it at once."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from anycar.embedded_broker import EmbeddedBroker
from uplink_support import mqtt_login

pytestmark = pytest.mark.timeout(60)


def _broker_children() -> list[int]:
    """This process's children that run iotcore's broker (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"iotcore._serve" in cmdline:
            found.append(int(entry.name))
    return found


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_broker_outlives_a_sigterm_to_its_group_and_stops_when_told(tmp_path: Path) -> None:
    broker = EmbeddedBroker(folder=tmp_path).start()
    try:
        children = _broker_children()
        assert len(children) == 1, children
        for sig in (signal.SIGTERM, signal.SIGINT):  # what `timeout` and a terminal's Ctrl-C send
            os.kill(children[0], sig)
        time.sleep(1.0)
        assert _accepts(broker.port)  # before: SIGTERM ended the broker here
        assert mqtt_login(broker.port, None, None, mqtt.MQTTv5) == "connected"
        assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, set())  # ours
    finally:
        started = time.monotonic()
        broker.stop()
    assert time.monotonic() - started < 3.0
    assert not _accepts(broker.port) and _broker_children() == []
