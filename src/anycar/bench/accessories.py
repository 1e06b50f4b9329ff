"""`anycar bench accessories`: the accessory path over real WebSockets on 127.0.0.1.

- commissioning: connect, attest (Ed25519), pairing proof, fit, claim, first state messages;
- command round trip: ``broker.actuate`` -> hub -> WebSocket -> SDK handler -> result;
- publish: accessory ``publish`` frames -> hub -> broker -> a subscriber, latency per value and
  sustained rate with the rate limit lifted;
- flooding: one accessory floods at full speed under the default limit while another publishes
  10 values/s; the calm one's latency shows the isolation.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from anycar.accessories import signing, virtual
from anycar.accessories.manager import AccessoryManager, Limits
from anycar.accessories.mounts import load_profile_mounts
from anycar.accessories.sdk import Accessory
from anycar.bench.stats import latency_summary
from anycar.broker import SignalBroker


async def _fit(mgr: AccessoryManager, acc: Accessory, mount: str) -> dict[str, str]:
    acc.start(mgr.url)
    await asyncio.wait_for(acc.awaiting.wait(), 10)
    key = f"{acc.manifest['vendor_id']:04x}:{acc.manifest['product_id']:04x}:{acc.serial}"
    rec = await mgr.commission(key, acc.pairing_code, mount)
    await asyncio.wait_for(acc.running.wait(), 10)
    return rec.paths


async def _run(commands: int, publishes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = SignalBroker()
        limits = Limits(messages_per_s=1e9, burst=1e9)
        mgr = AccessoryManager(
            broker, Path(tmp) / "hub.sqlite3", load_profile_mounts("xiaomi_su7"), limits=limits
        )
        key = signing.generate_key()
        mgr.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key))
        await mgr.start()
        try:
            t0 = time.perf_counter()
            fan = virtual.build("clip_fan", serial="B-1", signing_key=key)
            fan.echo = False
            paths = await _fit(mgr, fan, "dash_mount_left")
            commission_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            lamp = virtual.build("cabin_light", serial="B-2", signing_key=key)
            await _fit(mgr, lamp, "ceiling_mount_rear")
            warm_commission_ms = (time.perf_counter() - t0) * 1000
            await lamp.stop()

            round_trips = []
            for i in range(commands):
                start = time.perf_counter()
                result = await broker.actuate(paths["FanSpeed"], i % 100)
                assert result.ok, result  # nosec B101 # a benchmark's sanity check of its own run, not a guard
                round_trips.append(time.perf_counter() - start)

            sub = broker.subscribe([paths["FanSpeed"]], send_current=False, queue_size=publishes + 10)
            lat = []
            for i in range(min(publishes, 1000)):
                start = time.perf_counter()
                await fan.publish(FanSpeed=i % 100)
                await sub.get()
                lat.append(time.perf_counter() - start)
            start = time.perf_counter()
            for i in range(publishes):
                await fan.publish(FanSpeed=i % 100)
            received = 0
            while received < publishes:
                batch = await sub.get(timeout=10)
                if not batch:
                    break
                received += len(batch)
            rate = received / (time.perf_counter() - start)
            sub.close()
            await fan.stop()
        finally:
            await mgr.stop()
        return {
            "commission_cold_ms": round(commission_ms, 2),
            "commission_warm_ms": round(warm_commission_ms, 2),
            "command_round_trip": {"count": commands, **latency_summary(round_trips)},
            "publish_to_subscriber": {"count": len(lat), **latency_summary(lat)},
            "publish_rate_per_s": round(rate),
            "publish_received": received,
        }


_FLOOD_CODE = "1357-2468"


def _flooder_thread(
    url: str, key: Any, ready: threading.Event, stop: threading.Event, counts: dict[str, int]
) -> None:
    """A flooding accessory on its own thread and event loop, as a separate device would be."""

    async def main() -> None:
        acc = virtual.build("cabin_air", serial="FL-1", signing_key=key, pairing_code=_FLOOD_CODE)
        acc.start(url)
        await asyncio.wait_for(acc.running.wait(), 30)
        ready.set()
        frame = '{"type":"publish","values":{"Temperature":21.5}}'
        while not stop.is_set():
            await acc.send_raw(frame)
            counts["sent"] += 1
            if counts["sent"] % 100 == 0:
                await asyncio.sleep(0)
        await acc.stop()

    asyncio.run(main())


async def _flood(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = SignalBroker()
        mgr = AccessoryManager(broker, Path(tmp) / "hub.sqlite3", load_profile_mounts("xiaomi_su7"))
        key = signing.generate_key()
        mgr.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key))
        await mgr.start()
        ready, stop = threading.Event(), threading.Event()
        counts = {"sent": 0}
        thread = threading.Thread(
            target=_flooder_thread, args=(mgr.url, key, ready, stop, counts), daemon=True
        )
        thread.start()
        try:
            while "fff1:800b:FL-1" not in mgr.pending:
                await asyncio.sleep(0.01)
            await mgr.commission("fff1:800b:FL-1", _FLOOD_CODE, "dash_mount_right")
            while not ready.is_set():
                await asyncio.sleep(0.01)
            calm = virtual.build("clip_fan", serial="CA-1", signing_key=key)
            paths = await _fit(mgr, calm, "dash_mount_left")
            sub = broker.subscribe([paths["FanSpeed"]], send_current=False)
            lat = []
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                i += 1
                start = time.perf_counter()
                await calm.publish(FanSpeed=i % 100)
                while True:
                    batch = await sub.get(timeout=2)
                    if not batch or any(dp.value == i % 100 for dp in batch):
                        break
                lat.append(time.perf_counter() - start)
                await asyncio.sleep(0.05)
            flood_session = mgr.fitted["CabinEnvironmentSensor1"].session
            allowed = flood_session.bucket.allowed if flood_session else 0
            dropped = flood_session.bucket.dropped if flood_session else 0
            stop.set()
            await asyncio.to_thread(thread.join, 10)
            sub.close()
            await calm.stop()
        finally:
            stop.set()
            await mgr.stop()
        return {
            "seconds": seconds,
            "flood_sent": counts["sent"],
            "flood_accepted": allowed,
            "flood_dropped": dropped,
            "calm_updates": len(lat),
            "calm_latency": latency_summary(lat),
        }


def run(*, commands: int = 500, publishes: int = 5000, flood_seconds: float = 2.0) -> dict[str, Any]:
    result = asyncio.run(_run(commands, publishes))
    result["flooding"] = asyncio.run(_flood(flood_seconds))
    return {"benchmark": "accessories", **result}
