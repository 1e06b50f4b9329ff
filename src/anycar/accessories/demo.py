"""A self-contained accessory demo: a hub with every virtual accessory that fits the chosen car,
a short drive (parked, moving, a 12 V dip, ignition off) and the policy's decisions as they
happen. ``fit_virtual_fleet`` is also what a hub's own demo uses to populate itself.
"""

from __future__ import annotations

import asyncio
import os
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
from anycar.errors import ConfigError
from anycar.policy import Event, PolicyEngine

VEHICLE = [
    "Vehicle.Speed",
    "Vehicle.Powertrain.Transmission.SelectedGear",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.LowVoltageSystemState",
]


def virtual_vendor_key(db_path: Path) -> Ed25519PrivateKey:
    """The virtual fleet's vendor key, kept next to the hub database (owner-only file).

    A hub started again on the same database must find its virtual accessories under the key it
    trusted the first time, or every restart would trust one more throw-away key."""
    path = db_path.with_name(db_path.name + ".virtual-vendor.pem")
    if path.exists():
        return signing.load_private_key(path)
    key = signing.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(signing.private_pem(key))
    return key


async def fit_virtual_fleet(
    manager: AccessoryManager,
    key: Ed25519PrivateKey,
    names: list[str] | None = None,
    say: Callable[[str], Any] = lambda line: None,
) -> list[Accessory]:
    """Start, attest, commission and fit each virtual accessory that has a free mount.

    A virtual accessory already in the registry (a hub started again on the same database) is
    not commissioned twice: it reconnects with the token the registry holds for it, as a real
    accessory does with the token it saved."""
    if manager.trust.get(signing.key_id(key)) is None:
        manager.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key), "virtual accessories")
    fitted: list[Accessory] = []
    for i, name in enumerate(names or list(virtual.VIRTUAL)):
        manifest = parse_manifest(virtual.manifest_data(name), catalog=manager.broker.catalog)
        serial = f"V{i:03d}"
        known = manager.registry.by_accessory(f"{manifest.product_key}:{serial}")
        if known is not None:
            if known.instance not in manager.fitted:
                say(f"{name} is commissioned as {known.instance} but could not be restored")
                continue
            acc = virtual.build(name, serial=serial, signing_key=key)
            acc.token, acc.instance = known.token, known.instance
            acc.start(manager.url)
            await _reached(acc, acc.running, name)
            fitted.append(acc)
            continue
        mount = manager.board.suggest(
            manifest.mount_types, manifest.power, prefer_driver_view=True if name == "dash_display" else None
        )
        if mount is None:
            say(f"no free mount in {manager.mounts.profile} fits {name} ({', '.join(manifest.mount_types)})")
            continue
        acc = virtual.build(name, serial=serial, signing_key=key)
        acc.start(manager.url)
        await _reached(acc, acc.awaiting, name)
        await manager.commission(f"{manifest.product_key}:{acc.serial}", acc.pairing_code, mount)
        await _reached(acc, acc.running, name)
        fitted.append(acc)
    return fitted


async def _reached(acc: Accessory, state: asyncio.Event, name: str, timeout: float = 10.0) -> None:
    """Wait for ``state``; if the hub refused the accessory, say why instead of a bare timeout."""
    try:
        await asyncio.wait_for(state.wait(), timeout)
    except TimeoutError:
        await acc.stop()
        why = acc.errors[-1]["message"] if acc.errors else f"no answer in {timeout:g} s"
        raise ConfigError(f"virtual accessory {name} ({acc.serial}) did not start: {why}") from None


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
