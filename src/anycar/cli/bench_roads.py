"""`anycar bench roads`: a 500-stop travel-time matrix on the shipped road network vs networkx."""

from __future__ import annotations

import argparse
from typing import Any

from anycar.cli.bench import show
from anycar.cli.output import errors, fail


def register_roads(cmds: Any) -> None:
    roads = cmds.add_parser(
        "roads", help="a 500-stop travel-time matrix on the shipped road network vs networkx"
    )
    roads.add_argument("--stops", type=int, default=500, help="stops in the matrix")
    roads.add_argument("--repeat", type=int, default=5, help="timed matrix runs (min, median, max reported)")
    roads.add_argument("--profile", default="car", help="vehicle profile: car or delivery")
    roads.add_argument(
        "--baseline-sources", type=int, default=25, help="sources timed with networkx (0: no baseline)"
    )
    roads.set_defaults(func=bench_roads)


def bench_roads(args: argparse.Namespace) -> int:
    from anycar.bench import roads

    if not 2 <= args.stops <= 5000 or args.repeat < 1 or args.baseline_sources < 0:
        return fail("--stops 2..5000, --repeat >= 1, --baseline-sources >= 0")
    with errors.status(f"anycar bench roads: {args.stops} stops, {args.repeat} runs..."):
        result = roads.run(
            count=args.stops,
            repeat=args.repeat,
            profile=args.profile,
            baseline_sources=min(args.baseline_sources, args.stops),
        )
    show(result, args.json)
    return 0
