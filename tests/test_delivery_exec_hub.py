"""delivery-exec on the hub alone (no fleet, no broker link needed): a route action kept in the
spool's database and shown on a fitted display accessory (the virtual dash display on the
PICKMAN's dash USB-C); a POD closed by the driver through the hub's REST view is signed by the
hub key and verifies with its public key; a PIN typed on the phone is a digest, never the PIN."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import httpx
import pytest

from anycar.accessories.demo import fit_virtual_fleet
from anycar.accessories.signing import generate_key
from anycar.hub import HubConfig
from anycar.hub.assemble import HubParts, build_hub
from anycar.uplink.delivery import DeliveryKeeper, hub_key, pin_digest
from anycar.wire import signature
from apis_support import Keys
from uplink_support import free_port, unique_vehicle, uplink_config

pytestmark = pytest.mark.timeout(60)
STOP = {
    "order": "H-1",
    "kind": "drop",
    "lat": 60.17,
    "lon": 24.95,
    "window": "09:00-11:00",
    "eta": "09:12",
    "weight_kg": 2.5,
    "pin_required": True,
    "pin_length": 4,
}


async def test_route_on_the_display_and_a_signed_pod(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    config = HubConfig(token_public_key=keys.public_path)
    config.ports = {"grpc": None, "viss": None, "http": 0, "accessories": 0}
    # no broker listens on this port: the hub keeps working, the POD waits in the spool
    parts = HubParts(
        brand="kaiyun_pickman",
        db_path=tmp_path / "hub.sqlite3",
        dashboard=False,
        uplink=uplink_config(tmp_path, unique_vehicle("DH"), port=free_port()),
    )
    hub = build_hub(config, parts)
    await hub.start()
    cabin = next(c for c in hub.components if c.name == "cabin")
    (display,) = await fit_virtual_fleet(cabin.manager, generate_key(), names=["dash_display"])
    try:
        can = next(p for p in hub.broker.providers() if p.name == "can:kaiyun_pickman")
        can.publish("Vehicle.Speed", 0.0)  # parked: the display may show text
        can.publish("Vehicle.Powertrain.Transmission.SelectedGear", 126)
        uplink = next(c for c in hub.components if c.name == "uplink")
        keeper: DeliveryKeeper = uplink.delivery  # type: ignore[attr-defined]
        done = await keeper.receive("c-1", {"plan": 3, "version": 2, "stops": [STOP]})
        assert done.status == "accepted"
        deadline = time.monotonic() + 10

        def shown() -> list[str]:  # what the display accessory itself was told to show
            return [v for name, v in display.commands if name == "Text"]

        while not shown():
            assert time.monotonic() < deadline, keeper.view()["display_status"]
            await asyncio.sleep(0.05)
        assert shown() == ["Next: H-1 09:12 [09:00-11:00] 2.5 kg PIN"]
        assert ("ContentType", "TEXT") in display.commands
        older = await keeper.receive("c-2", {"plan": 3, "version": 1, "stops": []})
        assert older.status == "refused" and older.reason == "stale: route version 2 is already here"

        # the driver closes the stop through the hub's REST view (actuate scope), token first
        base = hub.endpoints()["http"]
        reader = {"Authorization": "Bearer " + keys.token("read:Vehicle")}
        driver = {"Authorization": "Bearer " + keys.token("actuate:Vehicle.Accessories")}
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            view = (await http.get("/api/v1/delivery", headers=reader)).json()
            assert view["next"]["order"] == "H-1" and view["display_status"] == "shown"
            no = await http.post("/api/v1/delivery/complete", json={"outcome": "failed"}, headers=reader)
            assert no.status_code == 403
            bad = await http.post("/api/v1/delivery/complete", json={"outcome": "lost"}, headers=driver)
            assert bad.status_code == 400 and "outcome" in bad.json()["error"]["message"]
            r = await http.post(
                "/api/v1/delivery/complete",
                json={"outcome": "failed", "reason": "nobody home", "pin": "1234"},
                headers=driver,
            )
            assert r.status_code == 200, r.text
            record = r.json()
            again = await http.post("/api/v1/delivery/complete", json={"outcome": "failed"}, headers=driver)
            assert again.status_code == 409
        assert record["pin"] == {"source": "phone", "digest": pin_digest("H-1", "1234")}
        key = hub_key(uplink.spool_path.with_name(uplink.spool_path.name + ".identity.pem"))  # type: ignore[attr-defined]
        public = signature.parse_public_key(keeper.public_key)
        assert signature.verify(record, {signature.key_id(public): public}) == signature.key_id(key)
        assert base64.b64decode(keeper.public_key) and record["outcome"] == "failed"
        tampered = {**record, "outcome": "delivered"}
        with pytest.raises(Exception, match="signature"):
            signature.verify(tampered, {signature.key_id(public): public})
        while shown()[-1] != "Round complete":
            assert time.monotonic() < deadline + 5
            await asyncio.sleep(0.05)
        kinds = [r[0] for r in uplink.spool.db.execute("SELECT channel FROM spool")]  # type: ignore[attr-defined]
        assert "pod" in kinds  # waiting for the link, like every uplink message
    finally:
        await display.stop()
        await hub.stop()
