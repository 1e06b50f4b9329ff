"""A self-contained accessory demo: a hub with every virtual accessory that fits the chosen car,
a short drive (parked, moving, a 12 V dip, ignition off) and the policy's decisions as they
happen. ``fit_virtual_fleet`` is also what a hub's own demo uses to populate itself.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.accessories import signing, virtual
from anycar.accessories.manager import AccessoryManager
from anycar.accessories.manifest import parse_manifest
from anycar.accessories.mounts import load_profile_mounts
from anycar.accessories.sdk import Accessory
from anycar.broker import SignalBroker
from anycar.policy import Event, PolicyEngine

VEHICLE = [
    "Vehicle.Speed",
    "Vehicle.Powertrain.Transmission.SelectedGear",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.LowVoltageSystemState",
]


async def fit_virtual_fleet(
    manager: AccessoryManager,
    key: Ed25519PrivateKey,
    names: list[str] | None = None,
    say: Callable[[str], Any] = lambda line: None,
) -> list[Accessory]:
    """Start, attest, commission and fit each virtual accessory that has a free mount."""
    if manager.trust.get(signing.key_id(key)) is None:
        manager.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key), "virtual accessories")
    fitted: list[Accessory] = []
    for i, name in enumerate(names or list(virtual.VIRTUAL)):
        manifest = parse_manifest(virtual.manifest_data(name), catalog=manager.broker.catalog)
        mount = manager.board.suggest(
            manifest.mount_types, manifest.power, prefer_driver_view=True if name == "dash_display" else None
        )
        if mount is None:
            say(f"no free mount in {manager.mounts.profile} fits {name} ({', '.join(manifest.mount_types)})")
            continue
        acc = virtual.build(name, serial=f"V{i:03d}", signing_key=key)
        acc.start(manager.url)
        await asyncio.wait_for(acc.awaiting.wait(), 10)
        await manager.commission(f"{manifest.product_key}:{acc.serial}", acc.pairing_code, mount)
        await asyncio.wait_for(acc.running.wait(), 10)
        fitted.append(acc)
    return fitted


async def run(
    profile: str, duration: float, say: Callable[[str], Any], db: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = SignalBroker()
        plan = load_profile_mounts(profile)
        path = db if db is not None else Path(tmp) / "hub.sqlite3"
        policy = PolicyEngine(broker, db_path=path, driving=plan.driving, power=plan.power)
        car = broker.register_provider("demo-vehicle", VEHICLE)
        car.publish_many(
            [(VEHICLE[0], 0.0), (VEHICLE[1], 126), (VEHICLE[2], 12.6), (VEHICLE[3], 76.0), (VEHICLE[4], "ON")]
        )
        policy.events.add_listener(lambda e: say(_line(e)))
        await policy.start()
        manager = AccessoryManager(broker, path, plan, policy=policy)
        await manager.start()
        say(f"hub for {plan.vehicle}: accessories connect to {manager.url}")
        accessories = await fit_virtual_fleet(manager, signing.generate_key(), say=say)
        step = max(duration / 6, 0.2)
        scenario: list[tuple[str, list[tuple[str, Any]]]] = [
            ("drive off at 50 km/h", [(VEHICLE[1], 127), (VEHICLE[0], 50.0)]),
            ("12 V rail dips to 11.3 V", [(VEHICLE[2], 11.3)]),
            ("12 V rail recovers", [(VEHICLE[2], 12.7)]),
            ("stop and park", [(VEHICLE[0], 0.0), (VEHICLE[1], 126)]),
            ("ignition off", [(VEHICLE[4], "OFF")]),
            ("ignition on", [(VEHICLE[4], "ON")]),
        ]
        for label, values in scenario:
            say(f"-- {label}")
            car.publish_many(values)
            await asyncio.sleep(step)
        summary = {"profile": profile, "fitted": manager.list(), "policy": policy.status()}
        for acc in accessories:
            await acc.stop()
        await manager.stop()
        await policy.stop()
        policy.close()
        return summary


def _line(e: Event) -> str:
    return f"[{e.kind}] {e.message}"
