"""End to end through the real Mosquitto: a vehicle's telemetry (real wire bytes, some deflated)
published over MQTT 5, ingested by ``FleetServer`` into PostgreSQL, derived into trips, geofence
events and alerts, seen on the live WebSocket, delivered by webhook (signed) and queried over
REST; the whole drive published twice stores and derives nothing twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiomqtt
import httpx
import websockets

from anycar.fleet import registry, webhooks
from anycar.fleet.server import FleetConfig, FleetServer
from anycar.wire import Channel, encode, topic
from fleet_domain_support import M_PER_DEG, Drive
from fleet_support import eventually, fleet_engine, vin
from test_fleet_webhooks import Receiver


async def test_mqtt_to_trips_alerts_live_feed_and_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.listener.start()
    with fleet_engine("postgres", tmp_path) as engine:
        car = registry.add_vehicle(
            engine, vin(1), "kaiyun_pickman", tenant="acme", wire_id=f"E2E-{uuid.uuid4().hex[:8]}"
        ).vehicle
        token = registry.add_user(engine, "acme", "ann", "dispatcher")
        cfg = FleetConfig(
            db_url=engine.url.render_as_string(hide_password=False),
            vehicles=[car],
            group=f"t{uuid.uuid4().hex[:8]}",
            api_port=0,
            osmand_port=0,
        )
        server = FleetServer(cfg)
        server.workers[0].session_s = 60
        await server.start()
        try:
            base = server.ready()["api"]
            h = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                lat0, lat1 = 30.0 + 2000 / M_PER_DEG, 30.0 + 3000 / M_PER_DEG
                ring = [[119.99, lat0], [120.01, lat0], [120.01, lat1], [119.99, lat1], [119.99, lat0]]
                fence = {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": {"name": "school", "speed_limit_kmh": 30},
                }
                assert (await http.post("/api/geofences", json=fence, headers=h)).status_code == 201
                hook = (await http.post("/api/webhooks", json={"url": receiver.url}, headers=h)).json()
                async with websockets.connect(base.replace("http", "ws") + "/api/live") as ws:
                    await ws.send(token)
                    assert json.loads(await ws.recv())["type"] == "hello"
                    drive = Drive(car, soc=15.5, wh_per_km=300).leg(120, 0).leg(400, 36).leg(300, 0)
                    batches = drive.batches(per_batch=5)
                    payloads = [
                        (topic(car, Channel.TELEMETRY), encode(d, compress=i % 2 == 0))
                        for i, d in enumerate(batches)
                    ]
                    async with aiomqtt.Client(
                        "127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5
                    ) as client:
                        for name, payload in payloads:
                            await client.publish(name, payload, qos=1)
                    seen: dict[str, list] = {}

                    async def read_feed() -> None:
                        while not {"alert", "geofence", "trip"} <= set(seen):
                            msg = json.loads(await ws.recv())
                            seen.setdefault(msg["type"], []).append(msg)

                    await asyncio.wait_for(read_feed(), 60)
                assert {m["alert"]["type"] for m in seen["alert"]} <= {"low_soc", "speeding"}
                assert seen["geofence"][0]["geofence"]["geofence_name"] == "school"
                assert (
                    seen["trip"][0]["trip"]["vehicle"] == car and seen["trip"][0]["trip"]["distance_m"] > 3900
                )

                async def alert_types() -> set:
                    return {a["type"] for a in (await http.get("/api/alerts", headers=h)).json()}

                deadline = asyncio.get_running_loop().time() + 30
                while (
                    await alert_types() != {"low_soc", "speeding"}
                    and asyncio.get_running_loop().time() < deadline
                ):
                    await asyncio.sleep(0.1)
                assert await alert_types() == {"low_soc", "speeding"}
                trips_before = (await http.get("/api/trips", headers=h)).json()
                assert [t["open"] for t in trips_before] == [False]
                await eventually(lambda: len(receiver.got) >= 2, 30, "two alerts at the webhook")
                for headers, body in receiver.got:
                    assert headers["x-anycar-signature"] == webhooks.sign(hook["secret"], body)
                assert {json.loads(b)["type"] for _, b in receiver.got} <= {"alert", "geofence"}
                # the whole drive again (a hub resending after a lost ack): nothing twice
                async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as client:
                    for name, payload in payloads:
                        await client.publish(name, payload, qos=1)
                await eventually(
                    lambda: server.workers[0].stats.duplicates >= len(payloads), 30, "the resend dropped"
                )
                assert (await http.get("/api/trips", headers=h)).json() == trips_before
                assert len((await http.get("/api/alerts", headers=h)).json()) == 2
                status = (await http.get("/api/domain/status", headers=h)).json()
                assert status["domain"]["running"] and status["domain"]["errors"] == 0
                assert status["offline"]["running"] and status["webhooks"]["delivered"] >= 2
        finally:
            await server.stop()
            await receiver.listener.stop()
