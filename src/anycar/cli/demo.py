"""`anycar demo`: a hub with the broker, fed by a simple drive, showing what it serves.

The full demo (simulator through CAN, accessories, APIs and dashboard) replaces this when the
simulator lands; until then it shows the broker at work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from typing import Any

from rich.live import Live
from rich.table import Table

from anycar.broker import SignalBroker
from anycar.cli.output import console

DRIVE_SIGNALS = [
    "Vehicle.Speed",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.Transmission.CurrentGear",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
]


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run a demo hub on embedded defaults")
    demo.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: until Ctrl-C)")
    demo.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per real second")
    demo.add_argument("--headless", action="store_true", help="no live status line")
    demo.set_defaults(func=run_demo)


def _status(broker: SignalBroker) -> Table:
    table = Table(title="anycar hub: broker", title_justify="left")
    table.add_column("signal")
    table.add_column("value", justify="right")
    for path in DRIVE_SIGNALS:
        dp = broker.get(path)
        table.add_row(
            path,
            "—" if dp is None else f"{dp.value:.1f}" if isinstance(dp.value, float) else str(dp.value),
        )
    stats = broker.stats()
    table.caption = (
        f"{stats['signals']} VSS signals served, {stats['updates']} updates, {stats['dropped']} dropped"
    )
    return table


async def _drive(broker: SignalBroker, duration: float, speedup: float, live: Live | None) -> None:
    provider = broker.register_provider("demo-drive", DRIVE_SIGNALS)
    sub = broker.subscribe(DRIVE_SIGNALS, name="demo-status")
    start = time.monotonic()
    soc = 80.0
    while duration <= 0 or time.monotonic() - start < duration:
        t = (time.monotonic() - start) * speedup
        speed = max(0.0, 50 * math.sin(t / 20))
        soc = max(0.0, soc - speed * 0.0001 * speedup)
        gear = 0 if speed < 1 else min(6, 1 + int(speed // 15))
        provider.publish_many(
            [
                (DRIVE_SIGNALS[0], speed),
                (DRIVE_SIGNALS[1], soc),
                (DRIVE_SIGNALS[2], gear),
                (DRIVE_SIGNALS[3], 21.5),
            ]
        )
        sub.drain()
        if live is not None:
            live.update(_status(broker))
        await asyncio.sleep(0.1)
    sub.close()


def run_demo(args: argparse.Namespace) -> int:
    broker = SignalBroker()
    console.print(f"[bold]anycar[/] hub: {len(broker.catalog)} VSS 6.0 signals in the broker")
    if args.headless:
        asyncio.run(_drive(broker, args.duration, args.speedup, None))
        console.print(_status(broker))
    else:
        with (
            Live(_status(broker), console=console, refresh_per_second=4) as live,
            contextlib.suppress(KeyboardInterrupt),
        ):
            asyncio.run(_drive(broker, args.duration, args.speedup, live))
    return 0
