"""`anycar accessory serve`: a stand-alone accessory hub for accessory makers, with the owner's
actions typed on standard input (commission, remove, list, free, events, set, quit)."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext
from typing import Any

from anycar.accessories.manager import AccessoryManager
from anycar.accessories.mounts import MountPlan
from anycar.broker import SignalBroker
from anycar.errors import AnycarError
from anycar.model.datatypes import parse_text
from anycar.policy import PolicyEngine

HELP = """commands:
  waiting                                   accessories waiting for their pairing code
  commission ACCESSORY CODE MOUNT [NAME]    commission and fit (e.g. commission fff1:8001:L1 1234-5678 dash_mount_left)
  remove INSTANCE                           remove a fitted accessory
  list                                      fitted accessories and their status
  free                                      free mounts and rail watts
  set PATH VALUE                            publish a vehicle signal (Vehicle.Speed 50) or actuate an accessory
  events [N]                                the last N policy events
  health                                    background tasks and the event log: restarts, errors
  quit"""

VEHICLE = (
    "Vehicle.Speed",
    "Vehicle.Powertrain.Transmission.SelectedGear",
    "Vehicle.Powertrain.Transmission.CurrentGear",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.LowVoltageSystemState",
)


async def serve(
    plan: MountPlan,
    db: Path,
    host: str,
    port: int,
    say: Callable[[str], Any],
    read_line: Callable[[], str] = sys.stdin.readline,
    tls: SSLContext | None = None,
) -> None:
    broker = SignalBroker()
    vehicle = broker.register_provider("console-vehicle", VEHICLE)
    policy = PolicyEngine(broker, db_path=db, driving=plan.driving, power=plan.power)
    policy.events.add_listener(lambda e: say(f"[{e.kind}] {e.message}"))
    await policy.start()
    manager = AccessoryManager(broker, db, plan, policy=policy, host=host, port=port, ssl=tls)
    await manager.start()
    say(f"accessory hub for {plan.vehicle} listening on {manager.url}")
    say(HELP)
    try:
        while True:
            line = await asyncio.to_thread(read_line)
            if not line:
                break
            words = shlex.split(line)
            if not words:
                continue
            if words[0] in ("quit", "exit"):
                break
            try:
                await _command(words, manager, broker, vehicle, say)
            except AnycarError as exc:
                say(f"error: {exc}")
            except (ValueError, IndexError) as exc:
                say(f"error: {exc}\n{HELP}")
    finally:
        await manager.stop()
        await policy.stop()
        policy.close()


async def _command(
    words: list[str], manager: AccessoryManager, broker: SignalBroker, vehicle: Any, say: Callable[[str], Any]
) -> None:
    cmd, args = words[0], words[1:]
    if cmd == "waiting":
        for w in manager.waiting():
            say(
                f"{w['accessory']}: {w['vendor_name']} {w['product_name']} fits {', '.join(w['mount_types'])}, peak {w['power']['peak_w']:g} W"
            )
        if not manager.waiting():
            say("no accessory is waiting")
    elif cmd == "commission":
        rec = await manager.commission(args[0], args[1], args[2], instance=args[3] if len(args) > 3 else None)
        say(
            f"{rec.instance} commissioned at {rec.mount_id}: "
            + ", ".join(f"{k}={v}" for k, v in rec.paths.items())
        )
    elif cmd == "remove":
        await manager.remove(args[0])
    elif cmd == "list":
        for r in manager.list():
            say(f"{r['instance']}: {r['product']} at {r['mount_id']}, {r['status']}, {r['priority']}")
    elif cmd == "free":
        free = manager.board.free()
        for m in free["mounts"]:
            say(f"{m['mount']} ({m['type']}): {m['usable_w']:g} W usable")
        say(", ".join(f"{r}: {w:g} W free" for r, w in free["rails_free_w"].items()))
    elif cmd == "set":
        sig = broker.catalog.get(args[0])
        value = parse_text(sig.datatype, " ".join(args[1:]))
        if args[0] in VEHICLE:
            vehicle.publish(args[0], value)
        else:
            result = await broker.actuate(args[0], value, requester="console")
            say(f"{args[0]}: {result.status} {result.reason}")
    elif cmd == "health":
        health = manager.policy.supervisor.health()
        say(f"health: {'ok' if health['ok'] else 'NOT ok'}")
        for row in (*health["tasks"], *health["watched"], *health["stores"]):
            error = f", last error: {row['last_error']}" if row["last_error"] else ""
            say(f"  {row['name']}: {row['state']}, {row['restarts']} restarts{error}")
    elif cmd == "events":
        for e in manager.events.recent(limit=int(args[0]) if args else 20):
            say(f"{e.kind}: {e.message}")
    else:
        say(HELP)
