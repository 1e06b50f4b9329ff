"""Run the demo fleet's hubs: one full hub per vehicle, several hubs in one process.

``python -m anycar.fleetdemo.hubs SPEC.json`` reads the vehicles (identity, MQTT credentials,
route file, drive cycle) written by ``anycar.fleetdemo.run``, builds one hub each with
``anycar.hub.assemble.build_hub`` — simulator → CAN frames → brand adapter → signal broker, the
virtual accessories in the cabin, the APIs and the cabin dashboard on free ports, the uplink to
the fleet's MQTT broker — and starts them on one asyncio loop. Separate hub instances share
nothing but the process: a hub per process costs about 60 MB and a Python interpreter each,
which this machine cannot spare eight times over (see docs/roads.md for the measurement).

Each PICKMAN the spec gives a driver (``"driver": true``) drives the route its hub is pushed by
the fleet, and delivers at each stop (``anycar.fleetdemo.driver``); the others drive their route
file round and round.

It prints one JSON line when every hub is up (``{"ready": ..., "dashboards": {vin: url}}``), one
per driver event (``{"event": "round" | "stop" | "crash", ...}``) and one when it stops
(``{"stopped": ..., "cpu_s": ..., "drivers": {vin: {...}}}``); SIGTERM or SIGINT stops it.

The demo's physical world (swap stations, ``anycar.fleetdemo.stations``): a PICKMAN's spec may
give its pack (``pack``: serial, soh, capacity_kwh) and charge (``soc``); a planned swap stop
comes in the route the fleet pushes (``kind: swap``: its driver drives there and waits in the
bay for the robot, ``anycar.fleetdemo.driver``); the process prints
``{"parked": VIN, "lat", "lon", "pack", "soc", "soh"}`` when a vehicle parks at a stop, and
takes ``{"fit_pack": VIN, "pack": {...}}`` lines on stdin (a station's robot fitted that pack)
and ``{"day": {"wall0", "start", "speedup"}}`` (the demo's day clock, for the drivers),
answered ``{"fitted": VIN, ...}`` or ``{"refused": VIN, "error": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from anycar.errors import AnycarError


def build(vehicle: dict[str, Any], broker_url: str, folder: Path, speedup: float) -> Any:
    from anycar.hub import HubConfig
    from anycar.hub.assemble import HubParts, build_hub
    from anycar.uplink import UplinkConfig

    config = HubConfig()
    config.ports = {name: 0 for name in config.ports}  # free ports: eight hubs on one machine
    own = folder / vehicle["vin"]
    own.mkdir(parents=True, exist_ok=True)
    uplink = UplinkConfig.from_url(broker_url, vehicle["vin"])
    uplink.username = vehicle.get("username")
    uplink.password = vehicle.get("password")
    uplink.spool_path = own / "uplink.sqlite3"
    uplink.fleet_keys = list(vehicle.get("fleet_keys") or [])  # the fleet's key signs the route commands
    parts = HubParts(
        brand=vehicle["brand"],
        db_path=own / "hub.sqlite3",
        virtual_fleet=True,
        simulate=True,
        seed=int(vehicle.get("seed", 0)),
        speedup=speedup,
        uplink=uplink,
        route=vehicle["route_file"],
        cycle=vehicle.get("cycle"),
    )
    hub = build_hub(config, parts)
    pack = vehicle.get("pack")
    if pack is not None or vehicle.get("soc") is not None:
        sim = simulator(hub)
        p = pack or {}
        sim.swap_pack(
            str(p.get("serial", sim.pack_serial)),
            float(vehicle.get("soc", sim.battery.soc)),
            float(p.get("soh", sim.pack_soh or 100.0)),
            float(p.get("capacity_kwh", sim.battery.capacity_wh / 1000)),
        )
        sim.swaps = 0  # the pack it starts with is no swap
    return hub


def simulator(hub: Any) -> Any:
    """The hub's vehicle simulator (its ``simulator`` component's)."""
    return next(c for c in hub.components if c.name == "simulator").sim


def _say(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


def watch_parking(vin: str, hub: Any) -> None:
    """A line each time the vehicle parks at a stop: where, and the pack it carries."""
    component = next(c for c in hub.components if c.name == "simulator")
    last = {"phase": ""}

    def sink(step: Any) -> None:
        if step.phase == "delivery" and last["phase"] != "delivery":
            v, sim = step.values, component.sim
            _say(
                {
                    "parked": vin,
                    "lat": v.get("Vehicle.CurrentLocation.Latitude"),
                    "lon": v.get("Vehicle.CurrentLocation.Longitude"),
                    "pack": sim.pack_serial,
                    "soc": round(sim.battery.soc, 2),
                    "soh": sim.pack_soh,
                    "capacity_kwh": round(sim.battery.capacity_wh / 1000, 3),
                }
            )
        last["phase"] = step.phase

    component.runner.add_sink(sink)


async def commands(hubs: dict[str, Any], drivers: dict[str, Any] | None = None) -> None:
    """``fit_pack`` lines on stdin: the swap station's robot fitted another pack (the demo's
    physical world); ``{"day": {"wall0", "start", "speedup"}}``: the demo's day started (the
    drivers wait at a door until its window opens); a bad line is answered with one line and the
    rest go on."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=65536)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        doc: Any = None
        try:
            doc = json.loads(line)
            if isinstance(doc, dict) and isinstance(doc.get("day"), dict):
                for d in (drivers or {}).values():
                    d.set_day(
                        float(doc["day"]["wall0"]), str(doc["day"]["start"]), float(doc["day"]["speedup"])
                    )
                continue
            vin, pack = doc["fit_pack"], doc["pack"]
            sim = simulator(hubs[vin])
            sim.swap_pack(pack["serial"], pack["soc"], pack["soh"], pack.get("capacity_kwh"))
            _say({"fitted": vin, "pack": pack["serial"]})
        except (ValueError, KeyError, TypeError, AnycarError) as exc:
            _say(
                {
                    "refused": str(doc.get("fit_pack")) if isinstance(doc, dict) else None,
                    "error": str(exc)[:300],
                }
            )


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _say(
            {"error": f"the command reader died: {type(task.exception()).__name__}: {task.exception()}"[:300]}
        )


