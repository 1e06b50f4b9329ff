"""Shared set-up for the accessory and policy tests: a real hub (broker, policy, manager and
WebSocket server on 127.0.0.1, port 0) with a trusted test vendor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from anycar.accessories import AccessoryManager, Limits, load_profile_mounts, signing, virtual
from anycar.accessories.registry import AccessoryRecord
from anycar.accessories.sdk import Accessory
from anycar.broker import SignalBroker
from anycar.clock import WALL, Clock
from anycar.policy import PolicyEngine, PowerConfig

# heartbeats every 0.1 s; silence for 1.5 s marks an accessory unavailable (a busy CI box can stall 0.4 s)
FAST = Limits(
    heartbeat_interval_s=0.1, heartbeat_timeout_s=1.5, hello_timeout_s=2.0, messages_per_s=200, burst=50
)


@dataclass
class Hub:
    broker: SignalBroker
    manager: AccessoryManager
    policy: PolicyEngine
    key: Ed25519PrivateKey
    db: Path

    @property
    def url(self) -> str:
        return self.manager.url

    def feed(self) -> object:
        """A provider for the vehicle signals the policy watches (what a CAN adapter would be)."""
        return self.broker.register_provider(
            "vehicle",
            [
                "Vehicle.Speed",
                "Vehicle.Powertrain.Transmission.SelectedGear",
                "Vehicle.LowVoltageBattery.CurrentVoltage",
                "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
                "Vehicle.LowVoltageSystemState",
                "Vehicle.Cabin.Light.IsDomeOn",
                "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
            ],
        )


@contextlib.asynccontextmanager
async def running_hub(
    db: Path,
    profile: str = "xiaomi_su7",
    limits: Limits = FAST,
    key: Ed25519PrivateKey | None = None,
    *,
    clock: Clock = WALL,
    power: PowerConfig | None = None,
) -> AsyncIterator[Hub]:
    broker = SignalBroker()
    plan = load_profile_mounts(profile)
    policy = PolicyEngine(broker, db_path=db, driving=plan.driving, power=power or plan.power, clock=clock)
    await policy.start()
    manager = AccessoryManager(broker, db, plan, policy=policy, limits=limits)
    key = key if key is not None else signing.generate_key()
    if manager.trust.get(signing.key_id(key)) is None:
        manager.add_vendor_key(virtual.VIRTUAL_VENDOR_ID, signing.public_b64(key), "test vendor")
    await manager.start()
    try:
        yield Hub(broker, manager, policy, key, db)
    finally:
        await manager.stop()
        await policy.stop()
        policy.close()


async def fit(hub: Hub, acc: Accessory, mount: str, **kw: object) -> AccessoryRecord:
    """Connect ``acc``, wait for it to ask for commissioning, commission it at ``mount``."""
    acc.start(hub.url)
    await asyncio.wait_for(acc.awaiting.wait(), 5)
    accessory_key = f"{acc.manifest['vendor_id']:04x}:{acc.manifest['product_id']:04x}:{acc.serial}"
    rec = await hub.manager.commission(accessory_key, acc.pairing_code, mount, **kw)  # type: ignore[arg-type]
    await asyncio.wait_for(acc.running.wait(), 5)
    return rec


async def until(predicate: object, timeout: float = 5.0, step: float = 0.01) -> None:
    """Wait until ``predicate()`` is true (for state that arrives over a socket)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def make(name: str, hub: Hub, serial: str, **kw: object) -> Accessory:
    return virtual.build(name, serial=serial, signing_key=hub.key, **kw)  # type: ignore[arg-type]


class ManualClock:
    """A hub clock the test moves by hand: ``t`` simulated seconds; the loop runs it at 1,000x."""

    def __init__(self) -> None:
        self.t = 1000.0

    def time(self) -> float:
        return 1_790_000_000.0 + self.t

    def monotonic(self) -> float:
        return self.t

    def loop_delay(self, seconds: float) -> float:
        return max(0.0, seconds) / 1000
