"""Issue 9.11 and 9.2 (accessory side): pairing lock-outs survive a restart, a replayed hello
cannot cost the owner an attempt or push the real accessory out, and nothing of a hello is
parsed before its signature is verified."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from anycar.accessories import PairingError, protocol
from helpers_accessories import make, running_hub, until

KEY = "fff1:8002:F-1"  # clip fan, serial F-1


async def _raw_hello(url: str, hello: dict[str, Any]) -> dict[str, Any]:
    """Connect as a bare client, ignore the challenge, send ``hello`` as is; the hub's answer."""
    async with connect(url, proxy=None) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps(hello))
        answer: dict[str, Any] = json.loads(await ws.recv())
        if answer["type"] == "welcome":
            await asyncio.sleep(0.2)  # stay a moment as an impostor would
        return answer


async def test_the_lock_out_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    async with running_hub(db) as hub:
        fan = make("clip_fan", hub, "F-1", pairing_code="2468-1357")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        for _ in range(4):
            with pytest.raises(PairingError, match="attempt"):
                await hub.manager.commission(KEY, "1111-1111", "dash_mount_left")
        with pytest.raises(PairingError, match="locked out for 30 s"):
            await hub.manager.commission(KEY, "1111-1111", "dash_mount_left")
        await fan.stop()
    async with running_hub(db, key=hub.key) as hub:  # a restart must not hand out new attempts
        fan = make("clip_fan", hub, "F-1", pairing_code="2468-1357")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        with pytest.raises(PairingError, match="locked out"):
            await hub.manager.commission(KEY, "2468-1357", "dash_mount_left")
        assert hub.manager.pairing.locked_for(KEY) > 20
        assert not hub.manager.fitted
        await fan.stop()


async def test_a_replayed_hello_is_refused_and_costs_the_owner_nothing(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-1", pairing_code="2468-1357")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        real = hub.manager.pending[KEY]
        # what a sniffer on the cabin network saw: the real challenge's answer
        captured = {
            "type": "hello",
            "protocol": 1,
            "manifest": fan.manifest,
            "serial": "F-1",
            "pairing_proof": protocol.pairing_proof("2468-1357", real.nonce, "F-1"),
        }
        for _ in range(3):
            answer = await _raw_hello(hub.url, captured)
            assert answer["type"] == "error" and "replayed hello" in answer["message"]
        assert hub.manager.pending[KEY] is real  # the real accessory was not pushed out
        rec = await hub.manager.commission(KEY, "2468-1357", "dash_mount_left")
        assert rec.instance == "Fan1"
        await asyncio.wait_for(fan.running.wait(), 5)
        assert not [e for e in hub.manager.events.recent(subject=KEY) if e.kind == "pairing_failed"]
        assert hub.manager.pairing.locked_for(KEY) == 0
        await fan.stop()


async def test_an_impostor_beside_the_real_accessory_does_not_make_the_code_fail(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        fan = make("clip_fan", hub, "F-1", pairing_code="2468-1357")
        fan.start(hub.url)
        await asyncio.wait_for(fan.awaiting.wait(), 5)
        impostor = {
            "type": "hello",
            "protocol": 1,
            "manifest": fan.manifest,  # manifests are public, and signed by the vendor
            "serial": "F-1",
            "pairing_proof": secrets.token_hex(32),  # it cannot know the code
        }
        task = asyncio.create_task(_raw_hello(hub.url, impostor))
        await until(lambda: len(hub.manager.contenders.get(KEY, [])) == 2)
        assert hub.manager.pending[KEY] is not None
        rec = await hub.manager.commission(KEY, "2468-1357", "dash_mount_left")  # the real one's code
        assert rec.instance == "Fan1"
        await asyncio.wait_for(fan.running.wait(), 5)
        assert (await task)["type"] == "welcome"
        assert hub.manager.pairing.locked_for(KEY) == 0
        assert KEY not in hub.manager.contenders
        await fan.stop()


async def test_nothing_of_an_unsigned_hello_is_resolved(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        catalog = hub.broker.catalog
        resolved: list[str] = []
        real_resolve, real_overlay = catalog.resolve, catalog.apply_overlay

        def spy_resolve(pattern: str, *a: Any, **kw: Any) -> Any:
            resolved.append(pattern)
            return real_resolve(pattern, *a, **kw)

        catalog.resolve = spy_resolve  # type: ignore[method-assign]
        catalog.apply_overlay = lambda *a, **kw: resolved.append("overlay")  # type: ignore[method-assign]
        fan = make("clip_fan", hub, "F-1")
        manifest = {k: v for k, v in fan.manifest.items() if k != "signature"}
        manifest["reads"] = ["Vehicle.**.**.**.**.**.**.**.**.**.**.**.**.X"] * 20
        answer = await _raw_hello(
            hub.url, {"type": "hello", "protocol": 1, "manifest": manifest, "serial": "U-1"}
        )
        assert answer["type"] == "error" and answer["reason"] == "attestation_failed"
        forged = {**manifest, "signature": fan.manifest["signature"]}  # a signature over something else
        answer = await _raw_hello(
            hub.url, {"type": "hello", "protocol": 1, "manifest": forged, "serial": "U-2"}
        )
        assert answer["type"] == "error" and "does not match" in answer["message"]
        assert resolved == []  # no pattern was looked at, no overlay applied
        deep: Any = "x"
        for _ in range(200):
            deep = [deep]
        nested = {**fan.manifest, "extra": deep}
        answer = await _raw_hello(
            hub.url, {"type": "hello", "protocol": 1, "manifest": nested, "serial": "U-3"}
        )
        assert answer["type"] == "error" and "deeper than" in answer["message"]
        catalog.resolve, catalog.apply_overlay = real_resolve, real_overlay  # type: ignore[method-assign]