def _event(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    from anycar.fleetdemo.delivery import load_delivery
    from anycar.fleetdemo.driver import Driver

    folder = Path(spec["folder"])
    speedup = float(spec.get("speedup", 1.0))
    hubs = {v["vin"]: build(v, spec["broker"], folder, speedup) for v in spec["vehicles"]}
    times = load_delivery().driver
    drivers = {
        v["vin"]: Driver(
            v["vin"],
            hubs[v["vin"]],
            (float(spec["depot"][0]), float(spec["depot"][1])),
            times,
            str(spec["doorbell"]),
            str(spec["doorbell_token"]),
            say=_event,
        )
        for v in spec["vehicles"]
        if v.get("driver")
    }
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Any] = []
    try:
        for hub in hubs.values():  # one by one (started together they were no faster here)
            await hub.start()
            started.append(hub)
        wall0, cpu0 = time.monotonic(), _cpu()
        for v in spec["vehicles"]:
            if v.get("pack") is not None:  # a swappable pack: the stations need to know where it parks
                watch_parking(v["vin"], hubs[v["vin"]])
        dashboards = {vin: hub.endpoints().get("dashboard", "") for vin, hub in hubs.items()}
        tasks = [asyncio.create_task(d.run(), name=f"driver-{vin}") for vin, d in drivers.items()]
        keys = {vin: d.pod_key_id() for vin, d in drivers.items()}  # who signs each vehicle's proofs
        print(json.dumps({"ready": len(hubs), "dashboards": dashboards, "pod_keys": keys}), flush=True)
        listener = asyncio.ensure_future(commands(hubs, drivers)) if spec.get("commands") else None
        if listener is not None:  # it must not die silently: the demo's swaps depend on it
            listener.add_done_callback(_report_death)
        await stop.wait()
        if listener is not None:
            listener.cancel()
        wall, cpu = time.monotonic() - wall0, _cpu() - cpu0
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for hub in reversed(started):  # one by one: a hub's accessories leave before its servers
            with contextlib.suppress(Exception):
                await hub.stop()
    return {
        "stopped": len(hubs),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "drivers": {vin: {"stops": d.log, "crashes": d.crashes} for vin, d in drivers.items()},
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m anycar.fleetdemo.hubs SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = json.loads(Path(args[0]).read_text("utf-8"))
        summary = asyncio.run(run(spec))
    except (OSError, ValueError, KeyError, AnycarError) as exc:
        print(json.dumps({"error": f"{args[0]}: {exc}"}), flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
