"""`anycar bench NAME [--json]`: the benchmarks behind docs/performance.md."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from anycar.cli.output import console, errors, fail, print_json
from anycar.errors import ConfigError


def register(sub: Any) -> None:
    group = sub.add_parser("bench", help="run a benchmark and print its figures")
    cmds = group.add_subparsers(dest="bench_command", metavar="NAME", required=True)

    broker = cmds.add_parser("broker", help="in-process publish-to-delivery through the broker")
    broker.add_argument("--seconds", type=float, default=2.0, help="publishing time per run")
    broker.add_argument("--signals", type=int, default=100, help="distinct signals published")
    broker.add_argument("--batch", type=int, default=100, help="updates per publish call")
    broker.set_defaults(func=bench_broker)
    _register_accessories(cmds)
    _register_sim(cmds)
    _register_can(cmds)
    _register_api(cmds)
    _register_patterns(cmds)
    _register_automations(cmds)
    _register_uplink(cmds)
    _register_fleet(cmds)
    _register_roads(cmds)
    _register_dispatch(cmds)
    _register_swap(cmds)
    _register_console(cmds)
    _register_fleet_report(cmds)
    for parser in cmds.choices.values():  # the same flag, last, on every benchmark (`show` reads it)
        parser.add_argument("--json", action="store_true", help="print JSON")


def _register_roads(cmds: Any) -> None:
    from anycar.cli.bench_roads import register_roads  # roads-demo: its own module

    register_roads(cmds)


def _register_swap(cmds: Any) -> None:
    sw = cmds.add_parser(
        "swap",
        help="the OCPP 2.1 CSMS (one core) under N simulated swap stations; station throughput vs NIO Gen4",
    )
    sw.add_argument("--stations", type=int, default=1000, help="simulated stations (8 slots each)")
    sw.add_argument("--seconds", type=float, default=120.0, help="measuring window after the warm-up")
    sw.add_argument("--warmup", type=float, default=30.0, help="seconds after every station booted")
    sw.add_argument(
        "--interval", type=float, default=60.0, help="Heartbeat / StatusNotification / MeterValues period"
    )
    sw.add_argument(
        "--swaps-per-minute", type=float, default=10.0, help="vehicles arriving across the network"
    )
    sw.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    sw.add_argument(
        "--client-processes", type=int, default=4, help="processes the simulated stations are spread over"
    )
    sw.add_argument(
        "--ocpp-mode", choices=["fast", "library"], default="fast",
        help="the CSMS with anycar.swap.ocpp21's fast path, or the ocpp library as shipped (the before)",
    )  # fmt: skip
    sw.set_defaults(func=bench_swap)
    _register_swap_value(cmds)
    _register_swap_cpu(cmds)


def _register_swap_cpu(cmds: Any) -> None:
    sc = cmds.add_parser(
        "swap-cpu",
        help="the CSMS's CPU per OCPP message without sockets (load-independent), fast path vs the library as shipped",
    )
    sc.add_argument("--stations", type=int, default=100, help="stations (pickman-8), each one session")
    sc.add_argument("--rounds", type=int, default=3, help="intervals of periodic messages measured")
    sc.add_argument("--swaps", type=int, default=30, help="whole swap flows measured")
    sc.add_argument(
        "--mode",
        choices=["fast", "library", "both"],
        default="both",
        help="anycar.swap.ocpp21's fast path, or not",
    )
    sc.set_defaults(func=bench_swap_cpu)


def bench_swap_cpu(args: argparse.Namespace) -> int:
    from anycar.bench import swap_cpu

    if args.stations < 1 or args.rounds < 1 or args.swaps < 0:
        return fail("--stations and --rounds must be >= 1, --swaps >= 0")
    modes = ["library", "fast"] if args.mode == "both" else [args.mode]
    with errors.status("anycar bench swap-cpu: feeding the CSMS..."):
        runs = [
            swap_cpu.run(stations=args.stations, rounds=args.rounds, swaps=args.swaps, mode=m) for m in modes
        ]
    result: dict[str, Any] = {"benchmark": "swap-cpu", "runs": runs} if len(runs) > 1 else runs[0]
    show(result, args.json)
    return 0


def _register_swap_value(cmds: Any) -> None:
    sv = cmds.add_parser(
        "swap-value",
        help="one simulated delivery day: swaps planned into routes with reservations vs nearest station below 20 %%",
    )
    sv.add_argument("--vehicles", type=int, default=20, help="PICKMANs")
    sv.add_argument("--orders-per-vehicle", type=int, default=15, help="orders = vehicles x this")
    sv.add_argument("--stations", type=int, default=2, help="swap stations (pickman-8 layout)")
    sv.add_argument(
        "--soc", type=float, nargs=2, default=(0.155, 0.21), metavar=("LO", "HI"), help="start charge range"
    )
    sv.add_argument("--time-limit", type=float, default=10.0, help="planner seconds")
    sv.add_argument("--seed", type=int, default=1)
    sv.set_defaults(func=bench_swap_value)


def bench_swap_value(args: argparse.Namespace) -> int:
    from anycar.bench import swap_value

    if args.vehicles < 1 or args.orders_per_vehicle < 1 or args.stations < 1:
        return fail("--vehicles, --orders-per-vehicle and --stations must be >= 1")
    with errors.status("anycar bench swap-value: planning and simulating the day..."):
        result = swap_value.run(
            vehicles=args.vehicles, orders_per_vehicle=args.orders_per_vehicle, stations=args.stations,
            seed=args.seed, time_limit_s=args.time_limit, soc=(args.soc[0], args.soc[1]),
        )  # fmt: skip
    if args.json:
        print_json(result)
    else:
        console.print(swap_value.table(result), markup=False, highlight=False)
    return 0


def bench_swap(args: argparse.Namespace) -> int:
    from anycar.bench import swap

    with errors.status(f"anycar bench swap: {args.stations} stations against the CSMS..."):
        result = swap.run(
            stations=args.stations,
            seconds=args.seconds,
            warmup=args.warmup,
            interval=args.interval,
            swaps_per_minute=args.swaps_per_minute,
            db=args.db,
            processes=args.client_processes,
            ocpp_mode=args.ocpp_mode,
        )
    show(result, args.json)
    return 0


def _register_patterns(cmds: Any) -> None:
    pat = cmds.add_parser("patterns", help="wildcard matching over the catalog vs the old backtracking regex")
    pat.add_argument("--repeat", type=int, default=3, help="runs per pattern (the best counts)")
    pat.add_argument(
        "--max-double-stars", type=int, default=8, help="largest '**' count tried (the limit is 8)"
    )
    pat.set_defaults(func=bench_patterns)


def bench_patterns(args: argparse.Namespace) -> int:
    from anycar.bench import patterns

    with errors.status("anycar bench patterns: the matcher and the old regex over the catalog..."):
        result = patterns.run(repeat=args.repeat, max_double_stars=args.max_double_stars)
    show(result, args.json)
    return 0


def _register_automations(cmds: Any) -> None:
    auto = cmds.add_parser(
        "automations", help="1,000 automations: start-up, trigger-to-action, triggers/s, publish cost"
    )
    auto.add_argument("--count", type=int, default=1000, help="automations loaded")
    auto.add_argument("--samples", type=int, default=2000, help="trigger-to-action samples per run")
    auto.add_argument("--repeat", type=int, default=3, help="runs (the median run's figures are reported)")
    auto.add_argument(
        "--rounds", type=int, default=7, help="interleaved publish-cost rounds per run (median)"
    )
    auto.set_defaults(func=bench_automations)


def bench_automations(args: argparse.Namespace) -> int:
    from anycar.bench import automations

    with errors.status(f"anycar bench automations: {args.count} loaded, {args.repeat} runs..."):
        result = automations.run(
            count=args.count, samples=args.samples, rounds=args.rounds, repeat=args.repeat
        )
    show(result, args.json)
    return 0


def _register_uplink(cmds: Any) -> None:
    up = cmds.add_parser(
        "uplink", help="uplink through a private Mosquitto: zero loss, throughput, CPU, catch-up, bytes"
    )
    up.add_argument("--vehicles", type=int, default=3, help="vehicle hubs (processes) in the zero-loss run")
    up.add_argument("--seconds", type=float, default=12.0, help="length of the zero-loss run")
    up.add_argument(
        "--outage", type=float, default=4.0, help="seconds the broker is away (the issue's 60 s, compressed)"
    )
    up.add_argument(
        "--throughput-seconds", type=float, default=5.0, help="measuring time of the throughput run"
    )
    up.add_argument("--cpu-seconds", type=float, default=8.0, help="measuring time of each CPU run")
    up.set_defaults(func=bench_uplink)


def bench_uplink(args: argparse.Namespace) -> int:
    from anycar.bench import uplink

    with errors.status(
        "anycar bench uplink: outage and kill -9, throughput, CPU, catch-up, bytes per hour..."
    ):
        result = uplink.run(
            vehicles=args.vehicles,
            seconds=args.seconds,
            outage_s=args.outage,
            throughput_s=args.throughput_seconds,
            cpu_s=args.cpu_seconds,
        )
    show(result, args.json)
    return 0


# ---- fleet-console ------------------------------------------------------------------------
def _register_console(cmds: Any) -> None:
    con = cmds.add_parser(
        "console", help="the fleet console in Chromium: N vehicles at 1 Hz, commit-to-drawn, long tasks"
    )
    con.add_argument("--vehicles", type=int, default=1000, help="vehicles moving at 1 Hz")
    con.add_argument("--seconds", type=float, default=30.0, help="measuring time")
    con.add_argument("--warmup", type=float, default=8.0, help="seconds after sign-in before measuring")
    con.add_argument("--screenshot", metavar="PNG", help="save the page at the end")
    con.add_argument(
        "--feed",
        choices=["store", "live"],
        default="store",
        help="store: commit every position (the real path); live: publish without storing (the page's side at full rate)",
    )
    con.set_defaults(func=bench_console)


def bench_console(args: argparse.Namespace) -> int:
    from anycar.bench import console as console_bench

    if args.vehicles < 1 or args.seconds <= 0:
        return fail("--vehicles: at least 1; --seconds: more than 0")
    with errors.status(f"anycar bench console: {args.vehicles} vehicles at 1 Hz in Chromium..."):
        try:
            result = console_bench.run(
                vehicles=args.vehicles,
                seconds=args.seconds,
                warmup=args.warmup,
                screenshot=args.screenshot,
                feed=args.feed,
            )
        except RuntimeError as exc:
            return fail(str(exc))
    show(result, args.json)
    return 0


# ---- fleet-domain: the product's fleet report at 10^6 .. 10^7 rows ----------------------------
def _register_fleet_report(cmds: Any) -> None:
    rep = cmds.add_parser(
        "fleet-report",
        help="the product's fleet daily report (JSON, CSV, page) at 10^6..10^7 positions (PostgreSQL)",
    )
    rep.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000, 10_000_000],
        help="position rows to fill to, in turn",
    )
    rep.add_argument("--repeat", type=int, default=5, help="timed runs of each form")
    rep.set_defaults(func=bench_fleet_report)


def bench_fleet_report(args: argparse.Namespace) -> int:
    from anycar.bench import fleet_report

    if min(args.rows) < 1 or args.repeat < 1:
        return fail("--rows: at least 1; --repeat: at least 1")
    with errors.status(f"anycar bench fleet-report: filling PostgreSQL to {max(args.rows):,} positions..."):
        result = fleet_report.run(args.rows, args.repeat)
    show(result, args.json)
    return 0


def _register_api(cmds: Any) -> None:
    api = cmds.add_parser(
        "api",
        help="provider -> hub -> subscriber over loopback, via gRPC and via VISS: "
        "saturation throughput, then latency at fixed offered rates",
    )
    api.add_argument(
        "--seconds", type=float, default=4.0, help="publishing time per run (the first second warms up)"
    )
    api.add_argument(
        "--rates",
        default="5000,42000,84000",
        help="offered signals/s, comma-separated, one latency run each ('' for none)",
    )
    api.add_argument("--no-saturation", action="store_true", help="skip the unpaced saturation run")
    api.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of it all; the summary gives [lowest, highest] of each figure",
    )
    api.add_argument("--batch", type=int, default=100, help="signals per PublishValuesRequest")
    api.add_argument("--signals", type=int, default=100, help="distinct signals published")
    api.add_argument("--transport", choices=["grpc", "viss", "both"], default="both")
    api.add_argument("--profile", metavar="FILE", help="write a cProfile of the hub process to FILE")
    api.add_argument(
        "--baseline",
        action="store_true",
        help="after each gRPC run, the same run against a bare kuksa.val.v2 relay (no broker): "
        "the hub's p50 and CPU per message above it",
    )
    api.set_defaults(func=bench_api)


def _register_can(cmds: Any) -> None:
    canb = cmds.add_parser(
        "can", help="CAN frames through decode, mapping and broker vs a bare cantools decode"
    )
    canb.add_argument("--brand", required=True, help="brand profile id, e.g. tesla_model3")
    canb.add_argument("--frames", type=int, default=60_000, help="frames of synthetic traffic")
    canb.add_argument("--repeat", type=int, default=5, help="runs per loop (the best counts)")
    canb.set_defaults(func=bench_can)


def _register_sim(cmds: Any) -> None:
    sim = cmds.add_parser("sim", help="vehicle simulator steps per second, as fast as possible")
    sim.add_argument("--brand", default="kaiyun_pickman", help="brand profile id")
    sim.add_argument("--seconds", type=float, default=3600.0, help="simulated seconds")
    sim.add_argument("--dt", type=float, default=0.5, help="simulated seconds per step")
    sim.set_defaults(func=bench_sim)


def _register_accessories(cmds: Any) -> None:
    acc = cmds.add_parser(
        "accessories", help="accessory commissioning, commands and publishes over WebSocket"
    )
    acc.add_argument("--commands", type=int, default=500, help="command round trips to time")
    acc.add_argument("--publishes", type=int, default=5000, help="publish frames for the rate")
    acc.add_argument("--flood-seconds", type=float, default=2.0, help="length of the flooding run")
    acc.set_defaults(func=bench_accessories)


def bench_accessories(args: argparse.Namespace) -> int:
    from anycar.bench import accessories

    with errors.status("anycar bench accessories: commissioning, commands, publishes, a flood..."):
        result = accessories.run(
            commands=args.commands, publishes=args.publishes, flood_seconds=args.flood_seconds
        )
    show(result, args.json)
    return 0


def show(result: dict[str, Any], as_json: bool) -> None:
    """Print a benchmark result: JSON, or a table with one column per run."""
    if as_json:
        print_json(result)
        return
    runs = result.get("runs") or [result]
    table = Table(title=f"anycar bench {result.get('benchmark', '')}", title_justify="left")
    table.add_column("figure")
    for i, _ in enumerate(runs):
        table.add_column(f"run {i + 1}", justify="right")
    keys = [k for k in runs[0] if not isinstance(runs[0][k], (dict, list))]
    for key in keys:
        table.add_row(key, *(f"{run.get(key, '')}" for run in runs))
    console.print(table)
    for key, value in result.items():
        if key not in ("runs", "benchmark"):
            console.print(f"[bold]{key}[/]: {value}")


def bench_broker(args: argparse.Namespace) -> int:
    from anycar.bench import broker

    with errors.status("anycar bench broker: 1, then 10 subscribers..."):
        result = broker.run(seconds=args.seconds, signals=args.signals, batch=args.batch)
    show(result, args.json)
    return 0


def bench_sim(args: argparse.Namespace) -> int:
    from anycar.sim.runner import measure
    from anycar.sim.simulator import Simulator

    result = {"benchmark": "sim", "brand": args.brand}
    result.update(measure(Simulator.for_profile(args.brand, dt=args.dt), args.seconds))
    show(result, args.json)
    return 0


def bench_can(args: argparse.Namespace) -> int:
    from anycar.bench import can

    with errors.status(f"anycar bench can: {args.brand}, adapter and bare cantools decode in turn..."):
        result = can.run(args.brand, frames=args.frames, repeat=args.repeat)
    show(result, args.json)
    return 0


def bench_api(args: argparse.Namespace) -> int:
    from anycar.bench import api

    transports = ("grpc", "viss") if args.transport == "both" else (args.transport,)
    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        return fail(f"--rates: {args.rates!r} is not a comma-separated list of numbers")
    with errors.status(f"anycar bench api: hub, provider and subscriber over {' and '.join(transports)}..."):
        result = api.run(
            seconds=args.seconds,
            rates=rates,
            saturation=not args.no_saturation,
            batch=args.batch,
            signals=args.signals,
            transports=transports,
            profile=args.profile,
            repeat=args.repeat,
            baseline=args.baseline,
        )
    show(result, args.json)
    return 0


# ---- anycar bench fleet (fleet-scale) ------------------------------------------------------------
def _register_fleet(cmds: Any) -> None:
    fl = cmds.add_parser(
        "fleet",
        help="fleet ingest through a private Mosquitto into PostgreSQL/SQLite, scale-out, queries at 10^7 rows",
    )
    fl.add_argument("--seconds", type=float, default=20.0, help="publishing time of each ingest run")
    fl.add_argument("--vehicles", type=int, default=1000, help="vehicles the load generator speaks for")
    fl.add_argument("--rate", type=float, default=0.0, help="offered msg/s of the throughput runs (0: max)")
    fl.add_argument("--latency-rate", type=float, default=1000.0, help="offered msg/s of the latency runs")
    fl.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ingest workers of the latency run (scale-out always runs 1 and 2)",
    )
    fl.add_argument(
        "--sqlite-workers",
        type=int,
        default=1,
        help="ingest workers of the sqlite runs, on one file (they take turns at its write lock); "
        "--parts sqlite-latency runs the sqlite latency run alone",
    )
    fl.add_argument(
        "--parts",
        default="ingest,scaleout,latency,sqlite",
        help="comma list of ingest, scaleout, latency, sqlite, faults (kill a worker and an API process), "
        "stages (CPU per message of each worker stage, in one process), "
        "rollup (what the daily report's position_days costs a commit)",
    )
    fl.add_argument(
        "--rows",
        default="",
        help="comma list of position counts for the query runs, e.g. 1000000,10000000 (checks free disk)",
    )
    fl.add_argument(
        "--domain",
        action="store_true",
        help="the ingest workers also run what `anycar fleet serve`'s run after each commit: trips, "
        "geofences, rules (the domain pipeline), the live feed and webhooks",
    )
    fl.add_argument(
        "--wal-compression",
        choices=("off", "pglz", "lz4", "zstd"),
        default=None,
        help="stages: the commits' sessions set PostgreSQL's wal_compression to this (a superuser's "
        "session setting; the server's own is left alone) to measure its WAL and CPU",
    )
    fl.add_argument(
        "--batch",
        type=int,
        default=None,
        help="the ingest workers' batch, at most this many messages a transaction (default: the worker's own)",
    )
    fl.set_defaults(func=bench_fleet)


def bench_fleet(args: argparse.Namespace) -> int:
    from anycar.bench import fleet

    try:
        rows = [int(x) for x in args.rows.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--rows {args.rows!r}: a comma list of whole numbers") from None
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - {"ingest", "scaleout", "latency", "sqlite", "faults", "stages", "rollup"}
    unknown -= {"sqlite-latency"}  # sqlite-rate
    if unknown:
        raise ConfigError(f"--parts: unknown {', '.join(sorted(unknown))}")
    if not 1 <= args.workers <= 8:
        raise ConfigError(f"--workers {args.workers}: 1 to 8")
    if not 1 <= args.sqlite_workers <= 8:
        raise ConfigError(f"--sqlite-workers {args.sqlite_workers}: 1 to 8")
    if args.batch is not None and not 1 <= args.batch <= 20_000:
        raise ConfigError(f"--batch {args.batch}: 1 to 20000")
    with errors.status("anycar bench fleet: ingest through Mosquitto, scale-out, queries..."):
        result = fleet.run(
            seconds=args.seconds,
            vehicles=args.vehicles,
            rate=args.rate,
            latency_rate=args.latency_rate,
            latency_workers=args.workers,
            rows=rows,
            parts=parts,
            domain=args.domain,
            sqlite_workers=args.sqlite_workers,
            wal_compression=args.wal_compression,
            batch=args.batch or 0,
        )
    show(result, args.json)
    return 0


# --- logistics: anycar bench dispatch ---------------------------------------------------------


def _names(text: str | None) -> list[str] | None:
    return [n.strip().upper() for n in text.split(",") if n.strip()] if text else None


def _register_dispatch(cmds: Any) -> None:
    dis = cmds.add_parser(
        "dispatch",
        help="the planner on Solomon VRPTW and Li & Lim PDPTW vs the best known solutions, "
        "VROOM as the peer, and a re-dispatch round",
    )
    dis.add_argument("--data", help="the vrp folder (Solomon, Li & Lim, BKS); default: shared/vrp above here")
    dis.add_argument("--instances", help="a subset, comma-separated: C101,R201,lc101 (default: all)")
    dis.add_argument(
        "--time-limit",
        default="5,1",
        help="seconds per Solomon instance, comma-separated, one run each (default 5,1)",
    )
    dis.add_argument("--li-lim-time-limit", type=float, default=10.0, help="seconds per Li & Lim instance")
    dis.add_argument(
        "--vroom-time-limit", type=float, default=5.0, help="VROOM's cap per instance (x2 on Li & Lim)"
    )
    dis.add_argument(
        "--redispatch-time-limit", type=float, default=1.0, help="solver seconds for the re-plan"
    )
    dis.add_argument(
        "--parts", default="solomon,li_lim,redispatch", help="which parts: solomon,li_lim,redispatch"
    )
    dis.add_argument("--markdown", action="store_true", help="print the per-class tables as Markdown")
    dis.set_defaults(func=bench_dispatch)


def bench_dispatch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from anycar.bench import dispatch
    from anycar.cli.output import progress

    data = Path(args.data) if args.data else dispatch.default_data_dir()
    if not (data / "VRPTW_BKS.json").is_file():
        return fail(f"--data {data}: no VRPTW_BKS.json there (the folder with solomon/ and li_lim_100/)")
    try:
        limits = [float(x) for x in args.time_limit.split(",") if x.strip()]
    except ValueError:
        return fail(f"--time-limit: {args.time_limit!r} is not a comma-separated list of seconds")
    if not limits or min(limits) <= 0:
        return fail("--time-limit: at least one positive number of seconds")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"solomon", "li_lim", "redispatch"}
    if unknown:
        return fail(f"--parts: {', '.join(sorted(unknown))}: one of solomon, li_lim, redispatch")
    names = _names(args.instances)
    solomon_names = [n for n in names if not n.startswith("L")] if names else None
    li_lim_names = [n for n in names if n.startswith("L")] if names else None
    if names:
        parts = [
            p
            for p in parts
            if p == "redispatch" or (p == "solomon" and solomon_names) or (p == "li_lim" and li_lim_names)
        ]
        known = {f.stem.upper() for f in (data / "solomon").glob("*.txt")} | {
            f.stem.upper() for f in (data / "li_lim_100").glob("*.txt")
        }
        missing = [n for n in names if n not in known]
        if missing:
            return fail(f"--instances: no such instance {', '.join(missing)} in {data}")
    steps = dispatch.planned_steps(data, solomon_names, li_lim_names, limits, parts)
    with progress() as bar:
        task = bar.add_task("anycar bench dispatch", total=steps)

        started = [0]

        def tick(what: str) -> None:  # called as each step starts: the steps before it are done
            bar.update(task, completed=started[0], description=what)
            started[0] += 1

        result = dispatch.run(
            data,
            solomon_names=solomon_names,
            li_lim_names=li_lim_names,
            limits=limits,
            li_lim_limit=args.li_lim_time_limit,
            vroom_limit=args.vroom_time_limit,
            redispatch_limit=args.redispatch_time_limit,
            parts=parts,
            tick=tick,
        )
    if args.json:
        print_json(result)
        return 0
    if args.markdown:
        print(dispatch.markdown(result))
        return 0
    _show_dispatch(result)
    return 0


def _show_dispatch(result: dict[str, Any]) -> None:
    for part, title in (("solomon", "Solomon VRPTW"), ("li_lim", "Li & Lim PDPTW")):
        if part not in result:
            continue
        section = result[part]
        keys = list(section["average_gap_pct"])
        table = Table(title=f"{title}: average gap to the BKS distance (%), solved", title_justify="left")
        table.add_column("class")
        table.add_column("n", justify="right")
        for key in keys:
            table.add_column(key, justify="right")
        for cls, row in section["by_class"].items():
            table.add_row(
                cls,
                str(row["instances"]),
                *(
                    f"{row[f'{k}_gap_pct']:+.2f} ({row[f'{k}_solved']})"
                    if row[f"{k}_gap_pct"] is not None
                    else "-"
                    for k in keys
                ),
            )
        table.add_row(
            "all",
            str(section["count"]),
            *(
                f"{section['average_gap_pct'][k]:+.2f} ({section['solved'][k]})"
                if section["average_gap_pct"][k] is not None
                else "-"
                for k in keys
            ),
        )
        console.print(table)
    if "redispatch" in result:
        console.print(f"[bold]re-dispatch[/]: {result['redispatch']}")
    console.print(f"[bold]load average[/]: {result['load_average']}  wall {result['wall_s']} s")
