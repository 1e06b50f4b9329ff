"""The composition root: config files, components, REST groups, and `anycar hub` as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from anycar.api.auth import Action
from anycar.api.rest import RouteGroup, require
from anycar.errors import ConfigError
from anycar.hub import Hub, HubConfig
from apis_support import Keys, hub_config, running_hub
from hub_support import FREE_PORTS

BIN = Path(sys.executable).parent


def test_config_from_yaml_and_toml(tmp_path) -> None:
    keys = Keys(tmp_path)
    (tmp_path / "hub.yaml").write_text(
        f"host: 0.0.0.0\nports: {{grpc: 0, viss: null}}\ntokens: {{public_key: {keys.public_path.name}}}\n"
        "limits: {max_message_bytes: 1000, requests_per_s: 5}\nactuation_timeout_s: 0.5\n"
    )
    cfg = HubConfig.load(tmp_path / "hub.yaml")
    assert cfg.host == "0.0.0.0"
    assert (cfg.ports["grpc"], cfg.ports["viss"], cfg.ports["http"]) == (0, None, 8080)
    assert cfg.token_public_key == keys.public_path and cfg.limits.max_message_bytes == 1000
    cfg.check()  # a token key makes a non-loopback address acceptable
    (tmp_path / "hub.toml").write_text('host = "127.0.0.1"\n[ports]\ngrpc = 0\nhttp = 0\nviss = 0\n')
    toml_ports = HubConfig.load(tmp_path / "hub.toml").ports
    assert (toml_ports["grpc"], toml_ports["viss"], toml_ports["http"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hots: 127.0.0.1\n", "unknown key"),
        ("ports: {grpc: 70000}\n", "ports.grpc must be 0..65535"),
        ("ports: {mqtt: 1883}\n", "ports.mqtt is not one of"),
        ("tokens: {public_key: missing.pub}\n", "tokens.public_key: file"),
        ("limits: {burst: -1}\n", "limits.burst must be a positive number"),
        ("ports: [1, 2]\n", "'ports' must be a mapping"),
        ("host: [\n", "not valid YAML"),
    ],
)
def test_config_errors_say_what_and_where(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        HubConfig.load(path)
    assert str(path) in str(err.value)


def test_open_hub_refuses_non_loopback() -> None:
    with pytest.raises(ConfigError, match="not loopback and no token key"):
        Hub(HubConfig(host="0.0.0.0"))
    HubConfig(host="::1").check()


class AccessoriesStub:
    """A small component of the kind other rooms plug in: it provides a signal and adds REST routes."""

    name = "accessories-test"

    def __init__(self) -> None:
        self.events: list[str] = []

    async def start(self, hub: Hub) -> None:
        self.events.append("start")
        self.provider = hub.broker.register_provider(self.name, ["Vehicle.Cabin.Light.IsDomeOn"])
        self.provider.publish("Vehicle.Cabin.Light.IsDomeOn", False)

        async def mounts(request: Request) -> JSONResponse:
            require(request, Action.READ, "Vehicle.Cabin")
            return JSONResponse({"mounts": ["seatback-left"]})

        hub.add_rest_group(
            RouteGroup(
                name="mounts",
                routes=[Route("/api/v1/mounts", mounts)],
                paths={
                    "/api/v1/mounts": {
                        "get": {"tags": ["mounts"], "responses": {"200": {"description": "mount points"}}}
                    }
                },
            )
        )

    async def stop(self) -> None:
        self.events.append("stop")
        self.provider.close()


async def test_components_rest_groups_and_openapi(tmp_path) -> None:
    keys = Keys(tmp_path)
    hub = Hub(hub_config(keys.public_path))
    component = AccessoriesStub()
    hub.add_component(component)
    async with hub:
        assert component.events == ["start"]
        base = f"http://127.0.0.1:{hub.http.port}"
        token = {"Authorization": "Bearer " + keys.token("read:Vehicle.Cabin")}
        async with httpx.AsyncClient(base_url=base) as http:
            doc = (await http.get("/openapi.json")).json()
            assert {"/api/v1/info", "/api/v1/signals", "/api/v1/providers", "/api/v1/mounts"} <= set(
                doc["paths"]
            )
            assert (await http.get("/api/v1/mounts", headers=token)).json() == {"mounts": ["seatback-left"]}
            assert (await http.get("/api/v1/mounts")).status_code == 401
            signals = (
                await http.get("/api/v1/signals", params={"pattern": "Vehicle.Cabin.Light.*"}, headers=token)
            ).json()
            dome = next(s for s in signals["signals"] if s["path"] == "Vehicle.Cabin.Light.IsDomeOn")
            assert dome["value"] is False and dome["provider"] == "accessories-test"
            forbidden = await http.get("/api/v1/signals/Vehicle/Speed", headers=token)
            assert forbidden.status_code == 403 and forbidden.json()["error"]["reason"] == "user_forbidden"
            missing = await http.get("/api/v1/signals/Vehicle/Cabin/Nope", headers=token)
            assert missing.status_code == 404
            wide = {"Authorization": "Bearer " + keys.token("read")}
            providers = (await http.get("/api/v1/providers", headers=wide)).json()["providers"]
            assert "accessories-test" in providers
            info = (await http.get("/api/v1/info", headers=wide)).json()
            assert info["auth"] == "jwt" and info["components"] == ["accessories-test"]
            assert "subscriptions" in (await http.get("/api/v1/subscriptions", headers=wide)).json()
    assert component.events == ["start", "stop"]


async def test_a_failing_component_stops_what_started() -> None:
    class Broken:
        name = "broken"

        async def start(self, hub: Hub) -> None:
            raise ConfigError("broken component: no such CAN interface can9")

        async def stop(self) -> None:
            raise AssertionError("never started, never stopped")

    good = AccessoriesStub()
    hub = Hub(hub_config())
    hub.add_component(good)
    hub.add_component(Broken())
    with pytest.raises(ConfigError, match="can9"):
        await hub.start()
    assert good.events == ["start", "stop"] and hub.grpc is None


async def test_running_hub_serves_all_three_apis() -> None:
    async with running_hub() as hub:
        endpoints = hub.endpoints()
        assert set(endpoints) == {"grpc", "viss", "http"}
        assert all("127.0.0.1:" in url for url in endpoints.values())


# -- the process -----------------------------------------------------------------------------------
def _start_hub(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    config = tmp_path / "hub.yaml"
    config.write_text("ports: {grpc: 0, viss: 0, http: 0}\n")
    proc = subprocess.Popen(
        [str(BIN / "anycar"), "hub", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("anycar hub ready "):
        proc.kill()
        raise AssertionError(f"hub did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line.removeprefix("anycar hub ready "))


def test_anycar_hub_process_with_the_kuksa_client_cli_and_sigterm(tmp_path) -> None:
    proc, endpoints = _start_hub(tmp_path)
    try:
        port = endpoints["grpc"].rsplit(":", 1)[1]
        script = "setValue Vehicle.Speed 33.5\ngetValue Vehicle.Speed\ngetMetaData Vehicle.Speed\nquit\n"
        env = dict(os.environ, NO_COLOR="1", TERM="dumb")
        out = subprocess.run(
            [str(BIN / "kuksa-client"), f"grpc://127.0.0.1:{port}"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,  # kuksa-client writes its command history into the working folder
        )
        text = out.stdout + out.stderr
        assert "33.5" in text, text
        assert "km/h" in text, text
        assert httpx.get(endpoints["http"] + "/Vehicle/Speed").json()["data"]["dp"]["value"] == "33.5"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")


def test_anycar_hub_sigint_and_missing_brand_room(tmp_path) -> None:
    proc, _ = _start_hub(tmp_path)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    out = subprocess.run(
        [
            str(BIN / "anycar"),
            "hub",
            "--brand",
            "tesla-model3",
            *FREE_PORTS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        import anycar.brands  # noqa: F401
    except ModuleNotFoundError:
        assert out.returncode == 2
        message = " ".join(out.stderr.split())  # rich wraps long lines
        assert "brands room" in message and "not installed" in message


def test_minted_token_with_hub_and_kuksa_client_cli(tmp_path) -> None:
    """`anycar token mint` -> hub configured with the public key -> kuksa-client CLI with the token."""
    keys = tmp_path / "keys"
    mint = subprocess.run(
        [str(BIN / "anycar"), "token", "mint", "--keys", str(keys), "--scope", "read provide:Vehicle.Speed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mint.returncode == 0, mint.stderr
    token = mint.stdout.strip()
    (tmp_path / "hub.yaml").write_text(
        f"host: 127.0.0.1\nports: {{grpc: 0, viss: 0, http: 0}}\ntokens: {{public_key: {keys / 'jwt.key.pub'}}}\n"
    )
    proc = subprocess.Popen(
        [str(BIN / "anycar"), "hub", "--config", str(tmp_path / "hub.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("anycar hub ready "), line
        port = json.loads(line.removeprefix("anycar hub ready "))["grpc"].rsplit(":", 1)[1]
        script = (
            "setValue Vehicle.Speed 12.5\ngetValue Vehicle.Speed\nsetValue Vehicle.TraveledDistance 3\nquit\n"
        )
        env = dict(os.environ, NO_COLOR="1", TERM="dumb")
        out = subprocess.run(
            [str(BIN / "kuksa-client"), f"grpc://127.0.0.1:{port}", "--token_or_tokenfile", token],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,  # kuksa-client writes its command history into the working folder
        )
        text = out.stdout + out.stderr
        assert "12.5" in text, text
        assert "PERMISSION_DENIED" in text or "permission" in text.lower(), text
        anonymous = subprocess.run(
            [str(BIN / "kuksa-client"), f"grpc://127.0.0.1:{port}"],
            input="getValue Vehicle.Speed\nquit\n",
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,  # kuksa-client writes its command history into the working folder
        )
        assert "12.5" not in anonymous.stdout, anonymous.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


async def test_a_port_in_use_is_a_clear_error_and_nothing_stays_open() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cfg = hub_config()
        cfg.ports["viss"] = taken.getsockname()[1]
        hub = Hub(cfg)
        with pytest.raises(ConfigError, match="VISS WebSocket cannot listen"):
            await hub.start()
        assert hub.grpc is None and hub.viss_ws is None and hub.http is None


async def test_a_hub_can_start_again_after_stopping() -> None:
    hub = Hub(hub_config())
    for _ in range(2):
        async with hub, httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{hub.http.port}/api/v1/info")).status_code == 200
