"""Two or more hub variants side by side: `anycar bench api`'s runs, alternating between them.

Measurement only (docs/performance.md, "api-tail2, session 8"). Starts one `anycar hub` per
variant (each with its own environment, e.g. another PYTHONPATH for main's code or a gRPC
switch), then, round by round and rate by rate, runs the bench's own provider and subscriber
(``api._one``) against each in turn, the order reversed every other round, so that each
comparison is made in the same minute. Prints one JSON line per run and a summary: per variant,
transport and rate, the [lowest, highest] p50 and p99 over the rounds and the p99 of all their
messages pooled.

    .venv/bin/python tools/api_ab_probe.py --variant base= \
        --variant ee=GRPC_EXPERIMENTS=-event_engine_listener --rates 5000 --rounds 4 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from anycar.bench import api
from anycar.bench.stats import latency_summary


def start(env: dict[str, str]) -> tuple[Any, dict[str, str]]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return api._start_hub()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="NAME=VAR=VALUE,VAR=VALUE")
    parser.add_argument("--transports", default="grpc,viss")
    parser.add_argument("--rates", default="5000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    captured: dict[str, Any] = {}
    real_latencies = api._latencies

    def latencies(handed: Any, arrivals: Any) -> Any:
        out = real_latencies(handed, arrivals)
        captured["latency"] = out[0]
        return out

    api._latencies = latencies  # type: ignore[assignment]
    hubs = {}
    pooled: dict[tuple[str, str, float], list[float]] = {}
    ranges: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    try:
        for spec in args.variant:
            name, _, rest = spec.partition("=")
            env = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
            hubs[name] = start(env)
        names = list(hubs)
        for round_ in range(1, args.rounds + 1):
            for rate in [float(r) for r in args.rates.split(",")]:
                for transport in args.transports.split(","):
                    for name in names if round_ % 2 else names[::-1]:
                        proc, endpoints = hubs[name]
                        length = (
                            max(args.seconds, api.LOW_RATE_SECONDS) if rate < api.LOW_RATE else args.seconds
                        )
                        one = api._one(transport, endpoints, length, rate, 100, 100, 1.0, proc.pid)
                        row = {
                            "variant": name,
                            "round": round_,
                            "transport": transport,
                            "rate": rate,
                            "p50_ms": one["p50_ms"],
                            "p99_ms": one["p99_ms"],
                            "max_ms": one["max_ms"],
                            "held_back": one["held_back"],
                            "dropped": one["dropped_by_hub"],
                            "lost": one["lost"],
                            "hub": one["per_message"]["hub"],
                            "load_1min": round(os.getloadavg()[0], 2),
                        }
                        print(json.dumps(row), flush=True)
                        key = (name, transport, rate)
                        pooled.setdefault(key, []).extend(captured["latency"])
                        ranges.setdefault(key, []).append(row)
    finally:
        for proc, _ in hubs.values():
            api._stop(proc)
    for (name, transport, rate), rows in ranges.items():

        def span(k: str, rows: list[dict[str, Any]] = rows) -> list[float]:
            return [min(r[k] for r in rows), max(r[k] for r in rows)]

        cpu = [r["hub"]["cpu_us"] for r in rows if r["hub"]["cpu_us"] is not None]
        print(
            json.dumps(
                {
                    "summary": name,
                    "transport": transport,
                    "rate": rate,
                    "runs": len(rows),
                    "p50_ms": span("p50_ms"),
                    "p99_ms": span("p99_ms"),
                    "pooled": latency_summary(pooled[(name, transport, rate)]),
                    "hub_cpu_us": [min(cpu), max(cpu)] if cpu else None,
                    "lost": sum(r["lost"] for r in rows),
                    "held_back": sum(r["held_back"] or 0 for r in rows),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
