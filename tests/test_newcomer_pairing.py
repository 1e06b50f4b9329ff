"""Trusting a key and pairing an accessory on a running hub over REST, and the SDK raising the
hub's refusals (untrusted key, wrong code, locked out, no free mount) as exceptions."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from anycar.accessories import signing
from anycar.accessories.sdk import (
    Accessory,
    LockedOut,
    NoFreeMount,
    UntrustedKey,
    WrongPairingCode,
)
from anycar.api.auth import generate_keypair, mint
from anycar.hub import Hub, HubConfig
from hub_support import running_hub

ROOT = Path(__file__).resolve().parents[1]
FAN = yaml.safe_load((ROOT / "examples/accessories/fan.yaml").read_text())


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("pairing"), brand="xiaomi_su7") as h:
        yield h


def _urls(hub: Hub) -> tuple[str, str]:
    e = hub.endpoints()
    return e["http"].rstrip("/"), e["accessories"]


async def _trust(http: str, key: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{http}/api/v1/trust", json={"vendor_id": "0xFFF2", "public_key": signing.public_b64(key)}
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _pair(http: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{http}/api/v1/pairing", json=body)


async def _waiting(acc: Accessory, url: str) -> asyncio.Task[None]:
    task = asyncio.create_task(acc.run(url))
    await asyncio.wait_for(acc.awaiting.wait(), 10)
    return task


async def test_untrusted_key_raises_with_the_hubs_reason(hub: Hub) -> None:
    _, url = _urls(hub)
    acc = Accessory(FAN, serial="U-1", signing_key=signing.generate_key())
    with pytest.raises(UntrustedKey, match="not in the trust registry") as info:
        await asyncio.wait_for(acc.run(url), 10)
    assert info.value.reason == "attestation_failed"


async def test_trust_then_pair_at_the_proposed_mount(hub: Hub) -> None:
    http, url = _urls(hub)
    key = signing.generate_key()
    first = await _trust(http, key)
    assert first["already_trusted"] is False and first["vendor_id"] == 0xFFF2
    assert (await _trust(http, key))["already_trusted"] is True
    acc = Accessory(FAN, serial="P-1", pairing_code="1234-5678", signing_key=key)
    task = await _waiting(acc, url)
    async with httpx.AsyncClient() as client:
        view = (await client.get(f"{http}/api/v1/pairing")).json()
    mine = [w for w in view["waiting"] if w["serial"] == "P-1"]
    assert mine and mine[0]["mount"] is not None and mine[0]["product_name"] == "Acme clip fan"
    proposed = mine[0]["mount"]["id"]
    r = await _pair(http, {"accessory": mine[0]["accessory"], "code": "1234 5678", "name": "PairFan"})
    assert r.status_code == 200, r.text
    assert r.json()["mount"]["id"] == proposed
    await asyncio.wait_for(acc.running.wait(), 10)
    assert acc.instance == "PairFan"
    await acc.stop()
    await asyncio.wait_for(task, 10)


async def test_wrong_code_and_lockout_reach_the_accessory(hub: Hub) -> None:
    http, url = _urls(hub)
    key = signing.generate_key()
    await _trust(http, key)
    for attempt in range(5):
        acc = Accessory(FAN, serial="W-1", pairing_code="1111-2222", signing_key=key)
        task = await _waiting(acc, url)
        r = await _pair(http, {"accessory": "fff2:1001:W-1", "code": "9999-0000"})
        if attempt < 4:
            assert r.status_code == 401 and r.json()["error"]["reason"] == "pairing_failed"
            with pytest.raises(WrongPairingCode, match="attempt"):
                await asyncio.wait_for(task, 10)
        else:
            assert r.status_code == 423 and r.json()["error"]["reason"] == "locked_out"
            with pytest.raises(LockedOut, match="locked out"):
                await asyncio.wait_for(task, 10)


async def test_no_free_mount_raises(hub: Hub) -> None:
    http, url = _urls(hub)
    key = signing.generate_key()
    await _trust(http, key)
    bed = copy.deepcopy(FAN)
    bed["mount_types"] = ["cargo_bed_rail"]  # the SU7 has none
    acc = Accessory(bed, serial="B-1", pairing_code="1234-5678", signing_key=key)
    task = await _waiting(acc, url)
    r = await _pair(http, {"accessory": "fff2:1001:B-1", "code": "1234-5678"})
    assert r.status_code == 409 and r.json()["error"]["reason"] == "fit_refused"
    with pytest.raises(NoFreeMount, match="no free mount"):
        await asyncio.wait_for(task, 10)


def test_bad_bodies_name_the_field(hub: Hub) -> None:
    http, _ = _urls(hub)
    r = httpx.post(f"{http}/api/v1/trust", json={"vendor_id": 70000, "public_key": "x"})
    assert r.status_code == 400 and "vendor_id" in r.json()["error"]["message"]
    r = httpx.post(f"{http}/api/v1/trust", json={"vendor_id": 1, "public_key": "not base64!"})
    assert r.status_code == 400 and "public_key" in r.json()["error"]["message"]
    r = httpx.post(f"{http}/api/v1/pairing", content=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]
    r = httpx.post(f"{http}/api/v1/pairing", content=b"x" * 20_000)
    assert r.status_code == 413  # over the route's cap, refused while streaming


def test_owner_routes_need_a_token_with_the_admin_scope(tmp_path: Path) -> None:
    private, public = generate_keypair("ES256")
    (tmp_path / "jwt.pub").write_bytes(public)
    config = HubConfig()
    config.token_public_key = tmp_path / "jwt.pub"
    with running_hub(tmp_path, brand="xiaomi_su7", config=config) as h:
        http = h.endpoints()["http"].rstrip("/")
        body = {"vendor_id": 0xFFF2, "public_key": signing.public_b64(signing.generate_key())}
        assert httpx.post(f"{http}/api/v1/trust", json=body).status_code == 401
        app = mint(private, "read actuate provide", subject="some-app")
        r = httpx.post(f"{http}/api/v1/trust", json=body, headers={"Authorization": f"Bearer {app}"})
        assert r.status_code == 403 and "admin" in r.json()["error"]["message"]
        r = httpx.post(
            f"{http}/api/v1/pairing", json={"code": "1234-5678"}, headers={"Authorization": f"Bearer {app}"}
        )
        assert r.status_code == 403
        r = httpx.get(f"{http}/api/v1/pairing", headers={"Authorization": f"Bearer {app}"})
        assert r.status_code == 200 and "waiting" in r.json()
        owner = mint(private, "read admin", subject="owner")
        r = httpx.post(f"{http}/api/v1/trust", json=body, headers={"Authorization": f"Bearer {owner}"})
        assert r.status_code == 200, r.text
        assert r.json()["vendor_id"] == 0xFFF2


@pytest.mark.parametrize("name", ["fan.yaml", "light.yaml"])
def test_example_manifests_validate_and_fit_every_car(name: str) -> None:
    from anycar.accessories.manifest import parse_manifest
    from anycar.accessories.mounts import load_profile_mounts
    from anycar.brands import list_profiles
    from anycar.cli.main import main

    path = ROOT / "examples" / "accessories" / name
    assert main(["accessory", "validate", str(path)]) == 0
    manifest = parse_manifest(yaml.safe_load(path.read_text()), source=str(path))
    if name == "fan.yaml":  # the README's fan finds a mount in every one of the 14 cars
        for profile in list_profiles():
            plan = load_profile_mounts(profile.id)
            assert any(
                m.type in manifest.mount_types and m.max_w >= manifest.power.peak_w
                for m in plan.mounts.values()
            ), profile.id
