"""An accessory written from docs/accessory-protocol.md alone: a plain WebSocket client, JSON,
HMAC-SHA256 and Ed25519, without the SDK. Proves the document is enough for another language."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect

from anycar.broker import ActuationStatus
from helpers_accessories import running_hub, until

MANIFEST: dict[str, Any] = {
    "manifest_version": 1,
    "vendor_id": 65521,
    "vendor_name": "Other-language Labs",
    "product_id": 4097,
    "product_name": "Bare lamp",
    "model": "BL-1",
    "firmware_version": "0.1.0",
    "traits": ["light"],
    "vss": {"IsLightOn": {"type": "actuator", "datatype": "boolean"}},
    "mount_types": ["usb_c"],
    "power": {"standby_w": 0.2, "typical_w": 3, "peak_w": 4.5},
}


def jcs(value: Any) -> str:
    """RFC 8785 for the values this manifest holds (section 6 of the protocol document)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def sign(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = key.sign(jcs(manifest).encode())
    return {
        **manifest,
        "signature": {
            "algorithm": "Ed25519",
            "key_id": hashlib.sha256(raw_pub).hexdigest()[:16],
            "value": base64.b64encode(sig).decode(),
        },
    }


async def test_bare_accessory_from_the_document(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub.sqlite3") as hub:
        serial, code = "BARE-1", "8765-4321"
        manifest = sign(MANIFEST, hub.key)
        commands: list[Any] = []
        token: dict[str, str] = {}

        async def lamp(first_time: bool) -> None:
            async with connect(hub.url) as ws:
                challenge = json.loads(await ws.recv())
                assert challenge["type"] == "challenge" and challenge["protocol"] == 1
                nonce = challenge["nonce"]
                hello: dict[str, Any] = {
                    "type": "hello",
                    "protocol": 1,
                    "serial": serial,
                    "manifest": manifest,
                    "pairing_proof": hmac.new(
                        code.replace("-", "").encode(),
                        f"anycar-pairing:{nonce}:{serial}".encode(),
                        hashlib.sha256,
                    ).hexdigest(),
                }
                if not first_time:
                    hello["auth"] = hmac.new(
                        bytes.fromhex(token["token"]), f"anycar-auth:{nonce}".encode(), hashlib.sha256
                    ).hexdigest()
                await ws.send(json.dumps(hello))
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "commissioned":
                        token["token"] = msg["token"]
                        await ws.send(json.dumps({"type": "publish", "values": {"IsLightOn": False}}))
                    elif msg["type"] == "welcome" and msg["state"] == "running":
                        await ws.send(json.dumps({"type": "publish", "values": {"IsLightOn": False}}))
                    elif msg["type"] == "command":
                        commands.append(msg)
                        await ws.send(json.dumps({"type": "command_result", "id": msg["id"], "ok": True}))
                        await ws.send(json.dumps({"type": "publish", "values": {msg["name"]: msg["value"]}}))
                    elif msg["type"] == "error":
                        raise AssertionError(msg)
                    elif msg["type"] == "removed":
                        return

        task = asyncio.create_task(lamp(first_time=True))
        await until(lambda: "fff1:1001:BARE-1" in hub.manager.pending)
        rec = await hub.manager.commission("fff1:1001:BARE-1", code, "console_usb_c_2")
        path = rec.paths["IsLightOn"]
        assert path == "Vehicle.Accessories.Light1.IsLightOn"
        await until(lambda: (dp := hub.broker.get(path)) is not None and dp.value is False)
        result = await hub.broker.actuate(path, True)
        assert result.status is ActuationStatus.ACCEPTED
        await until(lambda: hub.broker.get(path).value is True)  # type: ignore[union-attr]
        assert commands[0]["name"] == "IsLightOn" and commands[0]["path"] == path
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await until(lambda: hub.manager.fitted["Light1"].status == "UNAVAILABLE")

        again = asyncio.create_task(lamp(first_time=False))  # reconnect with the token
        await until(lambda: hub.manager.fitted["Light1"].status == "RUNNING")
        await hub.manager.remove("Light1")
        await asyncio.wait_for(again, 5)
