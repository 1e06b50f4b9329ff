"""`anycar fleet vehicle add` against a real Mosquitto started here with the password file and ACL
the fleet writes: a vehicle logs in with its minted password, publishes only under its own
topics and reads only its own commands; a vehicle publishing under another's topic is refused
by the broker; a wrong password is refused; revoking cuts the vehicle off (after SIGHUP)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt
import pytest

from anycar.fleet.db import make_engine
from anycar.fleet.ingest import IngestWorker
from anycar.fleet.mosquitto import INGEST_USER, hash_password
from anycar.fleet.mqttin import MqttError, MqttIn
from anycar.fleet.store import Store
from anycar.wire import Channel, Origin, encode, messages, topic
from fleet_support import eventually, vin
from uplink_support import Mosquitto


def _fleet(db: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "anycar.cli.main", "fleet", *args, "--db", f"sqlite:///{db}", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def _client(port: int, user: str, password: str | None, **kw) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"{user}-{uuid.uuid4().hex[:6]}",
        **kw,
    )


def _state(vehicle: str) -> bytes:
    return encode(messages.state(Origin(vehicle, "0123456789abcdef"), True, ts=1_767_225_600.0))


def test_hash_format_is_mosquittos() -> None:
    line = hash_password("secret")
    assert line.startswith("$7$101$") and len(line.split("$")) == 5


async def test_minted_credentials_acl_and_revocation(tmp_path: Path) -> None:
    db, broker_dir = tmp_path / "fleet.sqlite3", tmp_path / "broker"
    a = _fleet(
        db,
        "vehicle",
        "add",
        vin(1),
        "--brand",
        "kaiyun_pickman",
        "--vehicle-id",
        "PM-A",
        "--broker-dir",
        str(broker_dir),
    )
    b = _fleet(
        db,
        "vehicle",
        "add",
        vin(2),
        "--brand",
        "kaiyun_pickman",
        "--vehicle-id",
        "PM-B",
        "--broker-dir",
        str(broker_dir),
    )
    assert a["username"] == "PM-A" and a["password"] and (broker_dir / "acl").is_file()
    assert oct((broker_dir / "passwords").stat().st_mode & 0o777) == "0o600"
    broker = Mosquitto(
        tmp_path,
        extra=(
            f"allow_anonymous false\npassword_file {broker_dir / 'passwords'}\nacl_file {broker_dir / 'acl'}"
        ),
    ).start()
    engine = make_engine(f"sqlite:///{db}")
    worker = IngestWorker(
        Store(engine),
        port=broker.port,
        username=INGEST_USER,
        password=(broker_dir / "ingest.secret").read_text().strip(),
        session_s=60,
    )
    try:
        await worker.start()
        async with _client(broker.port, "PM-A", a["password"]) as car:
            await car.publish(topic("PM-A", Channel.STATE), _state("PM-A"), qos=1)
            # under B's topic, with B's id in the payload: the broker refuses it (ACL)
            await car.publish(topic("PM-B", Channel.STATE), _state("PM-B"), qos=1)
            # it may subscribe to B's commands, but Mosquitto delivers only what its ACL lets it read
            await car.subscribe(topic("PM-A", Channel.COMMANDS), qos=1)
            await car.subscribe(topic("PM-B", Channel.COMMANDS), qos=1)
            secret = (broker_dir / "ingest.secret").read_text().strip()
            async with _client(broker.port, INGEST_USER, secret) as fleet:
                await fleet.publish(topic("PM-B", Channel.COMMANDS), b"for B", qos=1)
                await fleet.publish(topic("PM-A", Channel.COMMANDS), b"for A", qos=1)
            got = await asyncio.wait_for(anext(aiter(car.messages)), 10)
            assert (str(got.topic), got.payload) == (topic("PM-A", Channel.COMMANDS), b"for A")
            await eventually(lambda: worker.stats.received >= 1, what="PM-A's state")
            await asyncio.sleep(1.0)  # time for a wrongly routed message to show up
        assert worker.stats.received == 1 and worker.stats.stored == 1
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker.port, "PM-B", "wrong password"):
                pass
        # the ingest's own client (anycar.fleet.mqttin) is refused too, and says why
        with pytest.raises(MqttError, match=r"bad user name or password|not authorized"):
            await MqttIn(
                "127.0.0.1", broker.port, "t-wrong", username=INGEST_USER, password="wrong"
            ).connect()
        async with _client(broker.port, "PM-B", b["password"]):
            pass  # B's own password works
        _fleet(db, "vehicle", "revoke", "PM-A", "--broker-dir", str(broker_dir))
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGHUP)
        await asyncio.sleep(0.5)

        async def refused() -> bool:
            try:
                async with _client(broker.port, "PM-A", a["password"]):
                    return False
            except aiomqtt.MqttError:
                return True

        for _ in range(40):
            if await refused():
                break
            await asyncio.sleep(0.25)
        assert await refused()
    finally:
        await worker.stop()
        engine.dispose()
        broker.stop()
