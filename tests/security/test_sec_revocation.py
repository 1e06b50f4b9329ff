"""Issue 9.6: a revocation reaches the running hub within a second, from the CLI (another
process writing the shared store) or the owner's REST route, and ends the sessions under it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anycar.accessories import signing, virtual
from anycar.accessories.sdk import HubError
from anycar.api.auth import TokenInvalid, parse_scope
from anycar.hub import Hub
from anycar.hub.assemble import HubParts, build_hub
from anycar.hub.cabin import CabinComponent
from apis_support import Keys, hub_config
from helpers_accessories import fit, make, running_hub, until

BIN = Path(sys.executable).parent


async def _refused_hello(url: str, key: object, serial: str) -> str:
    again = virtual.build("cabin_light", serial=serial, signing_key=key)  # type: ignore[arg-type]
    with contextlib.suppress(HubError):
        await asyncio.wait_for(again.run(url, reconnect=False), 5)
    return str(again.errors[-1]["message"]) if again.errors else again.state


async def test_cli_revocation_reaches_the_running_hub(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        lamp = make("cabin_light", hub, "L-1")
        await fit(hub, lamp, "ceiling_mount_rear")
        waiting = make("clip_fan", hub, "F-1")
        waiting.start(hub.url)
        await asyncio.wait_for(waiting.awaiting.wait(), 5)
        kid = signing.key_id(hub.key)
        cli = await asyncio.create_subprocess_exec(
            str(BIN / "anycar"), "accessory", "trust", "revoke", kid, "recalled", "--db", str(db)
        )
        assert await asyncio.wait_for(cli.wait(), 60) == 0
        done = time.monotonic()
        await until(lambda: hub.manager.fitted["Light1"].status == "UNAVAILABLE", timeout=5)
        took = time.monotonic() - done
        assert hub.manager.trust.get(kid).revoked  # type: ignore[union-attr]
        assert not hub.manager.pending  # the waiting fan's connection under the key ended too
        await until(lambda: not lamp.running.is_set() and not waiting.awaiting.is_set(), timeout=5)
        assert "revoked" in await _refused_hello(hub.url, hub.key, "L-2")
        assert took < 3.0, took  # 0.25 s watch interval; generous for a loaded machine
        await lamp.stop()
        await waiting.stop()


@contextlib.asynccontextmanager
async def _cabin_hub(tmp_path: Path, public_key: Path | None = None) -> AsyncIterator[tuple[Hub, Any, Any]]:
    """A hub with REST and the cabin; yields (hub, manager, a trusted vendor key)."""
    config = hub_config(public_key)
    config.ports = {"grpc": None, "viss": None, "http": 0}
    hub = build_hub(config, HubParts(brand="xiaomi_su7", db_path=tmp_path / "hub.sqlite3", dashboard=False))
    async with hub:
        manager = next(c for c in hub.components if isinstance(c, CabinComponent)).manager
        assert manager is not None
        key = signing.generate_key()
        manager.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key), "test")
        yield hub, manager, key


async def test_the_owner_revokes_over_rest_and_the_sessions_end(tmp_path: Path) -> None:
    async with _cabin_hub(tmp_path) as (hub, manager, key):
        lamp = virtual.build("cabin_light", serial="L-1", signing_key=key)
        lamp.start(manager.url)
        await asyncio.wait_for(lamp.awaiting.wait(), 5)
        await manager.commission("fff1:8001:L-1", lamp.pairing_code, "ceiling_mount_rear")
        await asyncio.wait_for(lamp.running.wait(), 5)
        url = hub.endpoints()["http"] + f"/api/v1/trust/{signing.key_id(key)}/revoke"
        async with httpx.AsyncClient() as client:
            missing = await client.post(hub.endpoints()["http"] + "/api/v1/trust/0123456789abcdef/revoke")
            assert missing.status_code == 404 and "no trusted key" in missing.json()["error"]["message"]
            answer = await client.post(url, params={"reason": "stolen signing key"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["revoked_at"] and body["revoke_reason"] == "stolen signing key"
        assert body["sessions_closed"] == 1
        await until(lambda: manager.fitted["Light1"].status == "UNAVAILABLE", timeout=5)
        assert "stolen signing key" in await _refused_hello(manager.url, key, "L-9")
        assert manager.events.recent(kind="trust_revoked")
        await lamp.stop()


async def test_revocation_over_rest_is_for_the_owner_only(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    async with _cabin_hub(tmp_path, keys.public_path) as (hub, manager, key):
        kid = signing.key_id(key)
        url = hub.endpoints()["http"] + f"/api/v1/trust/{kid}/revoke"
        async with httpx.AsyncClient() as client:
            assert (await client.post(url)).status_code == 401
            reader = {"authorization": f"Bearer {keys.token('read:Vehicle.Speed actuate:Vehicle.Cabin.*')}"}
            refused = await client.post(url, headers=reader)
            assert refused.status_code == 403 and "admin" in refused.json()["error"]["message"]
            assert not manager.trust.get(kid).revoked  # type: ignore[union-attr]
            try:
                parse_scope("admin")
            except TokenInvalid:
                pytest.skip("this tree's tokens have no 'admin' scope yet (sec-grants adds it)")
            owner = {"authorization": f"Bearer {keys.token('admin')}"}
            assert (await client.post(url, headers=owner)).status_code == 200
        assert manager.trust.get(kid).revoked  # type: ignore[union-attr]
