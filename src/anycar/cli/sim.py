"""`anycar sim plot|run|cycle`: look at what the vehicle simulator produces."""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from anycar.cli.output import console, print_json, progress
from anycar.sim.cycles import CYCLE_NAMES, load_cycle
from anycar.sim.simulator import Simulator

DEFAULT_BRAND = {"wltc3": "xiaomi_su7", "delivery": "kaiyun_pickman"}


def register(sub: Any) -> None:
    group = sub.add_parser("sim", help="the vehicle simulator: plot a cycle, run it, export it")
    cmds = group.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--cycle", choices=CYCLE_NAMES, default=None, help="drive cycle (default: the vehicle's)"
        )
        p.add_argument("--brand", default=None, help="brand profile id (default: by cycle)")
        p.add_argument("--route", default=None, help="route name or GeoJSON file (default: the vehicle's)")
        p.add_argument("--seed", type=int, default=0, help="seed of the delivery cycle and door plans")
        p.add_argument("--dt", type=float, default=0.5, help="simulated seconds per step")

    plot = cmds.add_parser("plot", help="draw speed, state of charge and 12 V over one lap as SVG")
    common(plot)
    plot.add_argument("--out", required=True, help="SVG file to write")
    plot.add_argument("--seconds", type=float, default=None, help="simulated time (default: one lap)")
    plot.set_defaults(func=sim_plot)

    run = cmds.add_parser("run", help="run the simulator and print a summary")
    common(run)
    run.add_argument("--duration", type=float, default=None, help="simulated seconds (default: one lap)")
    run.add_argument(
        "--speedup",
        type=float,
        default=math.inf,
        help="simulated s per real s (default: as fast as possible)",
    )
    run.add_argument("--json", action="store_true", help="print JSON")
    run.add_argument(
        "--live", action="store_true", help="show the live status line while running (use with --speedup)"
    )
    run.set_defaults(func=sim_run)

    export = cmds.add_parser(
        "export",
        help="write a drive as CAN frames (.log, .asc, .blf, .trc: what the car's ECUs send) or VSS values (.csv, .jsonl)",
    )
    common(export)
    export.add_argument("--out", required=True, help="file to write; its suffix picks the format")
    export.add_argument("--duration", type=float, default=60.0, help="simulated seconds (default 60)")
    export.set_defaults(func=sim_export)

    cycle = cmds.add_parser("cycle", help="print a drive cycle's speed trace as CSV")
    cycle.add_argument("--cycle", choices=CYCLE_NAMES, default="delivery")
    cycle.add_argument("--seed", type=int, default=0)
    cycle.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    cycle.set_defaults(func=sim_cycle)


def build(args: argparse.Namespace) -> Simulator:
    brand = args.brand or DEFAULT_BRAND.get(args.cycle or "", "kaiyun_pickman")
    return Simulator.for_profile(brand, cycle=args.cycle, route=args.route, seed=args.seed, dt=args.dt)


def sim_plot(args: argparse.Namespace) -> int:
    from anycar.sim.plot import plot_cycle

    sim = build(args)
    Path(args.out).write_text(plot_cycle(sim, args.seconds), "utf-8")
    console.print(f"wrote {args.out}: {sim.vehicle.name}, {sim.cycle.name}, {sim.odometer_m / 1000:.2f} km")
    return 0


def summary(sim: Simulator) -> dict[str, Any]:
    v = sim.vehicle
    km = sim.odometer_m / 1000
    kwh = (v.battery.initial_soc - sim.battery.soc) / 100 * v.battery.capacity_kwh
    return {
        "vehicle": v.id,
        "cycle": sim.cycle.name,
        "route": sim.route.name,
        "seed": sim.seed,
        "simulated_s": round(sim.t, 1),
        "distance_km": round(km, 3),
        "soc_start": v.battery.initial_soc,
        "soc_end": round(sim.battery.soc, 3),
        "energy_kwh": round(kwh, 3),
        "kwh_per_100km": round(kwh / km * 100, 2) if km > 0 else None,
        "regenerated_kwh": round(sim.battery.regenerated_wh / 1000, 3),
        "lv_voltage_end": round(sim.rail.voltage, 2),
        "cabin_c_end": round(sim.cabin.temperature_c, 2),
    }


def sim_run(args: argparse.Namespace) -> int:
    from anycar.sim.runner import SimulationRunner

    sim = build(args)
    duration = sim.lap_s if args.duration is None else args.duration
    runner = SimulationRunner(sim, speedup=args.speedup)
    if args.live:
        from anycar.broker import SignalBroker
        from anycar.sim.runner import BrokerSink
        from anycar.sim.status import DemoStatus, live_status

        broker = SignalBroker()
        runner.add_sink(BrokerSink(broker, sim))
        status = DemoStatus(broker, "(no hub: anycar sim run)", vehicle=sim.vehicle.name)
        with live_status(status, console):
            asyncio.run(runner.run(duration))
        console.print()
    else:
        with progress() as bar:
            task = bar.add_task(f"simulating {sim.vehicle.name}", total=duration)
            start = sim.t
            runner.add_sink(lambda step: bar.update(task, completed=step.t - start))
            asyncio.run(runner.run(duration))
    result = summary(sim)
    if args.json:
        print_json(result)
        return 0
    table = Table(show_header=False, title=f"simulated {sim.vehicle.name}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)
    return 0


CAN_SUFFIXES = (".log", ".asc", ".blf", ".trc")


def sim_export(args: argparse.Namespace) -> int:
    """A drive to a file: CAN frames a replay (``anycar can replay``) reads back, or VSS values."""
    import csv
    import json

    from anycar.cli.output import fail

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (*CAN_SUFFIXES, ".csv", ".jsonl"):
        return fail(
            f"{out}: choose a suffix: {', '.join(CAN_SUFFIXES)} for CAN frames, .csv or .jsonl for VSS values"
        )
    if args.duration <= 0:
        return fail("--duration must be more than 0 seconds")
    sim = build(args)
    steps = list(sim.run(args.duration))
    if suffix in CAN_SUFFIXES:
        from anycar.brands.ecus import EcuEncoder
        from anycar.can.sources import write_log

        enc = EcuEncoder(sim.vehicle.id)
        start = 1_700_000_000.0
        frames = []
        for step in steps:
            values = {k: v for k, v in step.values.items() if k in enc.targets}
            frames.extend(enc.encode(values, timestamp=start + step.t))
        write_log(out, frames)
        console.print(
            f"wrote {out}: {len(frames)} frames of {sim.vehicle.name} over {args.duration:g} s",
            highlight=False,
        )
        return 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            for step in steps:
                fh.write(json.dumps({"t": round(step.t, 3), "values": step.values}, default=str) + "\n")
        else:
            columns = sorted({k for step in steps for k in step.values})
            writer = csv.writer(fh)
            writer.writerow(["t", *columns])
            for step in steps:
                writer.writerow([round(step.t, 3), *(step.values.get(c, "") for c in columns)])
    console.print(
        f"wrote {out}: {len(steps)} steps of {sim.vehicle.name} over {args.duration:g} s", highlight=False
    )
    return 0


def sim_cycle(args: argparse.Namespace) -> int:
    text = load_cycle(args.cycle, args.seed).to_csv()
    if args.out:
        Path(args.out).write_text(text, "utf-8")
    else:
        print(text, end="")
    return 0
