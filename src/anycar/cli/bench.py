"""`anycar bench NAME [--json]`: the benchmarks behind docs/performance.md."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from anycar.cli.output import console, print_json


def register(sub: Any) -> None:
    group = sub.add_parser("bench", help="run a benchmark and print its figures")
    cmds = group.add_subparsers(dest="bench_command", metavar="NAME", required=True)

    broker = cmds.add_parser("broker", help="in-process publish-to-delivery through the broker")
    broker.add_argument("--seconds", type=float, default=2.0, help="publishing time per run")
    broker.add_argument("--signals", type=int, default=100, help="distinct signals published")
    broker.add_argument("--batch", type=int, default=100, help="updates per publish call")
    broker.add_argument("--json", action="store_true", help="print JSON")
    broker.set_defaults(func=bench_broker)

    api = cmds.add_parser("api", help="provider -> hub -> subscriber over loopback, via gRPC and via VISS")
    api.add_argument(
        "--seconds", type=float, default=6.0, help="publishing time per transport (the first 2 s warm up)"
    )
    api.add_argument("--rate", type=float, default=100_000, help="signals/s the provider offers (0: unpaced)")
    api.add_argument("--batch", type=int, default=100, help="signals per PublishValuesRequest")
    api.add_argument("--signals", type=int, default=100, help="distinct signals published")
    api.add_argument("--transport", choices=["grpc", "viss", "both"], default="both")
    api.add_argument("--profile", metavar="FILE", help="write a cProfile of the hub process to FILE")
    api.add_argument("--json", action="store_true", help="print JSON")
    api.set_defaults(func=bench_api)


def show(result: dict[str, Any], as_json: bool) -> None:
    """Print a benchmark result: JSON, or a table of its runs."""
    if as_json:
        print_json(result)
        return
    runs = result.get("runs") or [result]
    table = Table(title=f"bench {result.get('benchmark', '')}", title_justify="left")
    keys = [k for k in runs[0] if not isinstance(runs[0][k], (dict, list))]
    for key in keys:
        table.add_column(key, justify="right")
    for run in runs:
        table.add_row(*(f"{run.get(k, '')}" for k in keys))
    console.print(table)
    extra = {k: v for k, v in result.items() if k not in ("runs", "benchmark")}
    console.print(extra)


def bench_broker(args: argparse.Namespace) -> int:
    from anycar.bench import broker

    show(broker.run(seconds=args.seconds, signals=args.signals, batch=args.batch), args.json)
    return 0


def bench_api(args: argparse.Namespace) -> int:
    from anycar.bench import api

    transports = ("grpc", "viss") if args.transport == "both" else (args.transport,)
    result = api.run(
        seconds=args.seconds,
        rate=args.rate,
        batch=args.batch,
        signals=args.signals,
        transports=transports,
        profile=args.profile,
    )
    show(result, args.json)
    return 0
