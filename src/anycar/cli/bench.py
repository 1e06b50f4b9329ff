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

    canb = cmds.add_parser(
        "can", help="CAN frames through decode, mapping and broker vs a bare cantools decode"
    )
    canb.add_argument("--brand", required=True, help="brand profile id, e.g. tesla_model3")
    canb.add_argument("--frames", type=int, default=60_000, help="frames of synthetic traffic")
    canb.add_argument("--repeat", type=int, default=5, help="runs per loop (the best counts)")
    canb.add_argument("--json", action="store_true", help="print JSON")
    canb.set_defaults(func=bench_can)


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


def bench_can(args: argparse.Namespace) -> int:
    from anycar.bench import can

    show(can.run(args.brand, frames=args.frames, repeat=args.repeat), args.json)
    return 0
